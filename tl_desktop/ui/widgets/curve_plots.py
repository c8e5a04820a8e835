"""pyqtgraph plots of the clinical evaluation: ROC and precision-recall curves (one-vs-rest, AUC with its 95%
interval in the legend) with the current operating point, the reliability diagram before/after temperature
scaling, and accuracy versus coverage for the abstain option. They only draw what the core computed."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from tl_desktop.ui.glossary import term_button
from tl_desktop.ui.widgets.themed_plot import PlotPair, make_plot

COLORS = ["#3f7cbf", "#e07b39", "#2e9d5b", "#c8553d", "#8e6cbf", "#8c6d31", "#d16ba5", "#6b6b6b", "#9aa62b",
          "#17a2b8"]
GUIDE = pg.mkPen("#9a9a9a", width=1, style=Qt.PenStyle.DashLine)
POINT_BRUSH = pg.mkBrush(20, 20, 20)


def _unit(plot: pg.PlotWidget) -> None:
    plot.setXRange(0, 1, padding=0.04)  # room for the "1.0" tick labels
    plot.setYRange(0, 1, padding=0.04)
    plot.getPlotItem().getViewBox().setLimits(xMin=-0.05, xMax=1.05, yMin=-0.05, yMax=1.05)


def _explain(plot: pg.PlotWidget, term: str) -> None:
    """A "?" in the plot's top-left corner that opens the glossary at ``term``; F1 on the plot does too."""
    plot.setProperty("glossary_term", term)
    term_button(term, plot).move(2, 2)


def _marker(plot: pg.PlotWidget) -> pg.ScatterPlotItem:
    point = pg.ScatterPlotItem(size=13, brush=POINT_BRUSH, pen=pg.mkPen("white", width=2))
    point.setZValue(10)
    plot.addItem(point)
    return point


SHORT_LEGEND = 4  # with more named curves the legend gives the figure alone; its interval is in the tooltip


def auc_text(name: str, entry: dict[str, Any]) -> str:
    auc = entry["auc"]
    return f"{name}: AUC {auc['auc']:.3f} (95% CI {auc['low']:.3f}–{auc['high']:.3f})"


def short_auc_text(name: str, entry: dict[str, Any]) -> str:
    """"digit_3: 0.973": the legend line of one of many curves (the AUC; the interval is in the tooltip)."""
    return f"{name}: {entry['auc']['auc']:.3f}"


