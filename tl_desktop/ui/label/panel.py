"""The Label step's side panel: the proposal, the class buttons (keys 1-9), skip / not sure / undo, progress,
the order, and the live estimate of accuracy. Widgets only: the view tells it what to show."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.ui.widgets.common import label

ORDER_CHOICES = (("uncertainty", "Most informative first (varied)"), ("random", "Random"),
                 ("sequential", "File order"))
ORDER_TIPS = {"uncertainty": "The images the model is least sure about, picked so that a batch is not ten "
                             "near-identical images (before the model can guess: the most typical image of each "
                             "group of similar images)",
              "random": "Images in random order: what the model learns from is a fair sample",
              "sequential": "Images in the order of their file names"}


def _button(text: str, tip: str) -> QPushButton:
    button = QPushButton(text, toolTip=tip)
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the keys stay with the picture
    return button


class LabelPanel(QWidget):
    """``class_clicked(index)``, ``accept_clicked``, ``skip_clicked``, ``not_sure_clicked``, ``undo_clicked``,
    ``order_chosen(order)``."""

    class_clicked = Signal(int)
    accept_clicked = Signal()
    skip_clicked = Signal()
    not_sure_clicked = Signal()
    undo_clicked = Signal()
    order_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.class_buttons: list[QPushButton] = []
        self.proposal = label("", "figure", wrap=True)
        self.accept = _button("Accept  (Enter)", "Give the image the proposed label")
        self.accept.clicked.connect(self.accept_clicked)
        self.classes_box = QGroupBox("Label this image as")
        self.classes_grid = QGridLayout(self.classes_box)
        self.skip = _button("Skip  (S)", "Show this image again later; nothing is stored (S or Space)")
        self.skip.clicked.connect(self.skip_clicked)
        self.not_sure = _button("Not sure  (N)", "You cannot decide: the image stays unlabelled and leaves "
                                                 "the queue")
        self.not_sure.clicked.connect(self.not_sure_clicked)
        self.undo = _button("Undo  (Ctrl+Z)", "Take back the last decision (Ctrl+Z or Backspace; several "
                                              "steps)")
        self.undo.clicked.connect(self.undo_clicked)
        self.progress_text = label("", wrap=True)
        self.progress = QProgressBar(toolTip="Images labelled or marked not sure, of all images to label",
                                     textVisible=False, maximumHeight=10)
        self.features = label("", "hint", wrap=True)
        self.features_bar = QProgressBar(toolTip="Reading every image once so the model can propose labels",
                                         maximumHeight=10, textVisible=False, visible=False)
        self.order = QComboBox(toolTip="Which image comes next")
        for key, text in ORDER_CHOICES:
            self.order.addItem(text, key)
            self.order.setItemData(self.order.count() - 1, ORDER_TIPS[key], Qt.ItemDataRole.ToolTipRole)
        self.order.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.order.activated.connect(lambda i: self.order_chosen.emit(self.order.itemData(i)))
        self.estimate = label("", "figure", wrap=True)
        self.sentence = label("", "hint", wrap=True)
        self._arrange()

    def _arrange(self) -> None:
        actions = QHBoxLayout()
        for button in (self.skip, self.not_sure, self.undo):
            actions.addWidget(button)
        order = QHBoxLayout()
        order.addWidget(label("Next:"))
        order.addWidget(self.order, 1)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.proposal)
        box.addWidget(self.accept)
        box.addWidget(self.classes_box)
        box.addLayout(actions)
        box.addWidget(self.progress_text)
        box.addWidget(self.progress)
        box.addLayout(order)
        box.addWidget(self.features)
        box.addWidget(self.features_bar)
        box.addWidget(self.estimate)
        box.addWidget(self.sentence)
        box.addStretch(1)

    # --- what to show -------------------------------------------------------------------------------
    def set_classes(self, names: list[str], counts: dict[str, int], proposed: str | None) -> None:
        """One button per class: its key, name and count; the proposed class's button stands out."""
        if [b.property("class_name") for b in self.class_buttons] != names:
            for button in self.class_buttons:
                button.deleteLater()
            self.class_buttons = []
            for n, name in enumerate(names):
                key = f"key {n + 1}" if n < 9 else "no key: click"
                button = _button("", f"Label as '{name}' ({key})")
                button.setProperty("class_name", name)
                button.setStyleSheet("text-align: left; padding: 6px 10px;")
                button.clicked.connect(lambda _c=False, i=n: self.class_clicked.emit(i))
                self.classes_grid.addWidget(button, n, 0)
                self.class_buttons.append(button)
        for n, (button, name) in enumerate(zip(self.class_buttons, names, strict=True)):
            key = f"{n + 1}" if n < 9 else "  "
            button.setText(f"{key}    {name}    ({counts.get(name, 0):,})")
            bold = "font-weight: 600; border: 2px solid palette(highlight);" if name == proposed else ""
            button.setStyleSheet(f"text-align: left; padding: 6px 10px; {bold}")

    def set_proposal(self, proposal: tuple[str, float] | None, why_not: str) -> None:
        if proposal is None:
            self.proposal.setText(why_not)
            self.proposal.setProperty("role", "hint")
        else:
            self.proposal.setText(f"Proposed: {proposal[0]}  ({100 * proposal[1]:.0f} %)")
            self.proposal.setProperty("role", "figure")
        self.proposal.style().unpolish(self.proposal)
        self.proposal.style().polish(self.proposal)
        self.accept.setEnabled(proposal is not None)

    def set_progress(self, progress: dict[str, Any]) -> None:
        done = progress["labelled"] + progress["not_sure"]
        self.progress_text.setText(f"<b>{progress['labelled']:,}</b> labelled · {progress['not_sure']:,} not sure"
                                   f" · <b>{progress['open']:,}</b> to go (of {progress['total']:,})")
        self.progress.setRange(0, max(1, progress["total"]))
        self.progress.setValue(done)

    def set_order(self, order: str) -> None:
        self.order.setCurrentIndex(max(0, self.order.findData(order)))

    def set_features(self, text: str, done: int | None = None, total: int | None = None) -> None:
        """The embedding line; a bar while ``total`` is given."""
        self.features.setText(text)
        self.features.setVisible(bool(text))
        self.features_bar.setVisible(total is not None)
        if total is not None:
            self.features_bar.setRange(0, max(total, 1))
            self.features_bar.setValue(done or 0)

    def set_estimate(self, estimate: Any | None) -> None:
        """The cross-validated accuracy so far and whether more labels still pay off."""
        if estimate is None:
            self.estimate.setText("")
            self.sentence.setText("The estimate of accuracy appears after a few labels per class.")
            return
        if estimate.accuracy is None:
            self.estimate.setText("")
        else:
            self.estimate.setText(f"Estimated accuracy {estimate.words()}")
            self.estimate.setToolTip(f"{estimate.folds}-fold cross-validation of a quick model on the "
                                     f"{estimate.labels} images labelled so far (an estimate, not a test)")
        self.sentence.setText(estimate.sentence)

    def set_enabled(self, can_decide: bool) -> None:
        for button in (*self.class_buttons, self.skip, self.not_sure):
            button.setEnabled(can_decide)
