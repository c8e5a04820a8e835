"""Compare two or more runs side by side: their headline figures, their settings (differences highlighted)
and their validation curves overlaid, one colour per run.

Everything is read from the runs' folders (``core.project.run_list.headline``: ``metrics.json``, else the
stored evaluation; ``run_settings.compare_settings``: ``config.json``; ``runs.read_history``: history.csv).
Nothing is computed again, so the figures are those the run list, Evaluate and the report show.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QSplitter,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core import runs
from tl_desktop.core.project import run_list
from tl_desktop.core.project.project_file import Project, RunEntry
from tl_desktop.core.project.run_settings import SettingRow, compare_settings
from tl_desktop.ui.train.run_details import make_table
from tl_desktop.ui.widgets.common import hint, label
from tl_desktop.ui.widgets.themed_plot import EpochAxis, make_plot

COLOURS = ("#3f7cbf", "#e07b39", "#2e9d5b", "#b8407a", "#7a5cc7", "#8c6d31", "#1f9fa8", "#c23b3b")
DIFFERS_TIP = "The runs differ in this setting"


def _bold(item: QTableWidgetItem) -> None:
    font = QFont(item.font())
    font.setBold(True)
    item.setFont(font)


def _highlight() -> QBrush:
    """A background for rows that differ, readable in the light and the dark theme."""
    colour = QColor(QApplication.palette().color(QPalette.ColorRole.Highlight))
    colour.setAlpha(70)
    return QBrush(colour)


class CompareWindow(QDialog):
    """Non-modal; ``figures``, ``settings`` and ``plots`` are public for tests and screenshots."""

    def __init__(self, project: Project, entries: list[RunEntry], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Compare {len(entries)} runs — {project.name}")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.folders = [project.run_path(e) for e in entries]
        self.names = [f"{i}. {run_list.display_name(e)}" for i, e in enumerate(entries, start=1)]  # two runs of
        # one minute have the same date-and-network name: the number and colour tell columns and curves apart
        self.rows: list[SettingRow] = compare_settings([run_list.config_of(f) for f in self.folders])
        self.figures = make_table(["Figure (test images)", *self.names], "The runs' figures on their own test "
                                  "images (each run's metrics.json); the best of each row in bold")
        self.settings = make_table(["Setting", *self.names], "The runs' settings; highlighted where they differ")
        for table in (self.figures, self.settings):
            table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
            for column in range(1, table.columnCount()):  # the run's colour above its column, as in the curves
                table.horizontalHeaderItem(column).setForeground(QColor(COLOURS[(column - 1) % len(COLOURS)]))
        self.only_differences = QCheckBox("Show only the settings that differ")
        self.only_differences.toggled.connect(self._filter_settings)
        self.val_loss = make_plot("Validation loss (lower is better)", "loss", (-10, 10), x_axis=EpochAxis())
        self.val_acc = make_plot("Validation accuracy (higher is better)", "accuracy %", (-10, -40),
                                 x_axis=EpochAxis())
        self.val_acc.setYRange(0, 100, padding=0.02)
        self.curves: dict[str, list[pg.PlotDataItem]] = {"val_loss": [], "val_acc": []}
        self._fill_figures(project, entries)
        self._fill_settings()
        self._plot()
        self._arrange()
        self.resize(1280, 720)

    def _arrange(self) -> None:
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(label("Figures"))
        column.addWidget(self.figures)
        settings_title = QHBoxLayout()
        settings_title.addWidget(label("Settings"))
        settings_title.addStretch(1)
        settings_title.addWidget(self.only_differences)
        column.addLayout(settings_title)
        column.addWidget(self.settings, 1)
        plots = QWidget()
        stacked = QVBoxLayout(plots)
        stacked.setContentsMargins(0, 0, 0, 0)
        stacked.addWidget(self.val_loss)
        stacked.addWidget(self.val_acc)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(plots)
        body.setSizes([700, 560])
        box = QVBoxLayout(self)
        box.addWidget(hint("Each run is measured on its own test images: when the runs used different images "
                           "or splits, compare the figures with care. The curves are measured on the validation "
                           "images while training."))
        box.addWidget(body, 1)

    # --- content ------------------------------------------------------------------------------------
    def _fill_figures(self, project: Project, entries: list[RunEntry]) -> None:
        headlines = [run_list.headline(f, e) for f, e in zip(self.folders, entries, strict=True)]
        labels: list[str] = []
        for figures in headlines:
            labels += [f.label for f in figures if f.label not in labels]
        facts = [run_list.run_facts(project, e) for e in entries]
        rows = [[name, *(_figure(h, name) for h in headlines)] for name in labels]
        rows += [["Best epoch", *(str(f.best_epoch or "–") for f in facts)],
                 ["Epochs trained", *(str(f.epochs_run) for f in facts)]]
        self.figures.setRowCount(len(rows))
        for r, row in enumerate(rows):
            values = [_value(h, row[0]) for h in headlines] if r < len(labels) else []
            best = max((v for v in values if v is not None), default=None)
            for c, text in enumerate(row):
                item = QTableWidgetItem(text)
                if c > 0 and best is not None and values[c - 1] == best and len(set(values)) > 1:
                    _bold(item)
                self.figures.setItem(r, c, item)
        self.figures.resizeRowsToContents()
        height = self.figures.horizontalHeader().sizeHint().height() + self.figures.verticalHeader().length()
        self.figures.setMaximumHeight(height + 2 * self.figures.frameWidth() + 2)  # no empty rows below

    def _fill_settings(self) -> None:
        self.settings.setRowCount(len(self.rows))
        brush = _highlight()
        for r, row in enumerate(self.rows):
            for c, text in enumerate([row.label, *row.values]):
                item = QTableWidgetItem(text)
                if row.differs:
                    item.setBackground(brush)
                    item.setToolTip(DIFFERS_TIP)
                    if c == 0:
                        _bold(item)
                self.settings.setItem(r, c, item)
        self.settings.resizeRowsToContents()

    def _filter_settings(self, only: bool) -> None:
        for r, row in enumerate(self.rows):
            self.settings.setRowHidden(r, only and not row.differs)

    def _plot(self) -> None:
        for i, (folder, name) in enumerate(zip(self.folders, self.names, strict=True)):
            history = runs.read_history(folder)
            epochs = [row["epoch"] for row in history]
            pen = pg.mkPen(COLOURS[i % len(COLOURS)], width=2)
            for key, plot, scale in (("val_loss", self.val_loss, 1.0), ("val_acc", self.val_acc, 100.0)):
                values = [scale * row[key] for row in history if key in row]
                curve = plot.plot(epochs[:len(values)], values, pen=pen, name=name, symbol="o", symbolSize=5,
                                  symbolBrush=COLOURS[i % len(COLOURS)])
                self.curves[key].append(curve)

    def differing(self) -> list[str]:
        """The labels of the settings in which the runs differ."""
        return [row.label for row in self.rows if row.differs]


def _value(figures: tuple[run_list.Figure, ...], name: str) -> float | None:
    return next((f.value for f in figures if f.label == name), None)


def _figure(figures: tuple[run_list.Figure, ...], name: str) -> str:
    return next((f.text for f in figures if f.label == name), "–")
