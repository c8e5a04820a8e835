"""The calibration tab of Evaluate: the reliability diagram with the expected calibration error before and
after temperature scaling, and accuracy versus coverage with the "not sure" (abstain) threshold control."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QGridLayout,
    QGroupBox,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.ui.glossary import follow_links, link, set_term
from tl_desktop.ui.widgets.common import label
from tl_desktop.ui.widgets.curve_plots import CalibrationPlots

SLIDER_STEPS = 1000
DEFAULT_ABSTAIN = 0.7


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


class CalibrationPanel(QWidget):
    abstain_changed = Signal(object)  # float | None
    accuracy_pick_requested = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plots = CalibrationPlots()
        self.ece = label("", wrap=True)
        self.enabled = QCheckBox("Let the model say “not sure”", toolTip=(
            "Below this top probability the model answers “not sure” instead of a class, in Predict, in batch "
            "CSV files and in the exported model (once you press “Use this operating point” in “Threshold and curves”)"))
        self.enabled.toggled.connect(self._emit)
        self.slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=SLIDER_STEPS, enabled=False,
                              toolTip="“Not sure” below this probability of the most probable class")
        self.slider.valueChanged.connect(lambda v: self._emit())
        self.value = QDoubleSpinBox(minimum=0.0, maximum=1.0, decimals=4, singleStep=0.01, enabled=False,
                                    toolTip="The abstain threshold as a number (top probability, calibrated)")
        self.value.valueChanged.connect(self._typed)
        self.target = QDoubleSpinBox(minimum=0.5, maximum=1.0, decimals=2, singleStep=0.01, value=0.95,
                                     toolTip="The accuracy the answered validation images must reach")
        self.pick = QPushButton("Accuracy ≥", toolTip=(
            "The lowest “not sure” threshold whose answered validation images reach this accuracy: the most "
            "images answered for that accuracy"))
        self.pick.clicked.connect(lambda: self.accuracy_pick_requested.emit(self.target.value()))
        self.figures = label("", wrap=True)
        self.note = label("", "hint", wrap=True)
        self._arrange()

    def _arrange(self) -> None:
        calibration = QGroupBox("Calibration")
        QVBoxLayout(calibration).addWidget(self.ece)
        set_term(calibration, "calibration")  # F1; its words are links to the glossary (show_calibration)
        follow_links(self.ece)
        abstain = QGroupBox("“Not sure”")
        grid = QGridLayout(abstain)
        grid.addWidget(self.enabled, 0, 0, 1, 3)
        set_term(self.enabled, "not_sure")  # F1; the plot beside it has the "?" (no taller row at 1024 x 700)
        grid.addWidget(label("Threshold:"), 1, 0)
        grid.addWidget(self.slider, 1, 1)
        grid.addWidget(self.value, 1, 2)
        grid.addWidget(self.pick, 2, 0)
        grid.addWidget(self.target, 2, 1, 1, 2)
        grid.addWidget(self.figures, 3, 0, 1, 3)
        grid.addWidget(self.note, 4, 0, 1, 3)
        side = QVBoxLayout()
        side.addWidget(calibration)
        side.addWidget(abstain)
        side.addStretch()
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setFixedWidth(330)
        box = QGridLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.plots, 0, 0)
        box.addWidget(side_widget, 0, 1)

    # --- input --------------------------------------------------------------------------------------
    def abstain(self) -> float | None:
        return self.value.value() if self.enabled.isChecked() else None

    def _emit(self) -> None:
        on = self.enabled.isChecked()
        self.slider.setEnabled(on)
        self.value.setEnabled(on)
        if on and self.sender() is self.slider:
            self._show_value(self.slider.value() / SLIDER_STEPS, slider=False)
        self.abstain_changed.emit(self.abstain())

    def _typed(self, value: float) -> None:
        self._show_value(value, spin=False)
        self.abstain_changed.emit(self.abstain())

    def _show_value(self, value: float, slider: bool = True, spin: bool = True) -> None:
        for widget, v, on in ((self.slider, round(value * SLIDER_STEPS), slider), (self.value, value, spin)):
            if on:
                widget.blockSignals(True)
                widget.setValue(v)
                widget.blockSignals(False)

    def set_abstain(self, value: float | None) -> None:
        """Show a stored or picked threshold without emitting."""
        self.enabled.blockSignals(True)
        self.enabled.setChecked(value is not None)
        self.enabled.blockSignals(False)
        self.slider.setEnabled(value is not None)
        self.value.setEnabled(value is not None)
        self._show_value(DEFAULT_ABSTAIN if value is None else value)

    # --- output -------------------------------------------------------------------------------------
    def show_calibration(self, calibration: dict[str, Any] | None, temperature: float, n_val: int) -> None:
        self.plots.set_calibration(calibration, temperature)
        if not calibration:
            self.ece.setText("No calibration figures for this run.")
            return
        before, after = calibration["before"]["ece"], calibration["after"]["ece"]
        self.ece.setText(
            f"Expected {link('calibration', 'calibration')} error on the test images: <b>{_pct(before)}</b> as "
            f"trained, <b>{_pct(after)}</b> after {link('temperature', 'temperature scaling')} "
            f"(T = {temperature:.2f}, fitted on {n_val} "
            "validation images). Lower is better: it is the average gap between the model's probability "
            "and how often it is right. The exported model reports the scaled probabilities.")

    def show_coverage(self, curve: dict[str, list[float]] | None, accuracy: float | None, coverage: float,
                      plain_accuracy: float | None) -> None:
        self.plots.set_coverage(curve)
        on = self.enabled.isChecked()
        self.plots.set_point(coverage if on else 1.0, accuracy if on else plain_accuracy)
        if on:
            self.figures.setText(f"The model answers {_pct(coverage)} of the test images and says “not sure” "
                                 f"for the rest; accuracy on the answered images {_pct(accuracy)} "
                                 f"(answering all: {_pct(plain_accuracy)}).")
        else:
            self.figures.setText(f"Answering every test image: accuracy {_pct(plain_accuracy)}.")

    def clear(self) -> None:
        """Nothing shown: no diagram, coverage curve or figures (another run or project)."""
        self.plots.set_calibration(None, 1.0)
        self.plots.set_coverage(None)
        self.plots.set_point(None, None)
        self.set_abstain(None)
        for text in (self.ece, self.figures, self.note):
            text.clear()
