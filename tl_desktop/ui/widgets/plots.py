"""Live training curves (pyqtgraph): loss and accuracy per epoch for training and validation, a smoothed
per-batch loss, and the best epoch marked. Points are buffered and drawn at most 10 times a second (the
per-batch curve at most twice a second), so a fast stream of batch events never floods the event loop with
redraws; a redraw touches only what changed (a batch repaints the loss plot once, not both plots twice), since
every repaint of a plot costs the window several milliseconds.

A run continued from an earlier one (``config.init_from``) shows the earlier run's curves dashed, left of a
"continued here" line; their axis ticks count the earlier run's own epochs, this run's epochs start at 1.
The best epoch is named by ``runs.best_epoch``, the rule the training loop keeps its checkpoint by.

The plots are ``themed_plot.ThemedPlot`` widgets (legends, titles, axes and empty states fitted there); the two
stand side by side when each gets ``SIDE_BY_SIDE`` pixels, else one above the other.
"""

from __future__ import annotations

import time
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QWidget

from tl_desktop.core import runs
from tl_desktop.ui.widgets.themed_plot import EpochAxis, PlotPair, label_fill, make_plot

REDRAW_MS = 100
BATCH_REDRAW_MS = 500  # the smoothed per-batch curve alone changes slowly: redrawn at most this often
SMOOTHING = 0.9  # exponential moving average of the per-batch loss
TRAIN, VAL, BATCH, BEST, JOIN = "#3f7cbf", "#e07b39", "#9bb7d6", "#2e9d5b", "#7a7a7a"
EPOCH_KEYS = ("train_loss", "val_loss", "train_acc", "val_acc")

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
