"""Near-duplicate pairs side by side: two thumbnails, how alike they are, the part of the split each is in, a
warning for pairs in two parts (leakage), and the per-pair decisions "Keep together" / "Exclude left" /
"Exclude right". Decisions go into the project through ``Session.change_review``."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.ui.review.rows import PART_WORDS, PairRow
from tl_desktop.ui.session import Session
from tl_desktop.ui.widgets.common import label
from tl_desktop.workers.thumbnails import ThumbnailCache

THUMB = 112
MAX_SHOWN = 200  # pairs laid out at once; the rest are counted (crossing pairs come first)
LEAK_WORDS = "In {a} and {b}: this inflates the results"


def part_words(part: str | None) -> str:
    return f"{PART_WORDS.get(part, part)} images" if part else "not in the split"


class PairCard(QFrame):
    """One pair: thumbnails, facts and the three buttons."""

    def __init__(self, pair: PairRow, pictures: dict[str, list[QLabel]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pair = pair
        self.setFrameShape(QFrame.Shape.StyledPanel)
        grid = QGridLayout(self)
        for column, (path, part) in enumerate(((pair.left, pair.left_split), (pair.right, pair.right_split))):
            picture = QLabel("…", alignment=Qt.AlignmentFlag.AlignCenter, minimumSize=QSize(THUMB, THUMB))
            picture.setToolTip(path)
            pictures.setdefault(path, []).append(picture)
            name = label(f"{PurePosixPath(path).name}\n{part_words(part)}", wrap=True)
            name.setToolTip(path)
            name.setAlignment(Qt.AlignmentFlag.AlignCenter)
            grid.addWidget(picture, 0, column)
            grid.addWidget(name, 1, column)
        similarity = f"{100 * pair.similarity:.1f} % alike" if pair.similarity is not None else ""
        facts = QVBoxLayout()
        facts.addWidget(label(f"{pair.kind_words().capitalize()}" + (f" ({similarity})" if similarity else ""),
                              wrap=True))
        if pair.crosses_splits:
            parts = [PART_WORDS.get(p, p or "?") for p in (pair.left_split, pair.right_split)]
            facts.addWidget(label(LEAK_WORDS.format(a=parts[0], b=parts[1]), "badge-warn", wrap=True))
        self.status = label("", "hint", wrap=True)
        facts.addWidget(self.status)
        self.together_button = QPushButton("Keep together", toolTip="Both images stay, always in the same part of "
                                                                    "the split (training, validation or test)")
        self.left_button = QPushButton("Exclude left", toolTip="Leave the left image out of training")
        self.right_button = QPushButton("Exclude right", toolTip="Leave the right image out of training")
        buttons = QHBoxLayout()
        for button in (self.together_button, self.left_button, self.right_button):
            buttons.addWidget(button)
        facts.addLayout(buttons)
        facts.addStretch()
        grid.addLayout(facts, 0, 2, 2, 1)
        grid.setColumnStretch(2, 1)


class PairList(QWidget):
    """The audit's near-duplicate pairs as cards in a scroll area, with "Keep all crossing pairs together"."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.root = Path()
        self.pairs: list[PairRow] = []
        self.cards: list[PairCard] = []
        self._pictures: dict[str, list[QLabel]] = {}
        self.cache = ThumbnailCache(THUMB, capacity=2 * MAX_SHOWN + 10, parent=self)
        self.cache.loaded.connect(self._on_loaded)
        self.summary = label("", wrap=True)
        self.all_button = QPushButton("Keep all crossing pairs together", enabled=False, toolTip=(
            "Every pair that is in two parts of the split is kept in one part from the next training on"))
        self.all_button.clicked.connect(self.keep_all_crossing)
        self.body = QWidget()
        self.column = QVBoxLayout(self.body)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self.body)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.all_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(top)
        box.addWidget(scroll, 1)
        session.review_changed.connect(self.refresh)

    def set_pairs(self, pairs: list[PairRow], root: str | Path) -> None:
        self.root, self.pairs = Path(root), list(pairs)
        self.cache.clear()
        for card in self.cards:
            card.deleteLater()
        self.cards, self._pictures = [], {}
        while self.column.count():
            self.column.takeAt(0)
        for pair in self.pairs[:MAX_SHOWN]:
            card = PairCard(pair, self._pictures)
            card.together_button.clicked.connect(lambda _c=False, p=pair: self.keep_together([p]))
            card.left_button.clicked.connect(lambda _c=False, p=pair: self.exclude(p, left=True))
            card.right_button.clicked.connect(lambda _c=False, p=pair: self.exclude(p, left=False))
            self.cards.append(card)
            self.column.addWidget(card)
        self.column.addStretch()
        for path in self._pictures:
            self.cache.get(str(self.root / PurePosixPath(path)))
        self.refresh()

    def _on_loaded(self, path: str) -> None:
        image = self.cache.get(path)
        rel = Path(path).relative_to(self.root).as_posix() if Path(path).is_relative_to(self.root) else path
        for picture in self._pictures.get(rel, []):
            if image is not None and not image.isNull():
                picture.setPixmap(QPixmap.fromImage(image))

    def crossing(self) -> list[PairRow]:
        return [p for p in self.pairs if p.crosses_splits]

    def refresh(self) -> None:
        """Summary line, the all-crossing button and each card's decision, from the project's review."""
        crossing, n = len(self.crossing()), len(self.pairs)
        if not n:
            self.summary.setText("No near-duplicate images found.")
        else:
            shown = f" (the first {MAX_SHOWN} are shown)" if n > MAX_SHOWN else ""
            self.summary.setText(f"{n:,} pair{'s' if n != 1 else ''} of near-duplicate images{shown}; "
                                 f"{crossing:,} of them in two parts of the split.")
        review = self.session.project.review if self.session.project is not None else None
        self.all_button.setEnabled(bool(crossing))
        for card in self.cards:
            card.status.setText(self._decided(card.pair, review))

    @staticmethod
    def _decided(pair: PairRow, review) -> str:
        if review is None:
            return ""
        for side, path in (("left", pair.left), ("right", pair.right)):
            if path in review.excluded:
                return f"Decided: the {side} image is left out of training."
        group = review.together_with(pair.left)
        if group is not None and pair.right in group:
            return "Decided: kept together in one part of the split."
        return ""

    # --- decisions ----------------------------------------------------------------------------------
    def keep_together(self, pairs: list[PairRow]) -> None:
        def change(review) -> None:
            for pair in pairs:
                review.keep_together([pair.left, pair.right])

        self.session.change_review(change)

    def keep_all_crossing(self) -> None:
        self.keep_together(self.crossing())

    def exclude(self, pair: PairRow, *, left: bool) -> None:
        path, other = (pair.left, pair.right) if left else (pair.right, pair.left)
        self.session.change_review(lambda review: review.exclude(path, "near-duplicate", of=other))

    def shutdown(self) -> None:
        self.cache.shutdown()
