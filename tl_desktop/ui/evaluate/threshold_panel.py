"""The threshold tab of Evaluate: ROC/PR curves, a class chooser, a threshold slider with pickers,
sensitivity/specificity/PPV/NPV with 95% intervals and the confusion matrix at that threshold.

With two classes the chooser holds the positive class and the suggested operating point is shown as a
suggestion until the user presses "Use this operating point". With more than two classes it starts at "none"
(the model answers the most probable class) and says so; the user may choose a class of interest, then an
operating point for it. The panel shows what it is given and reports what the user asks for (signals); the
Evaluate view computes the figures with the core's functions and stores the choice for export.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QScrollArea,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.ui.data.scan_report import fill_table, make_table
from tl_desktop.ui.glossary import term_links, with_term
from tl_desktop.ui.widgets.common import fit_columns, keep_height, label
from tl_desktop.ui.widgets.confusion import ConfusionMatrix
from tl_desktop.ui.widgets.curve_plots import RocPrPlots

SLIDER_STEPS = 1000
WIDE = 1000  # from this width of the tab the figures stand beside the matrix
NO_CLASS = "none: the most probable class"
FIGURES = [("sensitivity", "Sensitivity", "of the images with the finding, the share the model flags"),
           ("specificity", "Specificity", "of the images without it, the share the model clears"),
           ("ppv", "PPV", "when the model flags an image, how often it is right"),
           ("npv", "NPV", "when the model clears an image, how often it is right"),
           ("accuracy", "Accuracy", "share of answered test images classified right")]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def figure_row(name: str, figure: dict[str, Any]) -> list[Any]:
    """[name, value (k of n), 95% interval] of one ``clinical.binary_stats`` proportion."""
    ci = "–" if figure.get("low") is None else f"{100 * figure['low']:.1f}–{100 * figure['high']:.1f} %"
    return [name, f"{_pct(figure.get('value'))} ({figure.get('k', 0)}/{figure.get('n', 0)})", ci]


class ThresholdPanel(QWidget):
    positive_changed = Signal(object)  # str | None (no class of interest)
    threshold_changed = Signal(float)
    pick_requested = Signal(str, float)  # method ("youden", "sensitivity", "specificity"), target
    export_requested = Signal()
    clear_requested = Signal()
    cell_clicked = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plots = RocPrPlots()
        self.positive = QComboBox(toolTip="The finding to detect: sensitivity, specificity, PPV and NPV are "
                                          "those of this class against all others")
        self.positive.currentIndexChanged.connect(lambda _i: self.positive_changed.emit(self.chosen_class()))
        self.class_label = label("Positive class:")
        self.intro = label("", "hint", wrap=True)
        self._many = False
        self.reason = label("", "hint", wrap=True)
        self.slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=SLIDER_STEPS, toolTip=(
            "Decision threshold: an image is called positive when the model's probability of the positive "
            "class is at least this. Lower finds more cases (sensitivity up) and raises more false alarms."))
        self.slider.valueChanged.connect(lambda v: self.threshold_changed.emit(v / SLIDER_STEPS))
        self.value = QDoubleSpinBox(minimum=0.0, maximum=1.0, decimals=4, singleStep=0.01, toolTip=(
            "The threshold as a number (probability of the positive class, after calibration)"))
        self.value.valueChanged.connect(self._typed)
        self.youden = QPushButton("Best balance (Youden)", toolTip=(
            "The threshold with the largest sensitivity + specificity − 1, chosen on the validation images"))
        self.youden.clicked.connect(lambda: self.pick_requested.emit("youden", 0.0))
        self.sens_target = QDoubleSpinBox(minimum=0.5, maximum=1.0, decimals=2, singleStep=0.01, value=0.95,
                                          toolTip="The sensitivity the threshold must reach on validation")
        self.sens_button = QPushButton("Sensitivity ≥", toolTip=(
            "The highest threshold whose sensitivity on the validation images reaches the target: the best "
            "specificity that does not miss more cases than you accept"))
        self.sens_button.clicked.connect(lambda: self.pick_requested.emit("sensitivity", self.sens_target.value()))
        self.spec_target = QDoubleSpinBox(minimum=0.5, maximum=1.0, decimals=2, singleStep=0.01, value=0.95,
                                          toolTip="The specificity the threshold must reach on validation")
        self.spec_button = QPushButton("Specificity ≥", toolTip=(
            "The lowest threshold whose specificity on the validation images reaches the target"))
        self.spec_button.clicked.connect(lambda: self.pick_requested.emit("specificity", self.spec_target.value()))
        self.pick_note = label("", "hint", wrap=True)
        self.export_button = QPushButton("Use this operating point", toolTip=(
            "Store this class, this threshold and the “not sure” setting with the run as your choice: the next "
            "ONNX export carries them, so the exported model decides exactly as shown here"))
        self.export_button.setProperty("role", "primary")
        self.export_button.clicked.connect(self.export_requested.emit)
        self.clear_button = QPushButton("Remove the decision rule", visible=False, toolTip=(
            "Forget the operating point you chose: the exported model then answers the most probable class"))
        self.clear_button.clicked.connect(self.clear_requested.emit)
        self.stored = label("", "hint", wrap=True)
        self.table = fit_columns(make_table(["Figure", "Value (images)", "95% CI"], "Figures on the test images "
                                            "at this threshold, with Wilson 95% intervals"))
        self.matrix = ConfusionMatrix()
        self.matrix.cell_clicked.connect(self.cell_clicked.emit)
        self._arrange()

    def _arrange(self) -> None:
        """Curves on top; below them the decision, its figures and its matrix side by side. On a screen too
        low for all of it (1024 x 700) the tab scrolls up and down, never sideways."""
        controls = QGroupBox("Decision")
        grid = QGridLayout(controls)
        grid.addWidget(self.intro, 0, 0, 1, 3)
        grid.addWidget(self.class_label, 1, 0, 1, 3)  # the chooser on a line of its own: class names are long
        grid.addWidget(self.positive, 2, 0, 1, 3)
        grid.addWidget(self.reason, 3, 0, 1, 3)
        grid.addLayout(with_term(label("Threshold:"), "threshold", controls), 4, 0)
        grid.addWidget(self.slider, 4, 1)
        grid.addWidget(self.value, 4, 2)
        grid.addWidget(self.youden, 5, 0, 1, 3)
        grid.addWidget(self.sens_button, 6, 0)
        grid.addWidget(self.sens_target, 6, 1, 1, 2)
        grid.addWidget(self.spec_button, 7, 0)
        grid.addWidget(self.spec_target, 7, 1, 1, 2)
        for row, widget in enumerate((self.pick_note, self.export_button, self.stored, self.clear_button), start=8):
            grid.addWidget(widget, row, 0, 1, 3)
        grid.setRowStretch(12, 1)
        for text in (self.intro, self.reason, self.pick_note, self.stored):
            keep_height(text)  # a wrapped line keeps the height of its text: never cut at the top
        controls.setMinimumWidth(290)
        figures = QGroupBox("At this threshold (test images)")
        figures_box = QVBoxLayout(figures)
        figures_box.addWidget(self.table)
        figures_box.addWidget(term_links([("sensitivity", "sensitivity"), ("specificity", "specificity"),
                                          ("ppv_npv", "PPV/NPV"), ("confidence_interval", "95% interval")], figures))
        matrix = QGroupBox("Confusion matrix (click a cell)")
        matrix.setToolTip("The confusion matrix at this threshold: click a cell to see its images")
        QVBoxLayout(matrix).addWidget(self.matrix)
        self._results = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=False)  # figures | matrix
        self._results.addWidget(figures)
        self._results.addWidget(matrix)
        self._results.setSizes([260, 450])
        bottom = QSplitter(Qt.Orientation.Horizontal, childrenCollapsible=False)
        bottom.addWidget(controls)
        bottom.addWidget(self._results)
        bottom.setSizes([330, 710])
        body = QSplitter(Qt.Orientation.Vertical, childrenCollapsible=False)
        body.addWidget(self.plots)
        body.addWidget(bottom)
        body.setSizes([215, 370])
        scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        box = QHBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(scroll)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        """The figures beside the matrix on a wide screen, above it on a narrow one (1024 px)."""
        super().resizeEvent(event)
        wide = event.size().width() >= WIDE
        orientation = Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical
        if self._results.orientation() != orientation:
            self._results.setOrientation(orientation)

    # --- input --------------------------------------------------------------------------------------
    def _typed(self, value: float) -> None:
        if abs(value - self.slider.value() / SLIDER_STEPS) > 0.5 / SLIDER_STEPS:
            self.threshold_changed.emit(value)

    def chosen_class(self) -> str | None:
        """The class chosen in the chooser; None for "none" (the most probable class answers)."""
        return self.positive.currentData() or None

    def set_classes(self, names: list[str], positive: str | None, reason: str) -> None:
        """The chooser for these classes; more than two start with "none" and a sentence why."""
        many = self._many = len(names) > 2
        self.positive.blockSignals(True)
        self.positive.clear()
        if many:
            self.positive.addItem(NO_CLASS, "")
        for name in names:
            self.positive.addItem(name, name)
        self.positive.setCurrentIndex(max(0, self.positive.findData(positive or "")))
        self.positive.blockSignals(False)
        self.class_label.setText("Class of interest:" if many else "Positive class:")
        self.intro.setText(
            f"{len(names)} classes: each image gets its most probable class; no class is treated as "
            "“positive”. Choose one to study it against the others." if many else
            "A suggestion until you press “Use this operating point”.")
        self.show_reason(positive, reason)
        self.set_point_enabled(positive is not None)

    def show_reason(self, positive: str | None, reason: str) -> None:
        text = f"Why {positive}: {reason}." if positive and reason else ""
        self.reason.setText(text)  # room for three lines only when there is a reason to show
        self.reason.setMinimumHeight(3 * self.reason.fontMetrics().height() if text else 0)

    def set_point_enabled(self, enabled: bool) -> None:
        """Threshold, pickers and "Use this operating point" only once a class is chosen."""
        for widget in (self.slider, self.value, self.youden, self.sens_button, self.sens_target, self.spec_button,
                       self.spec_target, self.export_button):
            widget.setEnabled(enabled)
        # with many classes the explanation of "none" gives way to the chosen class's figures
        self.intro.setVisible(not (enabled and self._many))

    def show_status(self, text: str, chosen: bool) -> None:
        """The line on what the exported model decides; "Remove the decision rule" once the user chose one."""
        self.stored.setText(text)
        self.clear_button.setVisible(chosen)

    def set_threshold(self, threshold: float) -> None:
        """Show a threshold without emitting (the exact value stays in the view)."""
        for widget, value in ((self.slider, round(threshold * SLIDER_STEPS)), (self.value, threshold)):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)

    # --- output -------------------------------------------------------------------------------------
    def show_plain(self, class_names: list[str], confusion: list[list[int]], not_sure: list[int] | None) -> None:
        """No class of interest: no threshold figures; the matrix of the most probable class ("not sure" too)."""
        fill_table(self.table, [["Choose a class of interest", "–", "–"]])
        self.table.item(0, 0).setToolTip("Sensitivity, specificity, PPV and NPV are those of one class against "
                                         "the others: choose the class above")
        self.matrix.set_matrix(class_names, confusion, not_sure)
        self.plots.set_point(None, None, None)

    def show_point(self, point: dict[str, Any], class_names: list[str], abstain: float | None) -> None:
        """Figures and matrix of ``decision.operating_point``."""
        rows = [figure_row(name, point[key]) for key, name, _tip in FIGURES]
        if abstain is not None:
            rows.append(["Answered", _pct(point.get("coverage")), "the rest: “not sure”"])
        fill_table(self.table, rows)
        for r, (_key, _name, tip) in enumerate(FIGURES):
            self.table.item(r, 0).setToolTip(tip)
        confusion = point["confusion"]
        self.matrix.set_matrix(class_names, confusion["matrix"], confusion["not_sure"] if abstain is not None
                               else None)
        s, sp, ppv = (point[k]["value"] for k in ("sensitivity", "specificity", "ppv"))
        self.plots.set_point(s, sp, ppv)

    def clear(self) -> None:
        """Nothing shown: no curves, classes, figures, matrix or notes (another run or project)."""
        self.plots.set_curves({}, [], None)
        self.plots.set_point(None, None, None)
        self.set_classes([], None, "")
        self.set_threshold(0.5)
        for text in (self.intro, self.pick_note):
            text.clear()
        self.show_status("", False)
        fill_table(self.table, [])
        self.matrix.set_matrix([], [])
