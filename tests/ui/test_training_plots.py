"""The live training curves repaint only what changed: a batch repaints the loss plot once, not both plots."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt

from tl_desktop.ui.widgets import plots
from tl_desktop.ui.widgets.plots import TrainingPlots


class _Paints(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False


def _shown(qtbot) -> tuple[TrainingPlots, _Paints, _Paints]:
    widget = TrainingPlots()
    qtbot.addWidget(widget)
    widget.resize(760, 420)
    widget.show()
    qtbot.waitExposed(widget)
    for epoch in (1, 2):
        widget.add_epoch(epoch, 1 / epoch, 1.2 / epoch, 0.5 + epoch / 10, 0.4 + epoch / 10, 1)
    widget._redraw()
    qtbot.wait(150)
    loss, acc = _Paints(), _Paints()
    widget.loss_plot.viewport().installEventFilter(loss)
    widget.acc_plot.viewport().installEventFilter(acc)
    return widget, loss, acc


def test_a_batch_repaints_the_loss_plot_once_and_leaves_the_accuracy_plot(qtbot, monkeypatch):
    widget, loss, acc = _shown(qtbot)
    monkeypatch.setattr(plots, "BATCH_REDRAW_MS", 0, raising=False)
    for step in range(5):
        widget.add_batch(2 + step / 5, 1.0 / (step + 1))
        widget._redraw()
        qtbot.wait(60)  # every update pyqtgraph asks for is painted
    assert acc.count == 0
    assert loss.count == 5
    assert widget.data["batch"][0] == [2.0, 2.2, 2.4, 2.6, 2.8]


def test_batches_alone_are_drawn_at_most_every_batch_redraw_ms(qtbot, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(plots.time, "monotonic", lambda: clock[0])
    widget, _loss, _acc = _shown(qtbot)
    clock[0] += 1
    widget.add_batch(2.0, 0.5)
    widget._redraw()
    clock[0] += plots.BATCH_REDRAW_MS / 2000
    widget.add_batch(2.2, 0.4)
    widget._redraw()  # within BATCH_REDRAW_MS of the last drawing: waits
    assert list(widget._curves["batch"].getData()[0]) == [2.0]
    clock[0] += plots.BATCH_REDRAW_MS / 1000
    widget._redraw()
    assert list(widget._curves["batch"].getData()[0]) == [2.0, 2.2]
    widget.add_batch(2.4, 0.3)
    widget.add_epoch(3, 0.3, 0.4, 0.9, 0.8, 3)
    widget._redraw()  # an epoch is drawn at once, with the batch that came just before it
    assert list(widget._curves["batch"].getData()[0]) == [2.0, 2.2, 2.4]
    assert widget.epochs_shown() == [1, 2, 3] and widget.best_label() == "best: epoch 3"


def test_a_legend_that_would_hide_the_curves_goes_into_the_tooltip_in_colour(qtbot):
    """Ten ROC curves in a plot of half a laptop screen: the legend would cover most curves, so it is left out
    and the tooltip names each colour; three curves in the same plot keep their legend."""
    import numpy as np

    from tl_desktop.ui.widgets.themed_plot import make_plot

    def shown(curves: int):
        plot = make_plot("ROC curve, test images", "sensitivity", (-10, 10))
        qtbot.addWidget(plot)
        plot.setToolTip("ROC: one curve per class")
        plot.resize(560, 200)
        plot.show()
        qtbot.waitExposed(plot)
        x = np.linspace(0, 1, 20)
        for k in range(curves):
            plot.plot(x, x ** (1 + k / 3), pen=pg.intColor(k, curves), name=f"digit_{k}: 0.{900 + k}")
        plot.fit_legend()
        return plot

    many, few = shown(10), shown(3)
    assert not many.getPlotItem().legend.isVisible()
    tip = many.toolTip()
    assert tip.startswith("ROC: one curve per class") and tip.count("&#9632;") == 10
    assert f'color:{pg.mkPen(pg.intColor(4, 10)).color().name()}">&#9632;</span> digit_4: 0.904' in tip
    assert few.getPlotItem().legend.isVisible() and few.toolTip() == "ROC: one curve per class"
    # The left-out legend is behind a visible "Key" button in the plotting area's top right corner.
    key = many.key_button
    assert key is not None and key.isVisible() and key.text() == "Key" and key.toolTip().count("&#9632;") == 10
    area = many.mapFromScene(many.getPlotItem().getViewBox().sceneBoundingRect()).boundingRect()
    assert area.contains(key.geometry()) and key.geometry().right() > area.center().x()
    from PySide6.QtWidgets import QToolTip
    qtbot.mouseClick(key, Qt.MouseButton.LeftButton)
    assert "digit_4: 0.904" in QToolTip.text()
    assert few.key_button is None or not few.key_button.isVisible()
