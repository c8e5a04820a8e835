"""Live training curves (pyqtgraph): loss and accuracy per epoch for training and validation, a smoothed
per-batch loss, and the best epoch marked. Points are buffered and drawn at most 10 times a second, so a fast
stream of batch events never floods the event loop with redraws.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QHBoxLayout, QWidget

REDRAW_MS = 100
SMOOTHING = 0.9  # exponential moving average of the per-batch loss
TRAIN, VAL, BATCH, BEST = "#3f7cbf", "#e07b39", "#9bb7d6", "#2e9d5b"


def make_plot(title: str, y_label: str, legend_offset: tuple[int, int] | None = (-10, 10),
              x_label: str = "epoch") -> pg.PlotWidget:
    """A themed plot (palette colours, grid, legend at ``legend_offset`` or none, no context menu)."""
    palette = QApplication.palette()
    widget = pg.PlotWidget(background=palette.color(QPalette.ColorRole.Base))
    text = palette.color(QPalette.ColorRole.Text).name()
    item = widget.getPlotItem()
    item.setTitle(title, color=text, size="11pt")
    item.setLabel("bottom", x_label, color=text)
    item.setLabel("left", y_label, color=text)
    item.showGrid(x=True, y=True, alpha=0.2)
    for axis in ("left", "bottom"):
        item.getAxis(axis).setTextPen(text)
        item.getAxis(axis).setPen(QColor(text))
    if legend_offset is not None:
        item.addLegend(offset=legend_offset, labelTextColor=text)
    widget.setMenuEnabled(False)
    widget.setMinimumHeight(180)
    return widget


class TrainingPlots(QWidget):
    """Two plots side by side; feed with ``add_batch``/``add_epoch`` or ``set_history`` for a finished run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = make_plot("Loss (lower is better)", "loss", (-10, 10))
        self.acc_plot = make_plot("Accuracy (higher is better)", "accuracy %", (-10, -40))
        self.acc_plot.setYRange(0, 100, padding=0.02)
        self._curves = {
            "batch": self.loss_plot.plot(name="training, per batch (smoothed)", pen=pg.mkPen(BATCH, width=1)),
            "train_loss": self._epoch_curve(self.loss_plot, "training", TRAIN),
            "val_loss": self._epoch_curve(self.loss_plot, "validation", VAL),
            "train_acc": self._epoch_curve(self.acc_plot, "training", TRAIN),
            "val_acc": self._epoch_curve(self.acc_plot, "validation", VAL),
        }
        self._best_lines = [self._best_line(p) for p in (self.loss_plot, self.acc_plot)]
        self._timer = QTimer(self, interval=REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self._timer.start()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loss_plot)
        layout.addWidget(self.acc_plot)
        self.reset()

    @staticmethod
    def _epoch_curve(plot: pg.PlotWidget, name: str, color: str) -> pg.PlotDataItem:
        return plot.plot(name=name, pen=pg.mkPen(color, width=2), symbol="o", symbolSize=6,
                         symbolBrush=color, symbolPen=None)

    @staticmethod
    def _best_line(plot: pg.PlotWidget) -> pg.InfiniteLine:
        line = pg.InfiniteLine(angle=90, pen=pg.mkPen(BEST, width=2, style=pg.QtCore.Qt.PenStyle.DashLine),
                               label="best", labelOpts={"position": 0.5, "color": BEST, "fill": (255, 255, 255, 200)})
        line.setVisible(False)
        plot.addItem(line)
        return line

    # --- data in ------------------------------------------------------------------------------------
    def reset(self) -> None:
        self.data: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in self._curves}
        self.best_epoch: int | None = None
        self._ema: float | None = None
        self._dirty = True

    def add_batch(self, x_epochs: float, loss: float) -> None:
        """A batch ended at ``x_epochs`` (fractional epoch); the curve shows the smoothed loss."""
        self._ema = loss if self._ema is None else SMOOTHING * self._ema + (1 - SMOOTHING) * loss
        xs, ys = self.data["batch"]
        xs.append(x_epochs)
        ys.append(self._ema)
        self._dirty = True

    def add_epoch(self, epoch: int, train_loss: float, val_loss: float, train_acc: float, val_acc: float,
                  best_epoch: int | None) -> None:
        for key, value in (("train_loss", train_loss), ("val_loss", val_loss),
                           ("train_acc", 100 * train_acc), ("val_acc", 100 * val_acc)):
            xs, ys = self.data[key]
            xs.append(float(epoch))
            ys.append(float(value))
        self.best_epoch = best_epoch if best_epoch and best_epoch > 0 else self.best_epoch
        self._dirty = True

    def set_history(self, rows: list[dict[str, Any]]) -> None:
        """Show a finished run from its history.csv rows; the best epoch has the best validation score."""
        self.reset()
        best, best_score = None, float("-inf")
        for row in rows:
            score = row.get("val_balanced_acc", row.get("val_acc", 0.0))
            if score > best_score:
                best, best_score = int(row["epoch"]), score
            self.add_epoch(int(row["epoch"]), row["train_loss"], row["val_loss"], row["train_acc"],
                           row["val_acc"], None)
        self.best_epoch = best
        self._redraw()

    def point_count(self) -> int:
        """How many points the plots hold (tests check the plot received data)."""
        return sum(len(xs) for xs, _ys in self.data.values())

    # --- drawing (at most every REDRAW_MS) ----------------------------------------------------------
    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        for key, curve in self._curves.items():
            xs, ys = self.data[key]
            curve.setData(xs, ys)
        for line in self._best_lines:
            line.setVisible(self.best_epoch is not None)
            if self.best_epoch is not None:
                line.setValue(self.best_epoch)
                line.label.setFormat(f"best: epoch {self.best_epoch}")
