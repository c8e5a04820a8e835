"""The app's plot widget (pyqtgraph): colours from the palette, again on a theme switch; a title that shrinks
or wraps to fit; a legend kept inside the plotting area (more columns, then smaller text; a legend that still
does not fit, or would cover more than ``LEGEND_SHARE`` of the curves, is left out and its entries, in their
colours, go into the tooltip and behind a "Key" button in the plot's top right corner); whole epochs and no SI
multiplier on the axes; and a text saying what an empty plot waits for instead of an empty axis. ``PlotPair``
sets two plots side by side when each gets ``SIDE_BY_SIDE`` pixels, else one above the other.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QColor, QPalette, QResizeEvent
from PySide6.QtWidgets import QApplication, QBoxLayout, QLabel, QToolButton, QToolTip, QWidget

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
    key_button: QToolButton | None = None  # stands for a legend left out: its tooltip is the legend

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
        empty = self.empty_note is not None and self.is_empty()
        self._place_key(None if shown or empty or not legend.items else entries)
        return shown

    def _place_key(self, entries: str | None) -> None:
        """A legend left out is not a legend lost: a "Key" button in the plotting area's top right corner shows
        its entries when clicked or pointed at (a tooltip on the whole plot alone is found only by chance)."""
        if entries is None:
            if self.key_button is not None:
                self.key_button.hide()
            return
        if self.key_button is None:
            self.key_button = QToolButton(self, text="Key")
            self.key_button.setAutoRaise(False)
            self.key_button.setCursor(Qt.CursorShape.PointingHandCursor)
            self.key_button.setAccessibleName("Key of the curves")
            self.key_button.clicked.connect(self.show_key)
        button = self.key_button  # touched only where something changed: each new curve point comes here
        if button.toolTip() != entries:
            button.setToolTip(entries)
        if button.isHidden():
            button.adjustSize()
        corner = self.mapFromScene(self.getPlotItem().getViewBox().sceneBoundingRect().topRight())
        place = QPoint(int(corner.x()) - button.width() - 4, int(corner.y()) + 4)
        if button.pos() != place:
            button.move(place)
        if button.isHidden():
            button.show()
            button.raise_()

    def show_key(self) -> None:
        """The legend's entries, in their colours, beside the "Key" button (what pointing at it shows too)."""
        button = self.key_button
        if button is not None and button.isVisible():
            QToolTip.showText(button.mapToGlobal(button.rect().bottomLeft()), button.toolTip(), button)

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
