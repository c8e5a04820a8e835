"""The confusion matrix as a heat map of counts: rows are the true classes, columns the predicted ones.

Each cell shows the count and the share of its row; the colour deepens with the share. Clicking a cell emits
``cell_clicked(true_class, predicted_class)``. With an abstain threshold a last column counts the images
the model answered "not sure" for (``predicted_class`` is then "not sure"). With more than ``UPRIGHT_MAX``
columns the column titles stand upright (read bottom to top), so ten classes fit a 1024-pixel window without
cutting their names.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyle,
    QStyleOptionHeader,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

CORRECT = QColor(46, 157, 91)
WRONG = QColor(200, 85, 61)
UNSURE = QColor(128, 128, 128)
NOT_SURE = "not sure"
UPRIGHT_MAX = 4  # up to this many columns the titles lie flat


class UprightHeader(QHeaderView):
    """A horizontal header that can draw its titles turned a quarter left: a column then needs only a line's
    height of width, and the header is as tall as the longest title."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.upright = False

    def _text(self, logical_index: int) -> str:
        model = self.model()
        return "" if model is None else str(model.headerData(logical_index, self.orientation()) or "")

    def sectionSizeFromContents(self, logical_index: int) -> QSize:  # noqa: N802 - Qt API
        if not self.upright:
            return super().sectionSizeFromContents(logical_index)
        metrics = self.fontMetrics()
        return QSize(metrics.height() + 8, metrics.horizontalAdvance(self._text(logical_index)) + 14)

    def paintSection(self, painter: QPainter, rect: QRect, logical_index: int) -> None:  # noqa: N802 - Qt API
        if not self.upright:
            super().paintSection(painter, rect, logical_index)
            return
        option = QStyleOptionHeader()
        self.initStyleOption(option)
        option.rect, option.section, option.text = rect, logical_index, ""
        self.style().drawControl(QStyle.ControlElement.CE_Header, option, painter, self)
        painter.save()
        painter.setPen(self.palette().color(QPalette.ColorRole.ButtonText))
        painter.translate(rect.left(), rect.bottom())
        painter.rotate(-90)
        painter.drawText(QRect(6, 0, rect.height() - 10, rect.width()),
                         int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), self._text(logical_index))
        painter.restore()


class ConfusionMatrix(QTableWidget):
    cell_clicked = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.classes: list[str] = []
        self.setHorizontalHeader(UprightHeader(self))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.horizontalHeader().setMinimumSectionSize(24)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.setToolTip("Rows: the true class. Columns: what the model said. The diagonal holds the correct "
                        "answers. Click a cell to see those images.")
        self.setProperty("glossary_term", "confusion_matrix")  # F1 here opens the glossary at this term
        self._shown: tuple[list[str], list[list[int]], list[int] | None] | None = None
        self.cellClicked.connect(self._clicked)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API
        """A light/dark theme switch re-colours the cells' text (``ui/theme.py``)."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self._shown is not None:
            self.set_matrix(*self._shown)

    def _clicked(self, row: int, column: int) -> None:
        if row < len(self.classes):
            self.cell_clicked.emit(self.classes[row], self.classes[column] if column < len(self.classes)
                                   else NOT_SURE)

    def set_matrix(self, classes: list[str], matrix: list[list[int]], not_sure: list[int] | None = None) -> None:
        """Counts (rows true, columns predicted); ``not_sure`` per true class adds a "not sure" column."""
        self.classes = list(classes)
        self._shown = (self.classes, matrix, not_sure)
        self.clear()
        self.setRowCount(len(classes))
        columns = list(classes) + ([NOT_SURE] if not_sure is not None else [])
        self.setColumnCount(len(columns))
        header = self.horizontalHeader()
        header.upright = len(columns) > UPRIGHT_MAX
        self.setHorizontalHeaderLabels(columns)
        header.updateGeometry()
        self.setVerticalHeaderLabels(classes)
        text_color = self.palette().color(QPalette.ColorRole.Text)
        for r, row in enumerate(matrix):
            row = list(row) + ([not_sure[r]] if not_sure is not None else [])
            total = max(sum(row), 1)
            for c, count in enumerate(row):
                share = count / total
                item = QTableWidgetItem(str(count))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                base = UNSURE if c == len(classes) else CORRECT if r == c else WRONG
                if count:
                    color = QColor(base)
                    color.setAlpha(int(40 + 200 * share))
                    item.setBackground(color)
                    item.setForeground(QColor("white") if share > 0.5 else text_color)
                item.setToolTip(f"{count} images of class {classes[r]} were classified as {columns[c]} "
                                f"({100 * share:.1f} % of that class)")
                self.setItem(r, c, item)
