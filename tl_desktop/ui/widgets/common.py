"""Small widget helpers shared by the step views (labels with roles, icons, progress text), and the helpers
that keep tables and wrapped labels readable in a small window (1024 x 700): header text that wraps onto two
lines, columns shared out so the header fits without a horizontal scroll bar (cells wrap instead), and
wrapped labels that keep the height of their text."""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QByteArray, QEvent, QObject, QSize, Qt, QTimer
from PySide6.QtGui import QIcon, QImage, QPainter, QPaintEvent, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QFrame, QHeaderView, QLabel, QStyle, QStyleOptionHeader, QTableView, QWidget

from tl_desktop import paths

ICON_BLUE = "#3f7cbf"
ICON_SIZES = (16, 22, 32, 44, 64)  # menus, the step list (22 px, 44 at 2x), tool buttons; others scale down


@cache
def icon(name: str) -> QIcon:
    """An icon from resources/icons; its selected form is drawn in white, so the blue icon of the selected
    step stays visible on the blue selection. Both forms are pixmaps at ``ICON_SIZES``: Qt's SVG icon engine
    uses an added pixmap only at exactly the size asked for, and tinted the blue icon blue on the list's 22 px."""
    path = paths.resource("icons", f"{name}.svg")
    try:
        blue = path.read_bytes()
    except OSError:
        return QIcon(str(path))
    white = blue.replace(ICON_BLUE.encode(), b"#ffffff")
    result = QIcon()
    for mode, svg in ((QIcon.Mode.Normal, blue), (QIcon.Mode.Selected, white)):
        renderer = QSvgRenderer(QByteArray(svg))
        if not renderer.isValid():
            return QIcon(str(path))
        for size in ICON_SIZES:
            image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
            image.fill(Qt.GlobalColor.transparent)
            painter = QPainter(image)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            renderer.render(painter)
            painter.end()
            result.addPixmap(QPixmap.fromImage(image), mode)
    return result


def label(text: str, role: str | None = None, *, wrap: bool = False, parent: QWidget | None = None) -> QLabel:
    """A QLabel with a style role from resources/style.qss (title, hint, figure, badge-ok, badge-warn)."""
    widget = QLabel(text, parent)
    if role:
        widget.setProperty("role", role)
    widget.setWordWrap(wrap)
    return widget


class ElidedLabel(QLabel):
    """A one-line label that, when narrower than its text, ends it with "…" and shows it whole in its tooltip:
    a status line whose changing text never re-lays out what stands beside it."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setProperty("elides", True)
        self.setToolTip(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt API
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(0, super().minimumSizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        rect = self.contentsRect()
        shown = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter = QPainter(self)
        self.style().drawItemText(painter, rect, int(self.alignment()), self.palette(), self.isEnabled(), shown,
                                  self.foregroundRole())


def title(text: str) -> QLabel:
    return label(text, "title")


def hint(text: str) -> QLabel:
    widget = label(text, "hint", wrap=True)
    widget.setOpenExternalLinks(False)
    return widget


def separator() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.HLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    return line


def duration(seconds: float) -> str:
    """3 s, 2 min 05 s, 1 h 04 min: how people say durations."""
    if seconds < 10:
        return f"{max(0.0, seconds):.1f} s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


FIT_MS = 60  # a burst of changes (thumbnails arriving) re-fits the columns once


# --- tables that fit -------------------------------------------------------------------------------------
def _two_lines(text: str) -> list[str]:
    """``text`` split before its "(", else at the space nearest its middle (a line break given is kept)."""
    if "\n" in text or " " not in text:
        return text.split("\n")
    if " (" in text:  # "Sensitivity" over "(95% CI)"
        first, _space, rest = text.partition(" (")
        return [first, f"({rest}"]
    spaces = [i for i, c in enumerate(text) if c == " "]
    cut = min(spaces, key=lambda i: abs(2 * i - len(text)))
    return [text[:cut], text[cut + 1:]]


class WrapHeader(QHeaderView):
    """A horizontal header whose titles wrap onto two lines: a section needs the width of its longer line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setDefaultAlignment(Qt.AlignmentFlag(Qt.AlignmentFlag.AlignCenter.value | Qt.TextFlag.TextWordWrap.value))
        self.setSectionsClickable(True)
        self.setHighlightSections(True)

    def sectionSizeFromContents(self, logical_index: int) -> QSize:  # noqa: N802 - Qt API
        model = self.model()
        if model is None:
            return super().sectionSizeFromContents(logical_index)
        text = str(model.headerData(logical_index, self.orientation(), Qt.ItemDataRole.DisplayRole) or "")
        option = QStyleOptionHeader()
        self.initStyleOption(option)
        option.section = logical_index
        option.text = "\n".join(_two_lines(text))  # the style measures each line: the longer one counts
        option.fontMetrics = self.fontMetrics()
        size = self.style().sizeFromContents(QStyle.ContentsType.CT_HeaderSection, option, QSize(), self)
        return size.expandedTo(QSize(0, self.fontMetrics().height() * 2 + 8))


