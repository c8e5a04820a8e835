"""A short guided tour of the window's steps: seven pages, Back / Next / Skip, the step it speaks of lit up in
the sidebar. It opens by itself once, on the first start (``app.main`` calls ``show_on_first_start``; the
window never opens it on its own, so tests that build a ``MainWindow`` never see it), and again from
Help > Guided tour. It is not modal: the window stays usable behind it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QHBoxLayout,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.ui.settings import set_tour_shown, tour_shown
from tl_desktop.ui.widgets.common import hint, label

FIRST_START_DELAY_MS = 400  # let the window paint first

# (sidebar step key or None, title, text)
PAGES: list[tuple[str | None, str, str]] = [
    ("start", "Welcome to tl-desktop",
     "This app teaches a model to recognise what matters in your own images, on this computer, without "
     "programming. The steps on the left go from your images to a model you can use. To try them all in a "
     "minute, open the sample project (handwritten digits) on the Start page."),
    ("data", "1  Data (and Label)",
     "Choose your images: a folder with one subfolder per class, or a table listing files and labels. The app "
     "checks them (unreadable files, copies, tiny classes) and splits them into training, validation and test "
     "images, keeping each patient's images together. Images without labels can be labelled in the Label step."),
    ("model", "2  Model",
     "Pick a pretrained network: one that has already learnt from millions of everyday photos and now learns "
     "your images much faster than from nothing."),
    ("train", "3  Train",
     "Choose how much of the network to adjust, then press Start. The curves show the model learning; the best "
     "epoch is kept. You can stop at any time and continue later."),
    ("evaluate", "4  Evaluate",
     "See how the model does on the test images it never saw: sensitivity, specificity, AUC with their "
     "uncertainty, the mistakes it made, and how well its percentages can be trusted."),
    ("export", "5  Export",
     "Save the model as one checked file (ONNX) with a report and a model card, for use outside this app."),
    ("predict", "6  Predict",
     "Run an exported model on new images and save its answers to a table. Unfamiliar images are flagged.\n\n"
     "Press F1 in any step for the glossary; a ? next to a word explains it. Help > Guided tour shows this "
     "tour again."),
]


class GuidedTour(QDialog):
    """The tour over ``window`` (a ``MainWindow``: its ``steps`` sidebar is lit up page by page)."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setWindowTitle("Guided tour — tl-desktop")
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._sidebar: QListWidget | None = getattr(window, "steps", None)
        self.page = 0
        self.counter = hint("")
        self.heading = label("", "title")
        self.body = label("", wrap=True)
        self.body.setMinimumHeight(110)
        self.body.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.skip_button = QPushButton("Skip the tour", clicked=self.close)
        self.back_button = QPushButton("Back", clicked=lambda: self.go(self.page - 1))
        self.next_button = QPushButton("Next", clicked=self._next, default=True)
        self.next_button.setProperty("role", "primary")
        buttons = QHBoxLayout()
        buttons.addWidget(self.skip_button)
        buttons.addStretch(1)
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.next_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.counter)
        layout.addWidget(self.heading)
        layout.addWidget(self.body, 1)
        layout.addLayout(buttons)
        self.setMinimumWidth(460)
        self.finished.connect(lambda _r: self._light(None))
        self.go(0)

    def go(self, page: int) -> None:
        """Show page ``page`` (clamped to the pages there are)."""
        self.page = max(0, min(page, len(PAGES) - 1))
        key, heading, body = PAGES[self.page]
        self.counter.setText(f"Step {self.page + 1} of {len(PAGES)}")
        self.heading.setText(heading)
        self.body.setText(body)
        self.back_button.setEnabled(self.page > 0)
        last = self.page == len(PAGES) - 1
        self.next_button.setText("Finish" if last else "Next")
        self.skip_button.setVisible(not last)
        self._light(key)

    def _next(self) -> None:
        if self.page == len(PAGES) - 1:
            self.close()
        else:
            self.go(self.page + 1)

    def lit_step(self) -> str | None:
        """The sidebar step now lit up (tests and the tour's own bookkeeping)."""
        if self._sidebar is None:
            return None
        for row in range(self._sidebar.count()):
            item = self._sidebar.item(row)
            if item.background().style() != Qt.BrushStyle.NoBrush:
                return item.data(Qt.ItemDataRole.UserRole)
        return None

    def _light(self, key: str | None) -> None:
        """Light up the sidebar row of step ``key`` (None: none), in the palette's highlight colour."""
        if self._sidebar is None:
            return
        colour = QColor(QApplication.palette().color(QPalette.ColorRole.Highlight))
        colour.setAlpha(150)
        for row in range(self._sidebar.count()):
            item = self._sidebar.item(row)
            mine = key is not None and item.data(Qt.ItemDataRole.UserRole) == key
            item.setBackground(QBrush(colour) if mine else QBrush())

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._light(None)
        super().closeEvent(event)


def start_tour(window: QWidget) -> GuidedTour:
    """Open the tour at its first page (Help > Guided tour); it is marked as shown."""
    set_tour_shown(True)
    tour = GuidedTour(window)
    window.tour = tour  # type: ignore[attr-defined] - kept for tests and so it is not collected
    tour.show()
    return tour


def show_on_first_start(window: QWidget, delay_ms: int = FIRST_START_DELAY_MS) -> bool:
    """Open the tour shortly after ``window`` appears, unless it was shown before; whether it will open."""
    if tour_shown():
        return False
    set_tour_shown(True)  # once, even if the app is closed before the timer fires
    QTimer.singleShot(delay_ms, window, lambda: start_tour(window))
    return True
