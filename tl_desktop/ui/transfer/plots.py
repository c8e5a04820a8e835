"""Plots of the "Did transfer help?" window (pyqtgraph, no torch).

``LearningCurves`` overlays, live, the validation balanced accuracy per epoch of the fine-tune (with transfer),
the same network from scratch (without) and the linear probe, with chance level and the check's target line.
``LabelBudgetPlot`` draws test balanced accuracy versus images per class with the spread over random draws
(before there is a curve: a sentence saying how to get one, not an empty axis).
Points are buffered and drawn at most every ``REDRAW_MS``, as in ``plots.TrainingPlots``.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QStackedLayout, QVBoxLayout, QWidget

from tl_desktop.ui.widgets.themed_plot import make_plot

REDRAW_MS = 100
# Colour-blind-safe pair for the two curves the question is about (blue = with, orange = without transfer).
ARMS = {
    "fine-tune": ("last layers too (fine-tune, with transfer)", "#3f7cbf", Qt.PenStyle.SolidLine, "o"),
    "scratch": ("from random weights (from scratch, without transfer)", "#e07b39", Qt.PenStyle.SolidLine, "s"),
    "linear-probe": ("last layer only (linear probe)", "#2e9d5b", Qt.PenStyle.DashLine, "t"),
}
TARGET, CHANCE, SPREAD = "#7a4fa3", "#8c8c8c", "#3f7cbf"


def themed_plot(title: str, x_label: str, y_label: str, legend: bool = True) -> pg.PlotWidget:
    """``themed_plot.make_plot`` with a legend on an opaque box (or none), fixed axes and y from 0 to 100 %."""
    widget = make_plot(title, y_label, legend_offset=(-10, -10) if legend else None, x_label=x_label)
    legend_item = widget.getPlotItem().legend
    if legend_item is not None:
        legend_item.setBrush(pg.mkBrush(QApplication.palette().color(QPalette.ColorRole.Base)))
    widget.setMouseEnabled(x=False, y=False)
    widget.setYRange(0, 100, padding=0.02)
    widget.setMinimumHeight(220)
    return widget


def _hline(plot: pg.PlotWidget, colour: str, style: Qt.PenStyle, left: bool) -> pg.InfiniteLine:
    """A horizontal guide with its label above the line, at the left or the right end of the plot."""
    anchor = (0, 1) if left else (1, 1)
    fill = QApplication.palette().color(QPalette.ColorRole.Base)
    fill.setAlpha(200)
    line = pg.InfiniteLine(angle=0, pen=pg.mkPen(colour, width=1.5, style=style), label="",
                           labelOpts={"position": 0.01 if left else 0.99, "color": colour, "fill": fill,
                                      "anchors": [anchor, anchor]})
    line.setVisible(False)
    plot.addItem(line)
    return line


def legend_html() -> str:
    """The key of ``LearningCurves`` as a small table under the plot, where it never hides a curve."""
    marks = {"o": "●", "s": "■", "t": "▼"}

    def cell(colour: str, mark: str, text: str) -> str:
        return f'<td style="padding-right:18px"><span style="color:{colour}">{mark}</span>&nbsp;{text}</td>'

    curves = "".join(cell(colour, f"━{marks[symbol]}━" if style == Qt.PenStyle.SolidLine else f"╍{marks[symbol]}╍",
                          name) for name, colour, style, symbol in ARMS.values())
    guides = cell(TARGET, "╍╍╍", "target of indicator 2") + cell(CHANCE, "┈┈┈", "chance (guessing)")
    return f"<table><tr>{curves}</tr><tr>{guides}</tr></table>"


TITLE = "Validation balanced accuracy per epoch (higher is better)"
EMPTY_BUDGET = ("The curve will appear here: the test score (balanced accuracy %) against the number of labelled "
                "images per class.")
MULTILABEL_TITLE = "Validation balanced accuracy per epoch: mean over findings, each present at p ≥ 0.5"


class LearningCurves(QWidget):
    """Validation balanced accuracy (%) per epoch of each network arm; ``add_point`` while training,
    ``set_curves`` for a finished check, ``set_target``/``set_chance`` for the horizontal guides."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = themed_plot(TITLE, "epoch", "balanced accuracy %", legend=False)
        self.legend = QLabel(legend_html())
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self._curves = {arm: self.plot.plot(name=name, pen=pg.mkPen(colour, width=2.5, style=style), symbol=symbol,
                                            symbolSize=9, symbolBrush=colour, symbolPen=None)
                        for arm, (name, colour, style, symbol) in ARMS.items()}
        self.target_line = _hline(self.plot, TARGET, Qt.PenStyle.DashLine, left=True)
        self.chance_line = _hline(self.plot, CHANCE, Qt.PenStyle.DotLine, left=False)
        self._timer = QTimer(self, interval=REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self._timer.start()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.legend)
        self.reset()

    def reset(self, budget: int | None = None) -> None:
        self.data: dict[str, tuple[list[float], list[float]]] = {arm: ([], []) for arm in ARMS}
        self.target_line.setVisible(False)
        if budget:
            self.plot.setXRange(0.8, max(budget, 2) + 0.2, padding=0)
            step = max(1, -(-budget // 12))  # whole epochs only, at most about 12 ticks
            self.plot.getPlotItem().getAxis("bottom").setTicks(
                [[(e, str(e)) for e in range(1, max(budget, 2) + 1, step)], []])
        self._dirty = True

    def add_point(self, arm: str, epoch: int, balanced_accuracy: float) -> None:
        """One finished epoch of ``arm`` (ignored for arms that are not drawn, e.g. the thumbnail baseline)."""
        if arm in self.data:
            xs, ys = self.data[arm]
            xs.append(float(epoch))
            ys.append(100 * float(balanced_accuracy))
            self._dirty = True

    def set_curves(self, arms: dict[str, Any], budget: int | None = None) -> None:
        """Draw a finished check from ``transfer.json``'s ``arms`` (each with ``curve`` rows)."""
        self.reset(budget)
        for arm, result in arms.items():
            for row in result.get("curve", []):
                self.add_point(arm, int(row["epoch"]), row["val_balanced_acc"])
        self._redraw()

    def set_target(self, value: float | None) -> None:
        """The check's target validation score (a fraction), known once every network has finished."""
        self.target_line.setVisible(value is not None)
        if value is not None:
            self.target_line.setValue(100 * value)
            self.target_line.label.setFormat(f"target {100 * value:.0f} %")

    def set_multilabel(self, multi: bool) -> None:
        """Title the curves for a multi-label set: a finding's balanced accuracy, averaged over the findings."""
        text = QApplication.palette().color(QPalette.ColorRole.Text).name()
        self.plot.getPlotItem().setTitle(MULTILABEL_TITLE if multi else TITLE, color=text, size="11pt")

    def set_chance(self, n_classes: int | None) -> None:
        self.chance_line.setVisible(bool(n_classes))
        if n_classes:
            self.chance_line.setValue(100 / n_classes)
            self.chance_line.label.setFormat(f"chance {100 / n_classes:.0f} %")

    def point_count(self, arm: str) -> int:
        """Points received for ``arm`` (tests check that the live curves got data)."""
        return len(self.data.get(arm, ([], []))[0])

    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        for arm, curve in self._curves.items():
            curve.setData(*self.data[arm])


class LabelBudgetPlot(QWidget):
    """Mean test balanced accuracy versus images per class, with the range (min-max) over the random draws."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = themed_plot("Test balanced accuracy with more labelled images", "images per class",
                                "balanced accuracy %")
        band = QColor(SPREAD)
        band.setAlpha(60)
        self._low = pg.PlotCurveItem(pen=pg.mkPen(band))  # not added to the plot: only the fill between shows
        self._high = pg.PlotCurveItem(pen=pg.mkPen(band))
        self.band = pg.FillBetweenItem(self._low, self._high, brush=pg.mkBrush(band))
        self.plot.addItem(self.band)
        swatch = pg.PlotDataItem([], [], pen=pg.mkPen(band, width=10))  # a FillBetweenItem cannot be a legend sample
        self.plot.getPlotItem().legend.addItem(swatch, "range over the random draws (min to max)")
        self.mean_curve = self.plot.plot(name="mean of the draws", pen=pg.mkPen(SPREAD, width=2.5), symbol="o",
                                         symbolSize=9, symbolBrush=SPREAD, symbolPen=None)
        self.points: list[dict[str, Any]] = []
        self.empty = QLabel(EMPTY_BUDGET, objectName="emptyBudget", wordWrap=True,
                            alignment=Qt.AlignmentFlag.AlignCenter)
        self.empty.setProperty("role", "hint")
        self.empty.setMinimumHeight(120)
        self._pages = QStackedLayout(self)
        self._pages.setContentsMargins(0, 0, 0, 0)
        self._pages.addWidget(self.empty)
        self._pages.addWidget(self.plot)

    def set_points(self, points: list[dict[str, Any]]) -> None:
        """``label_budget.json``'s ``points``: images_per_class, mean, low, high (fractions). Without points
        the plot gives way to a sentence saying how to draw the curve (an empty plot showed a meaningless
        axis)."""
        self.points = list(points)
        self._pages.setCurrentWidget(self.plot if self.points else self.empty)
        xs = [p["images_per_class"] for p in self.points]
        self.mean_curve.setData(xs, [100 * p["mean"] for p in self.points])
        self._low.setData(xs, [100 * p["low"] for p in self.points])
        self._high.setData(xs, [100 * p["high"] for p in self.points])
        if xs:
            self.plot.setXRange(0, max(xs) * 1.05, padding=0)

    def point_count(self) -> int:
        return len(self.points)