class _ColumnFitter(QObject):
    """Shares a table's width out over its columns: each gets what its header and cells need when the table is
    wide enough; when it is not, at least its header's two-line width, the cells wrapping onto more lines."""

    def __init__(self, table: QTableView) -> None:
        super().__init__(table)
        self.table = table
        self.timer = QTimer(self, singleShot=True, interval=FIT_MS)
        self.timer.timeout.connect(self.fit)
        table.viewport().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.Resize:
            self.timer.start()
        return False

    def watch(self) -> None:
        model = self.table.model()
        for signal in (model.modelReset, model.rowsInserted, model.dataChanged, model.headerDataChanged,
                       model.columnsInserted, model.layoutChanged):
            signal.connect(self.timer.start)

    def _widest_word(self, column: int, rows: int = 200) -> int:
        """The width of the longest unbreakable word in the column's first ``rows`` cells (cells wrap at spaces)."""
        model, metrics = self.table.model(), self.table.fontMetrics()
        words = (word for row in range(min(rows, model.rowCount()))
                 for word in str(model.index(row, column).data() or "").split())
        return max((metrics.horizontalAdvance(word) for word in words), default=0) + 12

    def fit(self) -> None:
        table, header = self.table, self.table.horizontalHeader()
        columns = [c for c in range(header.count()) if not header.isSectionHidden(c)]
        if not columns:
            return
        floors = {c: max(header.sectionSizeHint(c), self._widest_word(c)) for c in columns}
        needs = {c: max(floors[c], table.sizeHintForColumn(c)) for c in columns}
        room = table.viewport().width()
        spare, extra = room - sum(floors.values()), sum(needs[c] - floors[c] for c in columns)
        share = 1.0 if extra <= 0 or spare >= extra else max(0.0, spare / extra)
        for c in columns:
            header.resizeSection(c, floors[c] + int((needs[c] - floors[c]) * share))
        left = room - sum(header.sectionSize(c) for c in columns)
        if left > 0:  # the last column takes what is left
            header.resizeSection(columns[-1], header.sectionSize(columns[-1]) + left)
        if table.property("fit_rows"):
            table.resizeRowsToContents()


def fit_columns(table: QTableView, *, wrap_rows: bool = True) -> QTableView:
    """Make ``table``'s header wrap onto two lines and its columns share the table's width, so the header
    never needs a horizontal scroll bar while the table has the room for the headers' two-line width.

    Args:
        table: a table whose model is already set (its changes re-fit the columns).
        wrap_rows: let cell text wrap and rows grow to it (off for tables with fixed-height thumbnail rows).
    """
    header = WrapHeader(table)
    table.setHorizontalHeader(header)
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(False)
    table.setWordWrap(True)
    table.setProperty("fit_rows", wrap_rows)
    table.setTextElideMode(Qt.TextElideMode.ElideRight)
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    fitter = _ColumnFitter(table)
    fitter.watch()
    table.setProperty("column_fitter", True)
    fitter.timer.start()
    return table


# --- wrapped labels that keep their height -------------------------------------------------------------
KEEP_EVENTS = (QEvent.Type.Resize, QEvent.Type.Show, QEvent.Type.Paint)  # a new text repaints


class _HeightKeeper(QObject):
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() in KEEP_EVENTS and isinstance(watched, QLabel):
            keep_height(watched)
        return False


def keep_height(widget: QLabel) -> None:
    """A word-wrapped label asks for the height of its text at its width (a splitter or grid would otherwise
    squeeze it to a line and cut the text); the height follows the width both ways. Installed once; called again
    on each resize, show and repaint (a new text repaints)."""
    if not widget.property("keeps_height"):
        widget.setProperty("keeps_height", True)
        widget.installEventFilter(_HeightKeeper(widget))
    measured = f"{widget.width()}|{widget.font().key()}|{widget.text()}"
    if widget.property("kept_for") == measured:
        return  # a repaint of the same text at the same width: nothing to do
    widget.setProperty("kept_for", measured)
    if widget.minimumHeight():
        # QLabel.heightForWidth never answers less than the minimum height: without this, a label once laid out
        # narrow (many lines) kept that height when it was widened, and stood in a tall empty band.
        widget.setMinimumHeight(0)
    needed = widget.heightForWidth(widget.width()) if widget.text() and widget.width() > 0 else 0
    widget.setMinimumHeight(max(needed, 0))
