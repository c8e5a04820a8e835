"""The review gallery: one image at a time with its given and suggested label; keep, relabel or exclude it.

Keys: K keep the label, R relabel to the suggested class, X leave the image out, left/right arrows for the
previous/next image; double-click the image for the large viewer. Each decision goes straight into the project
(``Session.change_review``: saved at once) and applies from the next training; the user's files are never
moved or renamed. Used by the Data step's quality check and by Evaluate's confusion cells (``ReviewDialog``).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QKeySequence, QMouseEvent, QPixmap, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.ui.review.rows import IssueRow
from tl_desktop.ui.session import Session
from tl_desktop.ui.widgets.common import hint, label
from tl_desktop.workers.thumbnails import ThumbnailCache

LARGE = 320
STRIP = 56
KEYS = ("Keys: K keep the label · R relabel to the suggested class · X leave the image out of training · "
        "← → previous / next · double-click the image to enlarge it.")


class _Picture(QLabel):
    double_clicked = Signal()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        self.double_clicked.emit()
        super().mouseDoubleClickEvent(event)


def decision_words(session: Session, path: str) -> str:
    """The project's decision on ``path`` in plain words ("" when none)."""
    review = session.project.review if session.project is not None else None
    if review is None:
        return ""
    if path in review.excluded:
        return f"Left out of training ({review.excluded[path].words()})"
    if path in review.relabelled:
        return f"Relabelled to {review.relabelled[path]}"
    if path in review.kept:
        return "Label kept"
    return ""


