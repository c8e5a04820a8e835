"""Live training curves (pyqtgraph): loss and accuracy per epoch for training and validation, a smoothed
per-batch loss, and the best epoch marked. Points are buffered and drawn at most 10 times a second (the
per-batch curve at most twice a second), so a fast stream of batch events never floods the event loop with
redraws; a redraw touches only what changed (a batch repaints the loss plot once, not both plots twice), since
every repaint of a plot costs the window several milliseconds.

A run continued from an earlier one (``config.init_from``) shows the earlier run's curves dashed, left of a
"continued here" line; their axis ticks count the earlier run's own epochs, this run's epochs start at 1.
The best epoch is named by ``runs.best_epoch``, the rule the training loop keeps its checkpoint by.

Every plot keeps its legend inside the plotting area (more columns, then smaller text; a legend that still
does not fit, or would cover more than ``LEGEND_SHARE`` of the curves, is left out and its entries, in their
colours, go into the tooltip), shows whole epochs and no SI multiplier on its
axes, and says what it waits for while it holds no data instead of drawing an empty axis. The two training
plots stand side by side when each gets ``SIDE_BY_SIDE`` pixels, else one above the other.
"""

from __future__ import annotations

import time
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QColor, QPalette, QResizeEvent
from PySide6.QtWidgets import QApplication, QBoxLayout, QLabel, QWidget

from tl_desktop.core import runs

REDRAW_MS = 100
BATCH_REDRAW_MS = 500  # the smoothed per-batch curve alone changes slowly: redrawn at most this often
SMOOTHING = 0.9  # exponential moving average of the per-batch loss
TRAIN, VAL, BATCH, BEST, JOIN = "#3f7cbf", "#e07b39", "#9bb7d6", "#2e9d5b", "#7a7a7a"
EPOCH_KEYS = ("train_loss", "val_loss", "train_acc", "val_acc")
SIDE_BY_SIDE = 360  # the width each training plot needs to stand beside the other
LEGEND_SIZES = ("9pt", "8pt")  # the legend's text shrinks to this before the legend is left out
LEGEND_COLUMNS = 4
LEGEND_SHARE = 0.4  # a legend covering more of the plotting area than this hides the curves: left out
TITLE_SIZES = ("11pt", "10pt", "9pt")  # a title shrinks to fit, then goes onto two lines at its "("


class EpochAxis(pg.AxisItem):
    """Epoch ticks; with an earlier run drawn at x <= 0, its ticks read as that run's own epoch numbers."""

    def __init__(self) -> None:
        super().__init__("bottom")
        self.earlier_epochs = 0

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 - pyqtgraph API
        """Whole epochs only: "1.5" or "0.5" would read as epochs that do not exist; no epoch 0 or below
        unless an earlier run is drawn there."""
        lowest = -float("inf") if self.earlier_epochs else 1
        levels = [(spacing, [v for v in values if float(v).is_integer() and v >= lowest])
                  for spacing, values in super().tickValues(minVal, maxVal, size)]
        return [level for level in levels if level[1]]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph API
        """"1", "2", "3": never "1.0"; at x <= 0 the earlier run's own epoch numbers."""
        shift = self.earlier_epochs
        return [str(int(round(v + shift if shift and v < 0.5 else v))) for v in values]


