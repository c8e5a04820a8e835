"""The confusion matrix as a heat map of counts: rows are the true classes, columns the predicted ones.

Each cell shows the count and the share of its row; the colour deepens with the share. Clicking a cell emits
``cell_clicked(true_class, predicted_class)``. With an abstain threshold a last column counts the images
the model answered "not sure" for (``predicted_class`` is then "not sure").
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

CORRECT = QColor(46, 157, 91)
WRONG = QColor(200, 85, 61)
UNSURE = QColor(128, 128, 128)
NOT_SURE = "not sure"


class ConfusionMatrix(QTableWidget):
    cell_clicked = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.classes: list[str] = []
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.horizontalHeader().setMinimumSectionSize(24)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.setToolTip("Rows: the true class. Columns: what the model said. The diagonal holds the correct "
                        "answers. Click a cell to see those images.")
        self.cellClicked.connect(self._clicked)

    def _clicked(self, row: int, column: int) -> None:
        if row < len(self.classes):
            self.cell_clicked.emit(self.classes[row], self.classes[column] if column < len(self.classes)
                                   else NOT_SURE)

    def set_matrix(self, classes: list[str], matrix: list[list[int]], not_sure: list[int] | None = None) -> None:
        """Counts (rows true, columns predicted); ``not_sure`` per true class adds a "not sure" column."""
        self.classes = list(classes)
        self.clear()
        self.setRowCount(len(classes))
        columns = list(classes) + ([NOT_SURE] if not_sure is not None else [])
        self.setColumnCount(len(columns))
        self.setHorizontalHeaderLabels(columns)
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
