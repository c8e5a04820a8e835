"""Report charts drawn with QPainter on a QImage (no plotting library, works offscreen): PNG bytes out.

Every chart is drawn at ``SCALE`` times its logical size so that it stays sharp in the PDF; the HTML shows
it at the logical size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QApplication

SCALE = 2
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
_APP: list[QGuiApplication] = []


def ensure_gui() -> None:
    """An application object for fonts and painting; an offscreen one when the caller (the CLI) has none.

    A full QApplication, not a QGuiApplication: whoever creates widgets later in the same process (the
    window, pytest-qt) needs one, and Qt allows only one application object per process.
    """
    if QGuiApplication.instance() is None:
        _APP.append(QApplication(["tl-desktop-report", "-platform", "offscreen"]))


@dataclass
class Series:
    label: str
    x: Sequence[float]
    y: Sequence[float]
    color: str = PALETTE[0]
    dashed: bool = False
    markers: bool = False
    step: bool = False


@dataclass
class Chart:
    title: str
    xlabel: str
    ylabel: str
    series: list[Series] = field(default_factory=list)
    xlim: tuple[float, float] = (0.0, 1.0)
    ylim: tuple[float, float] = (0.0, 1.0)
    diagonal: str | None = None          # legend label of the y = x line, when drawn
    points: list[tuple[float, float, str, str]] = field(default_factory=list)  # x, y, colour, label
    vline: tuple[float, str] | None = None  # x, label
    width: int = 300
    height: int = 260
    integer_x: bool = False
    legend_top: bool = False


def _png(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(data.data())


def _canvas(width: int, height: int) -> tuple[QImage, QPainter]:
    ensure_gui()
    image = QImage(width * SCALE, height * SCALE, QImage.Format.Format_RGB32)
    image.setDotsPerMeterX(int(96 * SCALE / 0.0254))
    image.setDotsPerMeterY(int(96 * SCALE / 0.0254))
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    painter.scale(SCALE, SCALE)
    return image, painter


def _font(size: float, bold: bool = False) -> QFont:
    font = QFont("DejaVu Sans")
    font.setStyleHint(QFont.StyleHint.SansSerif)
    font.setPixelSize(max(1, round(size)))
    font.setBold(bold)
    return font


def _ticks(lo: float, hi: float) -> list[float]:
    span = hi - lo
    step = next(s for s in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 1e9) if span / s <= 6)
    first = round(lo / step + 0.4999) * step
    out, v = [], first
    while v <= hi + 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def line_chart(chart: Chart) -> bytes:
    """Axes, grid, series, optional diagonal, marked points and a legend: PNG bytes."""
    image, p = _canvas(chart.width, chart.height)
    left, top, right, bottom = 52, 28, 10, 42
    area = QRectF(left, top, chart.width - left - right, chart.height - top - bottom)
    (x0, x1), (y0, y1) = chart.xlim, chart.ylim

    def at(x: float, y: float) -> QPointF:
        return QPointF(area.left() + (x - x0) / (x1 - x0) * area.width(),
                       area.bottom() - (y - y0) / (y1 - y0) * area.height())

    p.setFont(_font(13, bold=True))
    p.setPen(QColor("#222"))
    p.drawText(QRectF(0, 4, chart.width, 20), Qt.AlignmentFlag.AlignHCenter, chart.title)
    p.setFont(_font(10))
    for x in (_ticks(x0, x1) if not chart.integer_x else range(int(x0) + 1, int(x1) + 1, max(1, int(x1 - x0) // 8))):
        p.setPen(QPen(QColor("#e4e4e4"), 0.8))
        p.drawLine(at(x, y0), at(x, y1))
        p.setPen(QColor("#444"))
        q = at(x, y0)
        p.drawText(QRectF(q.x() - 20, q.y() + 3, 40, 14), Qt.AlignmentFlag.AlignHCenter, f"{x:g}")
    for y in _ticks(y0, y1):
        p.setPen(QPen(QColor("#e4e4e4"), 0.8))
        p.drawLine(at(x0, y), at(x1, y))
        p.setPen(QColor("#444"))
        q = at(x0, y)
        p.drawText(QRectF(q.x() - 40, q.y() - 7, 36, 14), Qt.AlignmentFlag.AlignRight, f"{y:g}")
    p.setPen(QPen(QColor("#555"), 1))
    p.drawRect(area)
    p.setFont(_font(11))
    p.setPen(QColor("#222"))
    p.drawText(QRectF(left, chart.height - 18, area.width(), 16), Qt.AlignmentFlag.AlignHCenter, chart.xlabel)
    p.save()
    p.translate(12, area.center().y())
    p.rotate(-90)
    p.drawText(QRectF(-area.height() / 2, -8, area.height(), 16), Qt.AlignmentFlag.AlignHCenter, chart.ylabel)
    p.restore()
    p.setClipRect(area.adjusted(-4, -4, 4, 4))
    legend: list[tuple[str, QPen, bool]] = []
    if chart.diagonal:
        pen = QPen(QColor("#888"), 1, Qt.PenStyle.DashLine)
        p.setPen(pen)
        lo, hi = max(x0, y0), min(x1, y1)
        p.drawLine(at(lo, lo), at(hi, hi))
        legend.append((chart.diagonal, pen, False))
    if chart.vline:
        pen = QPen(QColor("#555"), 1, Qt.PenStyle.DotLine)
        p.setPen(pen)
        p.drawLine(at(chart.vline[0], y0), at(chart.vline[0], y1))
        legend.append((chart.vline[1], pen, False))
    for s in chart.series:
        pen = QPen(QColor(s.color), 2, Qt.PenStyle.DashLine if s.dashed else Qt.PenStyle.SolidLine)
        _draw_series(p, s, at, pen)
        legend.append((s.label, pen, s.markers))
    for x, y, colour, label in chart.points:
        p.setPen(QPen(QColor("#111"), 1.2))
        p.setBrush(QColor(colour))
        p.drawEllipse(at(x, y), 5, 5)
        legend.append((label, QPen(QColor(colour), 6), True))
    p.setClipping(False)
    _legend(p, legend, area, chart.legend_top)
    p.end()
    return _png(image)


def _draw_series(p: QPainter, s: Series, at, pen: QPen) -> None:
    pts = [(float(x), float(y)) for x, y in zip(s.x, s.y, strict=True) if x is not None and y is not None]
    if not pts:
        return
    path = QPainterPath(at(*pts[0]))
    for (_, ya), (xb, yb) in zip(pts, pts[1:], strict=False):
        if s.step:
            path.lineTo(at(xb, ya))
        path.lineTo(at(xb, yb))
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawPath(path)
    if s.markers:
        p.setBrush(QColor(s.color))
        for x, y in pts:
            p.drawEllipse(at(x, y), 3, 3)


def _legend(p: QPainter, entries: list[tuple[str, QPen, bool]], area: QRectF, top: bool = False) -> None:
    if not entries:
        return
    p.setFont(_font(10))
    width = max(p.fontMetrics().horizontalAdvance(text) for text, _, _ in entries) + 34
    y = area.top() + 6 if top else area.bottom() - 16 * len(entries) - 10
    box = QRectF(area.right() - width - 6, y, width, 16 * len(entries) + 4)
    p.setPen(QPen(QColor("#bbb"), 0.8))
    p.setBrush(QColor(255, 255, 255, 230))
    p.drawRect(box)
    for i, (text, pen, marker) in enumerate(entries):
        y = box.top() + 10 + 16 * i
        p.setPen(pen)
        if marker and pen.widthF() > 3:
            p.setPen(QPen(QColor("#111"), 1))
            p.setBrush(pen.color())
            p.drawEllipse(QPointF(box.left() + 14, y), 4, 4)
        else:
            p.drawLine(QPointF(box.left() + 5, y), QPointF(box.left() + 24, y))
        p.setPen(QColor("#222"))
        p.drawText(QRectF(box.left() + 29, y - 8, width - 30, 16), Qt.AlignmentFlag.AlignVCenter, text)


def bar_chart(title: str, labels: list[str], values: list[int], color: str = "#9ab", width: int = 300,
              height: int = 100) -> bytes:
    """Small histogram (e.g. how many cases fall in each calibration bin)."""
    image, p = _canvas(width, height)
    p.setFont(_font(11, bold=True))
    p.setPen(QColor("#222"))
    p.drawText(QRectF(0, 2, width, 16), Qt.AlignmentFlag.AlignHCenter, title)
    left, top, bottom = 52, 22, 20
    area = QRectF(left, top, width - left - 10, height - top - bottom)
    top_value = max(values) if values and max(values) > 0 else 1
    w = area.width() / max(1, len(values))
    p.setFont(_font(9))
    for i, v in enumerate(values):
        h = v / top_value * (area.height() - 12)
        rect = QRectF(area.left() + i * w + 1, area.bottom() - h, w - 2, h)
        p.fillRect(rect, QColor(color))
        p.setPen(QColor("#333"))
        p.drawText(QRectF(rect.left(), rect.top() - 12, rect.width(), 12), Qt.AlignmentFlag.AlignHCenter, str(v))
        p.drawText(QRectF(rect.left() - 4, area.bottom() + 2, rect.width() + 8, 14), Qt.AlignmentFlag.AlignHCenter,
                   labels[i])
    p.setPen(QPen(QColor("#555"), 1))
    p.drawLine(area.bottomLeft(), area.bottomRight())
    p.end()
    return _png(image)


def confusion_chart(title: str, class_names: list[str], matrix: list[list[int]],
                    not_sure: list[int] | None = None, cell: int = 56) -> bytes:
    """Confusion matrix: rows true class, columns predicted, shaded by the share of each true class."""
    n = len(class_names)
    extra = 1 if not_sure is not None and any(not_sure) else 0
    label_w = min(150, 20 + 7 * max(len(c) for c in class_names))
    width, height = label_w + 30 + cell * (n + extra) + 10, 52 + label_w // 2 + cell * n + 10
    image, p = _canvas(width, height)
    p.setFont(_font(13, bold=True))
    p.setPen(QColor("#222"))
    p.drawText(QRectF(0, 4, width, 18), Qt.AlignmentFlag.AlignHCenter, title)
    x0, y0 = label_w + 30, 52 + label_w // 2
    p.setFont(_font(10))
    p.drawText(QRectF(x0, 24, cell * (n + extra), 14), Qt.AlignmentFlag.AlignHCenter, "predicted")
    p.save()
    p.translate(12, y0 + cell * n / 2)
    p.rotate(-90)
    p.drawText(QRectF(-cell * n / 2, -8, cell * n, 16), Qt.AlignmentFlag.AlignHCenter, "true")
    p.restore()
    columns = [*class_names, *(["not sure"] if extra else [])]
    for j, name in enumerate(columns):
        p.save()
        p.translate(x0 + cell * j + cell / 2 + 4, y0 - 4)
        p.rotate(-45)
        p.drawText(QRectF(0, -14, label_w, 14), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   _short(name, 22))
        p.restore()
    for i, name in enumerate(class_names):
        row = list(matrix[i]) + ([not_sure[i]] if extra else [])
        total = max(1, sum(row))
        p.setPen(QColor("#222"))
        p.drawText(QRectF(24, y0 + cell * i, label_w, cell), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                   _short(name, 22))
        for j, count in enumerate(row):
            share = count / total
            base = QColor("#2166ac") if i == j else QColor("#777777") if j >= n else QColor("#b2182b")
            colour = QColor(255 - round((255 - base.red()) * share), 255 - round((255 - base.green()) * share),
                            255 - round((255 - base.blue()) * share))
            rect = QRectF(x0 + cell * j, y0 + cell * i, cell, cell)
            p.fillRect(rect, colour)
            p.setPen(QPen(QColor("#999"), 0.6))
            p.drawRect(rect)
            p.setPen(QColor("white") if share > 0.55 else QColor("#111"))
            p.setFont(_font(13, bold=True))
            p.drawText(rect.adjusted(0, -6, 0, -6), Qt.AlignmentFlag.AlignCenter, str(count))
            p.setFont(_font(9))
            p.drawText(rect.adjusted(0, 16, 0, 0), Qt.AlignmentFlag.AlignCenter, f"{share:.0%}")
            p.setFont(_font(10))
    p.end()
    return _png(image)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def image_png(image) -> bytes:
    """A PIL image as PNG bytes."""
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