class ThemedPlot(pg.PlotWidget):
    """A PlotWidget that takes its background, axes, title and legend text from the palette, and again when
    the palette changes (light / dark theme, ``ui/theme.py``), so a theme switch needs no restart."""

    empty_note: QLabel | None = None

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and getattr(self, "plotItem", None) is not None:
            self.apply_palette()  # (not while pyqtgraph is still building the widget)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if getattr(self, "plotItem", None) is not None:
            self.fit_title()
            self.fit_legend()
            if self.empty_note is not None:
                self.empty_note.setGeometry(self.rect())

    def set_title(self, text: str) -> None:
        """The plot's title, at the largest of ``TITLE_SIZES`` that fits its width (on two lines if need be)."""
        self.setProperty("title_text", text)
        self.fit_title()

    def fit_title(self) -> None:
        text = self.property("title_text")
        if not text:
            return
        colour = QApplication.palette().color(QPalette.ColorRole.Text).name()
        item, room = self.getPlotItem(), self.width() - 8
        first, _space, rest = text.partition(" (")
        tries = [(text, size) for size in TITLE_SIZES] + ([(f"{first}<br>({rest}", TITLE_SIZES[-1])] if rest else [])
        for shown, size in tries:
            item.setTitle(shown, color=colour, size=size)
            if item.titleLabel.item.boundingRect().width() - 8 <= room:
                break
        height = int(item.titleLabel.item.boundingRect().height())  # one or two lines
        item.titleLabel.setMaximumHeight(max(30, height))
        item.layout.setRowFixedHeight(0, max(30, height))

    def plot(self, *args: Any, **kwargs: Any) -> pg.PlotDataItem:
        """``PlotItem.plot``; the empty-state text and the legend follow the curve's data."""
        curve = self.getPlotItem().plot(*args, **kwargs)
        curve.sigPlotChanged.connect(self.show_empty_state)
        if kwargs.get("name"):
            self.fit_legend()
        return curve

    # --- the legend stays inside the plotting area --------------------------------------------------
    def fit_legend(self) -> bool:
        """Lay the legend out in as few columns as fit the plotting area, at smaller text if need be; leave it
        out (its entries in the tooltip) when even that does not fit. Returns whether it is shown."""
        item = self.getPlotItem()
        legend, room = item.legend, item.getViewBox().boundingRect()
        if legend is None or not legend.items or room.width() < 20:
            return legend is not None
        if self.empty_note is not None and self.is_empty():
            return self._show_legend(legend, False)  # nothing to name: the empty-state text instead
        margin_x, margin_y = (abs(v) for v in (legend.offset or (0, 0)))
        entries = len(legend.items)
        for size in LEGEND_SIZES:
            self._legend_text_size(legend, size)
            for columns in range(1, min(LEGEND_COLUMNS, entries) + 1):
                legend.setColumnCount(columns)
                legend.layout.activate()
                legend.updateSize()
                fits = legend.width() + margin_x <= room.width() and legend.height() + margin_y <= room.height()
                if fits and legend.width() * legend.height() <= LEGEND_SHARE * room.width() * room.height():
                    return self._show_legend(legend, True)
        return self._show_legend(legend, False)

    @staticmethod
    def _legend_text_size(legend: pg.LegendItem, size: str) -> None:
        if legend.opts.get("labelTextSize") != size:
            legend.setLabelTextSize(size)
            for _sample, label in legend.items:
                label.setText(label.text)

    def _show_legend(self, legend: pg.LegendItem, shown: bool) -> bool:
        legend.setVisible(shown)
        base = self.property("base_tooltip")
        if base is None:
            base = self.toolTip()
            self.setProperty("base_tooltip", base)
        entries = "<br>".join(f"{_swatch(sample)}{label.text}" for sample, label in legend.items)
        self.setToolTip(base if shown else f"{base}<br><br>{entries}" if base else entries)
        return shown

    # --- what an empty plot says --------------------------------------------------------------------
    def set_empty_text(self, text: str) -> None:
        """While no curve holds data, show ``text`` over the plot instead of axis values."""
        if self.empty_note is None:
            self.empty_note = QLabel(self, alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
            self.empty_note.setProperty("role", "hint")
            self.empty_note.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            self.empty_note.setGeometry(self.rect())
        self.empty_note.setText(text)
        self.show_empty_state()

    def is_empty(self) -> bool:
        return not any(curve.xData is not None and len(curve.xData)
                       for curve in self.getPlotItem().listDataItems())

    def show_empty_state(self) -> None:
        if self.empty_note is None:
            return
        empty = self.is_empty()
        self.empty_note.setVisible(empty)
        self.fit_legend()
        for name in ("left", "bottom"):
            axis = self.getPlotItem().getAxis(name)
            if axis.style["showValues"] == empty:
                axis.setStyle(showValues=not empty)

    def apply_palette(self) -> None:
        palette = QApplication.palette()
        base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
        self.setBackground(base)
        item = self.getPlotItem()
        if self.property("title_text"):
            self.fit_title()
        elif item.titleLabel.text:
            item.titleLabel.setText(item.titleLabel.text, color=text.name())
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setTextPen(text)  # the axis label too
            axis.setPen(QColor(text))
        legend = item.legend
        if legend is not None:
            legend.setLabelTextColor(text)
            for _sample, label in legend.items:
                label.setText(label.text, color=text.name())
            if legend.brush().style() != Qt.BrushStyle.NoBrush:  # an opaque legend box follows the plot
                legend.setBrush(pg.mkBrush(base))
        for line in item.items:  # the boxes behind line labels ("best: epoch 3") too
            label = getattr(line, "label", None) if isinstance(line, pg.InfiniteLine) else None
            if label is not None and label.fill.style() != Qt.BrushStyle.NoBrush:
                label.fill = pg.mkBrush(label_fill(label.fill.color().alpha()))
                label.update()


def _swatch(sample: Any) -> str:
    """A coloured square naming a curve's colour in a tooltip (the legend's line sample, in HTML)."""
    pen = getattr(getattr(sample, "item", None), "opts", {}).get("pen")
    if pen is None:
        return ""
    return f'<span style="color:{pg.mkPen(pen).color().name()}">&#9632;</span> '


def label_fill(alpha: int = 200) -> QColor:
    """The plot's background colour, a little see-through: the box behind a label drawn over curves."""
    colour = QColor(QApplication.palette().color(QPalette.ColorRole.Base))
    colour.setAlpha(alpha)
    return colour


def make_plot(title: str, y_label: str, legend_offset: tuple[int, int] | None = (-10, 10),
              x_label: str = "epoch", x_axis: pg.AxisItem | None = None, empty_text: str | None = None) -> ThemedPlot:
    """A themed plot (palette colours, grid, legend at ``legend_offset`` or none, no context menu); with
    ``empty_text``, that text stands over the plot while it holds no data."""
    palette = QApplication.palette()
    axes = {"bottom": x_axis} if x_axis is not None else None
    widget = ThemedPlot(background=palette.color(QPalette.ColorRole.Base), axisItems=axes)
    text = palette.color(QPalette.ColorRole.Text).name()
    item = widget.getPlotItem()
    widget.set_title(title)
    item.setLabel("bottom", x_label, color=text)
    item.setLabel("left", y_label, color=text)
    item.showGrid(x=True, y=True, alpha=0.2)
    for axis in ("left", "bottom"):
        item.getAxis(axis).setTextPen(text)
        item.getAxis(axis).setPen(QColor(text))
        item.getAxis(axis).enableAutoSIPrefix(False)  # "loss (x0.001)" over 900 would misread
    if legend_offset is not None:
        item.addLegend(offset=legend_offset, labelTextColor=text, brush=label_fill(190))  # readable over curves
    widget.setMenuEnabled(False)
    widget.setMinimumHeight(180)
    if empty_text:
        widget.set_empty_text(empty_text)
    return widget


class PlotPair(QWidget):
    """Two plots side by side where each gets ``SIDE_BY_SIDE`` pixels of width, else one above the other."""

    def _pair(self, first: pg.PlotWidget, second: pg.PlotWidget) -> None:
        self._layout = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(first)
        self._layout.addWidget(second)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        wide = event.size().width() >= 2 * SIDE_BY_SIDE
        direction = QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom
        if self._layout.direction() != direction:
            self._layout.setDirection(direction)


ACC_TITLE = "Accuracy (higher is better)"
MULTILABEL_ACC_TITLE = "Right finding decisions (higher is better)"
MULTILABEL_ACC_AXIS = "% right: 1 − Hamming loss, present at p ≥ 0.5"


class TrainingPlots(PlotPair):
    """Two plots side by side; feed with ``add_batch``/``add_epoch`` or ``set_history`` for a stored run
    (before a resumed run goes on, so its earlier epochs stay on screen)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._axes = [EpochAxis(), EpochAxis()]
        self.loss_plot = make_plot("Loss (lower is better)", "loss", (-10, 10), x_axis=self._axes[0],
                                   empty_text="The loss appears here once training starts.")
        self.acc_plot = make_plot(ACC_TITLE, "accuracy %", (-10, -40), x_axis=self._axes[1],
                                  empty_text="The accuracy appears here after the first epoch.")
        self.acc_plot.setYRange(0, 100, padding=0.02)
        self._curves = {
            "batch": self.loss_plot.plot(name="per batch (smoothed)", pen=pg.mkPen(BATCH, width=1)),
            "train_loss": self._epoch_curve(self.loss_plot, "training", TRAIN),
            "val_loss": self._epoch_curve(self.loss_plot, "validation", VAL),
            "train_acc": self._epoch_curve(self.acc_plot, "training", TRAIN),
            "val_acc": self._epoch_curve(self.acc_plot, "validation", VAL),
        }
        self._earlier_curves = {key: self._earlier_curve(self._plot_of(key), TRAIN if "train" in key else VAL)
                                for key in EPOCH_KEYS}
        # the loss legend stands top right, the accuracy legend bottom right: each best-epoch label clear of it
        self._best_lines = [self._best_line(self.loss_plot, 0.12), self._best_line(self.acc_plot, 0.72)]
        self._join_lines = [self._join_line(p) for p in (self.loss_plot, self.acc_plot)]
        self._timer = QTimer(self, interval=REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self._timer.start()
        self._pair(self.loss_plot, self.acc_plot)
        self.reset()

    def _plot_of(self, key: str) -> pg.PlotWidget:
        return self.loss_plot if key.endswith("loss") else self.acc_plot

    def set_multilabel(self, multi: bool) -> None:
        """Name the accuracy plot for a multi-label run: its accuracy is the share of right image-finding
        decisions (1 - Hamming loss, each finding called present at p >= 0.5)."""
        text = QApplication.palette().color(QPalette.ColorRole.Text).name()
        item = self.acc_plot.getPlotItem()
        self.acc_plot.set_title(MULTILABEL_ACC_TITLE if multi else ACC_TITLE)
        item.setLabel("left", MULTILABEL_ACC_AXIS if multi else "accuracy %", color=text)

    @staticmethod
    def _epoch_curve(plot: pg.PlotWidget, name: str, color: str) -> pg.PlotDataItem:
        return plot.plot(name=name, pen=pg.mkPen(color, width=2), symbol="o", symbolSize=6,
                         symbolBrush=color, symbolPen=None)

    @staticmethod
    def _earlier_curve(plot: pg.PlotWidget, color: str) -> pg.PlotDataItem:
        """A dashed, unnamed curve; the legend names the earlier run only while one is shown."""
        return plot.plot(pen=pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine), symbol="o", symbolSize=4,
                         symbolBrush=color, symbolPen=None)

    @staticmethod
    def _best_line(plot: pg.PlotWidget, position: float) -> pg.InfiniteLine:
        line = pg.InfiniteLine(angle=90, pen=pg.mkPen(BEST, width=2, style=Qt.PenStyle.DashLine),
                               label="best", labelOpts={"position": position, "color": BEST, "fill": label_fill()})
        line.setVisible(False)
        plot.addItem(line)
        return line

    @staticmethod
    def _join_line(plot: pg.PlotWidget) -> pg.InfiniteLine:
        line = pg.InfiniteLine(pos=0.5, angle=90, pen=pg.mkPen(JOIN, width=1.5, style=Qt.PenStyle.DotLine),
                               label="earlier run | continued here", labelOpts={
                                   "position": 0.22, "color": JOIN, "rotateAxis": (1, 0)})
        line.setZValue(-5)  # under the curves and the best-epoch label
        line.setVisible(False)
        plot.addItem(line)
        return line

    # --- data in ------------------------------------------------------------------------------------
    def reset(self) -> None:
        self.data: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in self._curves}
        self.earlier: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in EPOCH_KEYS}
        self.earlier_run: str | None = None
        self._shift = 0  # the earlier run's last epoch, drawn at x = 0
        self.best_epoch: int | None = None
        self._ema: float | None = None
        self._show_earlier_legend(None)
        self._dirty: set[str] = {*self._curves, "earlier", "marks"}
        self._batch_drawn = 0.0

    def add_batch(self, x_epochs: float, loss: float) -> None:
        """A batch ended at ``x_epochs`` (fractional epoch); the curve shows the smoothed loss."""
        self._ema = loss if self._ema is None else SMOOTHING * self._ema + (1 - SMOOTHING) * loss
        xs, ys = self.data["batch"]
        xs.append(x_epochs)
        ys.append(self._ema)
        self._dirty.add("batch")

    def add_epoch(self, epoch: int, train_loss: float, val_loss: float, train_acc: float, val_acc: float,
                  best_epoch: int | None) -> None:
        """Epoch ``epoch`` (1-based) ended; ``best_epoch`` is the training loop's best so far."""
        self._append(self.data, float(epoch), train_loss, val_loss, train_acc, val_acc)
        self.best_epoch = best_epoch if best_epoch and best_epoch > 0 else self.best_epoch
        self._dirty.update((*EPOCH_KEYS, "marks"))

    @staticmethod
    def _append(data: dict, x: float, train_loss: float, val_loss: float, train_acc: float, val_acc: float) -> None:
        for key, value in (("train_loss", train_loss), ("val_loss", val_loss),
                           ("train_acc", 100 * train_acc), ("val_acc", 100 * val_acc)):
            xs, ys = data[key]
            xs.append(x)
            ys.append(float(value))

    def set_history(self, rows: list[dict[str, Any]],
                    earlier: tuple[str, list[dict[str, Any]]] | None = None) -> None:
        """Show a run from its history.csv rows, best epoch by ``runs.best_epoch``; ``earlier`` is
        (name, rows) of the run it continued from, drawn dashed before this run's epoch 1."""
        self.reset()
        for row in rows:
            self._append(self.data, float(row["epoch"]), row["train_loss"], row["val_loss"], row["train_acc"],
                         row["val_acc"])
        self.best_epoch = runs.best_epoch(rows)
        if earlier is not None and earlier[1]:
            self.earlier_run = earlier[0]
            self._shift = max(int(r["epoch"]) for r in earlier[1])
            for row in earlier[1]:
                self._append(self.earlier, float(row["epoch"]) - self._shift, row["train_loss"], row["val_loss"],
                             row["train_acc"], row["val_acc"])
            self._show_earlier_legend(earlier[0])
        self._redraw()

    def _show_earlier_legend(self, name: str | None) -> None:
        for plot in (self.loss_plot, self.acc_plot):
            legend, curve = plot.getPlotItem().legend, self._earlier_curves["val_" + (
                "loss" if plot is self.loss_plot else "acc")]
            if legend is None:
                continue
            legend.removeItem(curve)
            if name is not None:
                legend.addItem(curve, "earlier run (dashed)")
            plot.fit_legend()

    def point_count(self) -> int:
        """How many points the plots hold for this run (tests check the plot received data)."""
        return sum(len(xs) for xs, _ys in self.data.values())

    def best_label(self) -> str | None:
        """The best-epoch marker's text as drawn, None while no marker is shown."""
        line = self._best_lines[0]
        return line.label.format if line.isVisible() else None

    def epochs_shown(self) -> list[int]:
        """This run's epochs on the plot, in order (the earlier run's are in ``self.earlier``)."""
        return [int(x) for x in self.data["val_loss"][0]]

    # --- drawing (at most every REDRAW_MS) ----------------------------------------------------------
    def _redraw(self) -> None:
        """Hand what changed since the last redraw to pyqtgraph; the per-batch curve alone waits for
        BATCH_REDRAW_MS. Each plot's view range is brought up to date here, so it repaints once."""
        if self._dirty == {"batch"} and time.monotonic() - self._batch_drawn < BATCH_REDRAW_MS / 1000:
            return
        dirty, self._dirty = self._dirty, set()
        if "batch" in dirty:
            self._batch_drawn = time.monotonic()
        for key in dirty & self._curves.keys():
            self._curves[key].setData(*self.data[key])
        if "earlier" in dirty:
            for key, curve in self._earlier_curves.items():
                curve.setData(*self.earlier[key])
            self._draw_join()
        if "marks" in dirty:
            self._draw_best()
        changed = {self.acc_plot if key.endswith("acc") else self.loss_plot for key in dirty & self._curves.keys()}
        for plot in changed if "earlier" not in dirty else (self.loss_plot, self.acc_plot):
            plot.getPlotItem().getViewBox().prepareForPaint()  # range and matrix now, not in the paint

    def _draw_join(self) -> None:
        for axis in self._axes:
            if axis.earlier_epochs != self._shift:
                axis.earlier_epochs = self._shift
                axis.picture = None  # re-label the ticks
                axis.update()
        for line in self._join_lines:
            line.setVisible(self.earlier_run is not None)

    def _draw_best(self) -> None:
        """The best-epoch line; its label stands on the side of the line with more room (inside the plot)."""
        xs = [x for key in ("batch", "val_loss") for x in self.data[key][0]] + self.earlier["val_loss"][0]
        middle = (min(xs) + max(xs)) / 2 if xs else 0.0
        for line in self._best_lines:
            line.setVisible(self.best_epoch is not None)
            text = f"best: epoch {self.best_epoch}"
            if self.best_epoch is not None and (line.value() != self.best_epoch or line.label.format != text):
                line.setValue(self.best_epoch)
                line.label.setFormat(text)
            if self.best_epoch is not None:
                side = (1.0, 0.5) if self.best_epoch > middle else (0.0, 0.5)  # right end of the text at the line
                if line.label.anchors[0] != side:
                    line.label.anchors = [side, side]
                    line.label.updatePosition()
