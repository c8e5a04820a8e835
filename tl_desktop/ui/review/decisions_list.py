"""The project's review decisions, one line each with an Undo button, and the sentence that they apply from
the next training."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QPushButton, QScrollArea, QVBoxLayout, QWidget

from tl_desktop.core.data.review import Review
from tl_desktop.ui.session import Session
from tl_desktop.ui.widgets.common import label

MAX_LINES = 300  # decisions listed with their own Undo (the newest); the rest are counted


def decisions(review: Review) -> list[tuple[str, str | int, str]]:
    """(kind, key, plain words) of every decision, newest last: what ``Review.undo(kind, key)`` takes back."""
    out: list[tuple[str, str | int, str]] = []
    out += [("excluded", p, f"{p}: left out of training ({e.words()})") for p, e in review.excluded.items()]
    out += [("relabelled", p, f"{p}: relabelled to {new}") for p, new in review.relabelled.items()]
    out += [("together", i, f"Kept together in one part of the split: {', '.join(g[:3])}"
             + (f" and {len(g) - 3} more" if len(g) > 3 else "")) for i, g in enumerate(review.together)]
    out += [("kept", p, f"{p}: label kept") for p in review.kept]
    return out


def summary(review: Review | None) -> str:
    n = len(review) if review is not None else 0
    if not n:
        return "No review decisions yet."
    return f"{n:,} decision{'s' if n != 1 else ''}; they apply from the next training (your files stay as they are)."


class DecisionList(QWidget):
    """Every decision of the open project with Undo; refreshed whenever the review changes."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.heading = label("", wrap=True)
        self.body = QWidget()
        self.column = QVBoxLayout(self.body)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self.body)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.heading)
        box.addWidget(scroll, 1)
        session.review_changed.connect(self.refresh)
        session.project_changed.connect(lambda _p: self.refresh())
        self.undo_buttons: list[QPushButton] = []
        self.refresh()

    def refresh(self) -> None:
        review = self.session.project.review if self.session.project is not None else None
        self.heading.setText(summary(review))
        while self.column.count():
            item = self.column.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.undo_buttons = []
        items = decisions(review) if review is not None else []
        for kind, key, words in items[-MAX_LINES:]:
            self.column.addWidget(self._line(kind, key, words))
        if len(items) > MAX_LINES:
            self.column.insertWidget(0, label(f"{len(items) - MAX_LINES:,} earlier decisions are not listed.",
                                              "hint"))
        self.column.addStretch()

    def _line(self, kind: str, key: str | int, words: str) -> QWidget:
        line = QWidget()
        row = QHBoxLayout(line)
        row.setContentsMargins(0, 0, 0, 0)
        text = label(words, wrap=True)
        text.setToolTip(words)
        button = QPushButton("Undo", toolTip="Take this decision back")
        button.clicked.connect(lambda _c=False: self.session.change_review(lambda r: r.undo(kind, key)))
        self.undo_buttons.append(button)
        row.addWidget(text, 1)
        row.addWidget(button)
        return line
