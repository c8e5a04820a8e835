"""Below the Train step's curves: the training log, and the selected run's settings and epochs.

The settings are the run's ``config.json`` in plain words (``core.project.run_settings``); the epochs are its
``history.csv``, the best epoch marked. Both are read when a run is selected, never computed.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QWidget,
)

from tl_desktop.core import runs
from tl_desktop.core.project.run_list import config_of
from tl_desktop.core.project.run_settings import settings_rows
from tl_desktop.ui.widgets.common import percent

HISTORY_COLUMNS = ["Epoch", "Loss\n(training)", "Loss\n(validation)", "Accuracy\n(training)",
                   "Accuracy\n(validation)", "Balanced accuracy\n(validation)", "Learning\nrate", "Seconds"]
MULTILABEL_COLUMNS = {"Accuracy\n(training)": "Right decisions\n(training)",
                      "Accuracy\n(validation)": "Right decisions\n(validation)"}
_KEYS = ["epoch", "train_loss", "val_loss", "train_acc", "val_acc", "val_balanced_acc", "lr", "seconds"]
NO_RUN = "Select a run in the list to see its settings."


def make_table(columns: list[str], tip: str) -> QTableWidget:
    """A read-only table whose columns share the width (headers carry their own line breaks)."""
    table = QTableWidget(0, len(columns), toolTip=tip)
    table.setHorizontalHeaderLabels(columns)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().setVisible(False)
    table.setWordWrap(True)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    return table


def fill(table: QTableWidget, rows: list[list[str]], bold_rows: set[int] = frozenset()) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            if r in bold_rows:
                font = QFont(item.font())
                font.setBold(True)
                item.setFont(font)
            table.setItem(r, c, item)
    table.resizeRowsToContents()


def history_rows(folder: Path) -> tuple[list[list[str]], int | None]:
    """The rows of ``history.csv`` in words, and the index of the best epoch's row (None: no rows)."""
    rows = runs.read_history(folder)
    best = runs.best_epoch(rows)
    shown = []
    for row in rows:
        cells = [f"{int(row['epoch'])}" + (" (best)" if int(row["epoch"]) == best else "")]
        for key in _KEYS[1:]:
            value = row.get(key)
            if value is None:
                cells.append("–")
            elif key.endswith("acc"):
                cells.append(percent(value))
            elif key == "lr":
                cells.append(f"{value:.2g}")
            elif key == "seconds":
                cells.append(f"{value:.1f}")
            else:
                cells.append(f"{value:.3f}")
        shown.append(cells)
    index = next((i for i, row in enumerate(rows) if int(row["epoch"]) == best), None)
    return shown, index


class RunDetails(QTabWidget):
    """Tabs "Log", "Settings", "Epochs" (short: all three fit half of a 1024-pixel window); ``show_run`` fills
    the last two."""

    def __init__(self, log_pane: QPlainTextEdit, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.log_pane = log_pane
        self.settings = make_table(["Setting", "Value"], "The selected run's settings, as it was trained "
                                                         "(its config.json in words)")
        self.settings.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.history = make_table(HISTORY_COLUMNS, "Every finished epoch of the selected run (its history.csv); "
                                                   "the best epoch is the checkpoint the model keeps")
        for pane, text, tip in ((log_pane, "Log", "What the training did, line by line"),
                                (self.settings, "Settings", "The settings of the run selected in the list, in words"),
                                (self.history, "Epochs", "The loss and accuracy of the selected run, epoch by epoch")):
            self.setTabToolTip(self.addTab(pane, text), tip)
        self.run_dir: Path | None = None
        self.clear()

    def show_run(self, folder: Path) -> None:
        """The run's settings and epochs (a run without a readable config.json says so in the table)."""
        self.run_dir = Path(folder)
        config = config_of(self.run_dir)
        rows = settings_rows(config) if config is not None else [
            ("Settings", f"not readable: {self.run_dir / 'config.json'} is missing or damaged")]
        fill(self.settings, [[name, value] for name, value in rows])
        multi = config is not None and config.task == "multi-label"
        self.history.setHorizontalHeaderLabels([MULTILABEL_COLUMNS.get(c, c) if multi else c
                                                for c in HISTORY_COLUMNS])
        table, best = history_rows(self.run_dir)
        fill(self.history, table, {best} if best is not None else set())

    def clear(self) -> None:
        self.run_dir = None
        fill(self.settings, [["", NO_RUN]])
        fill(self.history, [])