class RocPrPlots(PlotPair):
    """ROC (left) and precision-recall (right) of every class against the rest; the positive class is bold."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.roc = make_plot("ROC curve, test images", "sensitivity", (-8, -8),
                             x_label="1 − specificity (false-positive rate)")
        self.pr = make_plot("Precision–recall, test images", "precision (PPV)", (8, -8),
                            x_label="recall (sensitivity)")
        for plot, term in ((self.roc, "auc_roc"), (self.pr, "average_precision")):
            _unit(plot)
            plot.setMinimumSize(220, 200)
            _explain(plot, term)
        self.roc.plot([0, 1], [0, 1], pen=GUIDE)
        self._chance = self.pr.plot([0, 1], [0, 0], pen=GUIDE)
        self._items: list[tuple[pg.PlotWidget, Any]] = []
        self._legend_extra: list[tuple[Any, Any]] = []
        self.roc_point, self.pr_point = _marker(self.roc), _marker(self.pr)
        self.legend_texts: list[str] = []
        self._pair(self.roc, self.pr)

    def set_curves(self, curves: dict[str, dict[str, Any]], class_names: list[str], positive: str | None) -> None:
        for plot, item in self._items:
            plot.removeItem(item)
        self._items.clear()
        for legend, item in self._legend_extra:
            legend.removeItem(item)
        self._legend_extra.clear()
        self.legend_texts = []
        order = sorted(curves, key=lambda n: n != positive)  # the positive class first in the legend
        few = len(curves) <= 2
        named = sum(1 for n in curves if n == positive or few or positive is None)
        short = named > SHORT_LEGEND  # ten classes: "digit_3: 0.973" so that the legend fits the plot
        for name in order:
            entry = curves[name]
            main = name == positive or few or positive is None  # no class of interest: every class in colour
            color = COLORS[class_names.index(name) % len(COLORS)] if name in class_names else COLORS[0]
            pen = pg.mkPen(color if main else "#b0b0b0", width=3 if name == positive else 1.2)
            text = auc_text(name, entry)
            self.legend_texts.append(text)
            roc, pr = entry["roc"], entry["pr"]
            # with many classes only the positive class is named in the legend; the others stay faint
            pr_text = f"{name}: {'' if short else 'AP '}{pr['average_precision']:.3f}"
            roc_text = short_auc_text(name, entry) if short else text
            self._items.append((self.roc, self.roc.plot(roc["fpr"], roc["tpr"], pen=pen,
                                                        name=roc_text if main else None)))
            self._items.append((self.pr, self.pr.plot(pr["recall"], pr["precision"], pen=pen,
                                                      name=pr_text if main else None)))
            if not main:
                for _plot, item in self._items[-2:]:
                    item.setZValue(-1)
            if name == positive:
                self._chance.setData([0, 1], [pr["prevalence"]] * 2)
        if not few and len(curves) > 1 and positive is not None:  # grey curves only beside a class of interest
            others = pg.PlotDataItem(pen=pg.mkPen("#b0b0b0", width=1.2))
            for plot in (self.roc, self.pr):
                legend = plot.getPlotItem().legend
                if legend is not None:
                    legend.addItem(others, "other classes, each against the rest")
                    self._legend_extra.append((legend, others))
        self.roc.setProperty("base_tooltip", "ROC-AUC of each class against the rest, with its 95% interval:<br>"
                             + "<br>".join(self.legend_texts) if short else "")
        self.pr.setProperty("base_tooltip", "Average precision (AP) of each class against the rest" if short else "")
        for plot in (self.roc, self.pr):
            plot.fit_legend()

    def set_point(self, sensitivity: float | None, specificity: float | None, ppv: float | None) -> None:
        """The operating point of the threshold on both curves (hidden where a figure is undefined)."""
        if sensitivity is None or specificity is None:
            self.roc_point.setData([], [])
        else:
            self.roc_point.setData([1 - specificity], [sensitivity])
        if sensitivity is None or ppv is None:
            self.pr_point.setData([], [])
        else:
            self.pr_point.setData([sensitivity], [ppv])


class CalibrationPlots(PlotPair):
    """Reliability diagram (before / after temperature scaling) and accuracy versus coverage."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.reliability = make_plot("Reliability (test images)", "share correct", (8, 8),
                                     x_label="the model's probability (top class)")
        self.coverage = make_plot("Accuracy versus “not sure”", "accuracy on answered", (8, -8),
                                  x_label="share of images answered (coverage)")
        self.reliability.setToolTip("Is a 90 % answer right 90 % of the time? Points on the diagonal: yes.")
        self.coverage.setToolTip("Saying “not sure” more often (moving left) leaves fewer, more accurate answers")
        _unit(self.reliability)
        _unit(self.coverage)
        for plot, term in ((self.reliability, "calibration"), (self.coverage, "abstain")):
            plot.setMinimumSize(220, 200)
            _explain(plot, term)
        self.reliability.plot([0, 1], [0, 1], pen=GUIDE, name="perfectly calibrated")
        self._before = self.reliability.plot(pen=pg.mkPen(COLORS[1], width=2), symbol="o", symbolSize=7,
                                             symbolBrush=COLORS[1], symbolPen=None, name="before")
        self._after = self.reliability.plot(pen=pg.mkPen(COLORS[0], width=2), symbol="s", symbolSize=7,
                                            symbolBrush=COLORS[0], symbolPen=None, name="after")
        self._curve = self.coverage.plot(pen=pg.mkPen(COLORS[2], width=2), name="test images")
        self.coverage_point = _marker(self.coverage)
        self._pair(self.reliability, self.coverage)

    def set_calibration(self, calibration: dict[str, Any] | None, temperature: float) -> None:
        legend = self.reliability.getPlotItem().legend
        for item, key, text in ((self._before, "before", "before"),
                                (self._after, "after", f"after scaling (T = {temperature:.2f})")):
            diagram = (calibration or {}).get(key)
            label = legend.getLabel(item) if legend is not None else None
            if not diagram:  # no figures of an earlier run stay in the legend
                item.setData([], [])
                if label is not None:
                    label.setText(key)
                continue
            points = [(c, a) for c, a in zip(diagram["confidence"], diagram["accuracy"], strict=True)
                      if c is not None]
            item.setData([c for c, _a in points], [a for _c, a in points])
            if label is not None:
                label.setText(f"{text}: ECE {100 * diagram['ece']:.1f} %")
        self.reliability.fit_legend()

    def set_coverage(self, curve: dict[str, list[float]] | None) -> None:
        if not curve:
            self._curve.setData([], [])
            return
        self._curve.setData(curve["coverage"], curve["accuracy"])
        low = min(curve["accuracy"], default=0.0)
        self.coverage.setYRange(max(0.0, min(low, 0.9) - 0.05), 1.0, padding=0.02)

    def set_point(self, coverage: float | None, accuracy: float | None) -> None:
        if coverage is None or accuracy is None:
            self.coverage_point.setData([], [])
        else:
            self.coverage_point.setData([coverage], [accuracy])