class ReviewGallery(QWidget):
    """Images to review (``IssueRow``s), one at a time, with the three decisions and their shortcuts."""

    def __init__(self, session: Session, exclude_reason: str = "label-error", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.exclude_reason = exclude_reason
        self.root = Path()
        self.rows: list[IssueRow] = []
        self.index = -1
        self.large = ThumbnailCache(LARGE, capacity=64, parent=self)
        self.small = ThumbnailCache(STRIP, capacity=2000, parent=self)
        self.large.loaded.connect(lambda path: self._refresh_picture())
        self.small.loaded.connect(self._on_small_loaded)
        self._build()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the K/R/X and arrow keys act while it has the focus
        session.review_changed.connect(self._refresh_status)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self.setFocus()

    def _build(self) -> None:
        self.picture = _Picture(alignment=Qt.AlignmentFlag.AlignCenter, minimumSize=QSize(LARGE, LARGE))
        self.picture.setToolTip("Double-click for a large view with zoom")
        self.picture.double_clicked.connect(self.open_large)
        self.position = label("", "hint")
        self.file = label("", wrap=True)
        self.file.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.given, self.suggested, self.score = label("", "figure"), label("", "figure"), label("", wrap=True)
        self.status = label("", "badge-ok", wrap=True)
        self.keep_button = QPushButton("Keep label (K)", toolTip="The given label is right: change nothing")
        self.relabel_button = QPushButton("Relabel (R)", toolTip="Give the image the suggested label from the "
                                                                 "next training on (the file is not moved)")
        self.exclude_button = QPushButton("Exclude (X)", toolTip="Leave the image out of the next training "
                                                                 "(the file stays where it is)")
        self.previous_button = QPushButton("← Previous", toolTip="The previous image (left arrow)")
        self.next_button = QPushButton("Next →", toolTip="The next image (right arrow)")
        self.keep_button.clicked.connect(self.keep)
        self.relabel_button.clicked.connect(self.relabel)
        self.exclude_button.clicked.connect(self.exclude)
        self.previous_button.clicked.connect(lambda: self.go(self.index - 1))
        self.next_button.clicked.connect(lambda: self.go(self.index + 1))
        self.strip = self._make_strip()
        self._shortcuts()
        self._arrange()

    def _make_strip(self) -> QListWidget:
        strip = QListWidget(focusPolicy=Qt.FocusPolicy.NoFocus)
        strip.setViewMode(QListWidget.ViewMode.IconMode)
        strip.setFlow(QListWidget.Flow.LeftToRight)
        strip.setWrapping(False)
        strip.setIconSize(QSize(STRIP, STRIP))
        strip.setFixedHeight(STRIP + 44)
        strip.setMovement(QListWidget.Movement.Static)
        strip.currentRowChanged.connect(self._on_strip_row)
        strip.itemDoubleClicked.connect(lambda _item: self.open_large())
        return strip

    def _shortcuts(self) -> None:
        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        for keys, slot in (("K", self.keep), ("R", self.relabel), ("X", self.exclude),
                           ("Left", lambda: self.go(self.index - 1)), ("Right", lambda: self.go(self.index + 1))):
            QShortcut(QKeySequence(keys), self, slot, context=context)

    def _arrange(self) -> None:
        facts = QGridLayout()
        for row, (name, widget) in enumerate((("Given label:", self.given), ("Suggested label:", self.suggested))):
            facts.addWidget(QLabel(name), row, 0)
            facts.addWidget(widget, row, 1)
        facts.setColumnStretch(2, 1)
        side = QVBoxLayout()
        for item in (self.position, self.file, facts, self.score, self.status):
            side.addLayout(item) if isinstance(item, QGridLayout) else side.addWidget(item)
        decide = QHBoxLayout()
        for button in (self.keep_button, self.relabel_button, self.exclude_button):
            decide.addWidget(button)
        move = QHBoxLayout()
        move.addWidget(self.previous_button)
        move.addWidget(self.next_button)
        side.addLayout(decide)
        side.addLayout(move)
        side.addStretch()
        top = QHBoxLayout()
        top.addWidget(self.picture)
        top.addLayout(side, 1)
        box = QVBoxLayout(self)
        box.addLayout(top, 1)
        box.addWidget(self.strip)
        box.addWidget(hint(KEYS))

    # --- content ------------------------------------------------------------------------------------
    def set_rows(self, rows: list[IssueRow], root: str | Path) -> None:
        """Review ``rows`` (paths relative to ``root``, the data folder); shows the first one."""
        self.root, self.rows = Path(root), list(rows)
        self.large.clear()
        self.small.clear()
        self.strip.blockSignals(True)
        self.strip.clear()
        for row in self.rows:
            item = QListWidgetItem(PurePosixPath(row.path).name)
            item.setToolTip(f"{row.path}\ngiven: {row.given}, suggested: {row.suggested}")
            self.strip.addItem(item)
        self.strip.blockSignals(False)
        self.index = -1
        self.go(0)

    def go(self, index: int) -> None:
        """Show row ``index`` (clamped to the rows)."""
        if not self.rows:
            self._show_empty()
            return
        self.index = max(0, min(index, len(self.rows) - 1))
        self.strip.blockSignals(True)
        self.strip.setCurrentRow(self.index)
        self.strip.blockSignals(False)
        row = self.rows[self.index]
        self.position.setText(f"Image {self.index + 1} of {len(self.rows)}")
        self.file.setText(row.path)
        self.given.setText(row.given)
        self.suggested.setText(row.suggested)
        self.score.setText(self._score_words(row))
        same = row.suggested == row.given
        self.relabel_button.setText("Relabel (R)" if same else f"Relabel to {row.suggested} (R)")
        self.relabel_button.setEnabled(not same)
        self.previous_button.setEnabled(self.index > 0)
        self.next_button.setEnabled(self.index < len(self.rows) - 1)
        self._refresh_picture()
        self._refresh_status()
        for button in (self.keep_button, self.exclude_button):
            button.setEnabled(True)

    @staticmethod
    def _score_words(row: IssueRow) -> str:
        if row.note:
            return row.note
        if row.score is None:
            return ""
        return (f"How strongly the other images contradict the given label: {100 * row.score:.0f} % "
                "(higher: more likely mislabelled).")

    def _show_empty(self) -> None:
        self.index = -1
        self.position.setText("Nothing to review.")
        for widget in (self.file, self.given, self.suggested, self.score, self.status):
            widget.setText("")
        self.picture.clear()
        for button in (self.keep_button, self.relabel_button, self.exclude_button, self.previous_button,
                       self.next_button):
            button.setEnabled(False)

    def _on_strip_row(self, row: int) -> None:
        if row >= 0 and row != self.index:
            self.go(row)

    def current(self) -> IssueRow | None:
        return self.rows[self.index] if 0 <= self.index < len(self.rows) else None

    def _absolute(self, row: IssueRow) -> str:
        return str(self.root / PurePosixPath(row.path))

    def _refresh_picture(self) -> None:
        row = self.current()
        image = self.large.get(self._absolute(row)) if row is not None else None
        if image is None or image.isNull():
            self.picture.setText("…" if row is not None else "")
            return
        self.picture.setPixmap(QPixmap.fromImage(image).scaled(
            LARGE, LARGE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))

    def _on_small_loaded(self, path: str) -> None:
        for i, row in enumerate(self.rows):
            if self._absolute(row) == path and (image := self.small.get(path)) is not None:
                self.strip.item(i).setIcon(QIcon(QPixmap.fromImage(image)))

    def _refresh_status(self) -> None:
        for i, row in enumerate(self.rows):
            item = self.strip.item(i)
            words = decision_words(self.session, row.path)
            item.setText(f"{'✓ ' if words else ''}{PurePosixPath(row.path).name}")
            if item.icon().isNull():
                self.small.get(self._absolute(row))
        row = self.current()
        words = decision_words(self.session, row.path) if row is not None else ""
        self.status.setText(f"Your decision: {words}." if words else "Not decided yet.")
        self.status.setProperty("role", "badge-ok" if words else "hint")
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    # --- decisions ----------------------------------------------------------------------------------
    def _decide(self, change: Any) -> None:
        row = self.current()
        if row is not None and self.session.change_review(lambda review: change(review, row)):
            self.go(self.index + 1)

    def keep(self) -> None:
        self._decide(lambda review, row: review.keep(row.path))

    def relabel(self) -> None:
        row = self.current()
        if row is not None and row.suggested != row.given:
            self._decide(lambda review, row: review.relabel(row.path, row.suggested))

    def exclude(self) -> None:
        self._decide(lambda review, row: review.exclude(row.path, self.exclude_reason))

    def open_large(self) -> None:
        """The large image viewer on the current image."""
        row = self.current()
        if row is None:
            return
        from tl_desktop.ui.widgets.image_viewer import KnownFacts, open_viewer

        split = self.session.split
        part = split.assignment.get(row.path) if split is not None else None
        open_viewer(self, self._absolute(row), KnownFacts(label=row.given, split=part))

    def shutdown(self) -> None:
        self.large.shutdown()
        self.small.shutdown()


class ReviewDialog(QDialog):
    """The review gallery in its own window (from Evaluate's confusion cells)."""

    def __init__(self, session: Session, rows: list[IssueRow], root: str | Path, heading: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Review images")
        self.gallery = ReviewGallery(session, exclude_reason="user", parent=self)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        box = QVBoxLayout(self)
        box.addWidget(label(heading, wrap=True))
        box.addWidget(hint("Your decisions are saved in the project at once and apply from the next training; "
                           "undo them in the Data step. Your files are never moved or renamed."))
        box.addWidget(self.gallery, 1)
        box.addWidget(buttons)
        self.resize(860, 620)
        self.gallery.set_rows(rows, root)

    def done(self, result: int) -> None:
        self.gallery.shutdown()
        super().done(result)


def rows_of_answers(images: list[Any]) -> list[IssueRow]:
    """Review rows of an evaluation's per-image answers (``stored_result.ImageResult``): the given label is the
    true class, the suggestion the model's answer (none when it was "not sure")."""
    from tl_desktop.core.evaluation.stored_result import NOT_SURE

    rows = []
    for image in images:
        sure = image.predicted != NOT_SURE
        said = (f"The model said {image.predicted} ({100 * image.probabilities.get(image.predicted, 0.0):.0f} %)."
                if sure else "The model was not sure.")
        rows.append(IssueRow(image.path, image.true, image.predicted if sure else image.true, None, said))
    return rows


def open_review(parent: QWidget, session: Session, images: list[Any], root: str | Path, heading: str) -> ReviewDialog:
    """The review gallery in its own window on Evaluate's shown images (non-modal; deleted when closed)."""
    dialog = ReviewDialog(session, rows_of_answers(images), root, heading, parent.window())
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    dialog.activateWindow()
    dialog.gallery.setFocus()
    return dialog
