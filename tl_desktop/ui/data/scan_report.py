"""What the scan found: classes with counts, every skipped file with its reason, duplicates, warnings."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.ui.widgets.common import label


def make_table(headers: list[str], tooltip: str = "", *, sortable: bool = False) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.setAlternatingRowColors(True)
    table.setToolTip(tooltip)
    table.setProperty("sortable", sortable)
    return table


def fill_table(table: QTableWidget, rows: list[list[Any]]) -> None:
    """Rows of plain values; numbers are right-aligned and sort as numbers."""
    table.setSortingEnabled(False)
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            item = QTableWidgetItem()
            if isinstance(value, int | float) and not isinstance(value, bool):
                item.setData(Qt.ItemDataRole.DisplayRole, value)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            else:
                item.setText("" if value is None else str(value))
            table.setItem(r, c, item)
    table.setSortingEnabled(bool(table.property("sortable")))


class ScanReportView(QTabWidget):
    """Tabs: Skipped files, Duplicates, Warnings (each tab title carries its count)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = label("No scan yet.", wrap=True)
        self.skipped = make_table(["File", "Why it was skipped"], "Files that will not be used, and why",
                                  sortable=True)
        self.duplicates = make_table(["Identical images (same file contents or same pixels)"],
                                     "Files that hold the same image, even when stored differently (e.g. a DICOM "
                                     "saved compressed and uncompressed): they are kept in one part of the split")
        self.warnings = QLabel(wordWrap=True, alignment=Qt.AlignmentFlag.AlignTop)
        self.warnings.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        overview = QWidget()
        box = QVBoxLayout(overview)
        box.addWidget(self.summary)
        box.addWidget(self.warnings, 1)
        self.addTab(overview, "Summary")
        self.addTab(self.skipped, "Skipped")
        self.addTab(self.duplicates, "Duplicates")

    def show_report(self, report: Any | None) -> None:
        if report is None:
            self.summary.setText("No scan yet.")
            self.warnings.clear()
            fill_table(self.skipped, [])
            fill_table(self.duplicates, [])
            return
        self.summary.setText(self._summary(report))
        two = "with different findings" if report.is_multilabel else "in two classes"
        problems = [w.message for w in report.warnings] + [f"Same image {two} (skipped): {', '.join(c)}"
                                                           for c in report.conflicts]
        self.warnings.setText("\n".join(f"• {w}" for w in problems) if problems else "No warnings.")
        fill_table(self.skipped, [[s.path, s.reason] for s in report.skipped])
        fill_table(self.duplicates, [[" = ".join(group)] for group in report.duplicates])
        self.setTabText(1, f"Skipped ({len(report.skipped)})")
        self.setTabText(2, f"Duplicates ({len(report.duplicates)})")

    @staticmethod
    def _summary(report: Any) -> str:
        grouped = (f"with {len(report.classes)} finding{'s' if len(report.classes) != 1 else ''} (several or none "
                   "per image)" if report.is_multilabel else f"in {len(report.classes)} classes")
        text = (f"Looked at {report.files_seen:,} files: {len(report.samples):,} usable images {grouped}, "
                f"{len(report.skipped):,} skipped.\n{report.identical_text()}")
        if report.unusable:
            text += f"\n\nThis data set cannot be used yet: {report.unusable}"
        return text
