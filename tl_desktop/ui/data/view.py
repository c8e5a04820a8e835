"""Step 1, Data: choose a folder or CSV (or drop it), scan in the background, look at the images, split."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.events import Progress
from tl_desktop.ui.data.quality import QualityPanel
from tl_desktop.ui.data.scan_report import ScanReportView, fill_table, make_table
from tl_desktop.ui.data.split_panel import SplitPanel
from tl_desktop.ui.session import Session, drop_workers
from tl_desktop.ui.widgets.common import hint, icon, label, title
from tl_desktop.ui.widgets.errors import task_failed
from tl_desktop.ui.widgets.image_viewer import facts_for_path, open_viewer
from tl_desktop.ui.widgets.thumbnail_grid import ThumbnailGrid, tiles_for_samples
from tl_desktop.workers import Worker, tasks

log = logging.getLogger(__name__)


class DataView(QWidget):
    """Data step. Holds no data logic: scan, split and leakage run in core functions through workers."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.scan_worker: Worker | None = None
        self.split_worker: Worker | None = None
        self.setAcceptDrops(True)
        self._build()
        session.project_changed.connect(self._on_project)
        session.scan_changed.connect(self._on_scan)
        session.split_changed.connect(self._on_split_restored)

    # --- layout -------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.source = label("No images chosen yet.", wrap=True)
        self.source.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_button = QPushButton(icon("open"), "Choose folder…",
                                         toolTip="A folder with one sub-folder of images per class (Ctrl+Shift+O)")
        self.folder_button.setShortcut("Ctrl+Shift+O")
        self.folder_button.clicked.connect(self.choose_folder)
        self.csv_button = QPushButton("Choose CSV…", toolTip="A CSV file with a column of image files and a "
                                                             "column of labels (optionally a group column)")
        self.csv_button.clicked.connect(self.choose_csv)
        self.rescan_button = QPushButton("Scan again", toolTip="Look at the files again (after adding or "
                                                               "removing images)")
        self.rescan_button.clicked.connect(self.scan)
        self.progress = QProgressBar(visible=False, toolTip="Scanning: every file is opened once and checked")
        self.cancel_button = QPushButton("Cancel", visible=False, toolTip="Stop scanning")
        self.cancel_button.clicked.connect(lambda: self.scan_worker and self.scan_worker.stop())
        self.classes = make_table(["Class", "Images"], "The classes found and how many usable images each has")
        self.split_panel = SplitPanel()
        self.split_panel.requested.connect(self.make_split)
        self.grid = ThumbnailGrid()
        self.grid.activated_path.connect(self.open_image)
        self.report = ScanReportView()
        self.quality = QualityPanel(self.session)
        self._arrange()

    def _arrange(self) -> None:
        buttons = QHBoxLayout()
        for widget in (self.folder_button, self.csv_button, self.rescan_button):
            buttons.addWidget(widget)
        buttons.addStretch()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.cancel_button)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.classes)
        left.addWidget(self.split_panel)
        left.setSizes([160, 400])
        right = QTabWidget()
        right.addTab(self.grid, "Images")
        right.addTab(self.report, "Scan report")
        right.addTab(self.quality, "Data quality")
        self.tabs = right
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(right)
        body.setSizes([380, 620])
        box = QVBoxLayout(self)
        box.addWidget(title("1. Your images"))
        box.addWidget(hint("Choose a folder with one sub-folder per class (for example normal/ and effusion/), or "
                           "a CSV file listing images and labels. You can also drop a folder here."))
        box.addWidget(self.source)
        box.addLayout(buttons)
        box.addWidget(body, 1)

    # --- choosing the source ------------------------------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder with one sub-folder of images per class")
        if folder:
            self.set_source(folder, "folder")

    def choose_csv(self) -> None:
        file, _ = QFileDialog.getOpenFileName(self, "CSV listing images and labels", "", "CSV files (*.csv)")
        if file:
            self.set_source(file, "csv")

    def set_source(self, path: str | Path, kind: str) -> None:
        project = self.session.project
        if project is None:
            return
        project.set_source(path, kind)
        project.split = None
        self.session.split = None
        self.session.mark_dirty()
        self.scan()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if self.session.project is not None and event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not urls:
            return
        path = Path(urls[0])
        if path.is_dir() or path.suffix.lower() == ".csv":
            self.set_source(path, "folder" if path.is_dir() else "csv")
            event.acceptProposedAction()

    # --- scanning -----------------------------------------------------------------------------------
    def scan(self) -> None:
        project = self.session.project
        source = project.source_path() if project else None
        if source is None or (self.scan_worker and self.scan_worker.is_running()):
            return
        folder, csv = (str(source.parent), str(source)) if project.source.kind == "csv" else (str(source), None)
        self.source.setText(f"Images: {source}")
        self.scan_worker = Worker(tasks.scan_task, folder, csv, name="scan")
        self.scan_worker.progressed.connect(self._on_scan_progress)
        self.scan_worker.finished.connect(self.session.set_scan)
        self.scan_worker.errored.connect(lambda failure: task_failed(self, "scan", failure))
        self.scan_worker.aborted.connect(lambda: self.session.message.emit("Scan cancelled."))
        self.scan_worker.ended.connect(self._on_scan_ended)
        self._set_busy(True)
        self.scan_worker.start()

    def _set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.progress.setRange(0, 0)
        for widget in (self.folder_button, self.csv_button, self.rescan_button, self.split_panel.button):
            widget.setEnabled(not busy)

    def _on_scan_progress(self, event: Any) -> None:
        if isinstance(event, Progress) and event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
            self.progress.setFormat("Scanning %v of %m files")

    def _on_scan_ended(self) -> None:
        self._set_busy(False)

    def _on_scan(self, report: Any) -> None:
        self.report.show_report(report)
        if report is None:
            fill_table(self.classes, [])
            self.grid.set_groups({})
            return
        rows = [[c, report.counts.get(c, 0)] for c in report.classes]
        rows.append(["All classes", len(report.samples)])
        fill_table(self.classes, rows)
        self.grid.set_groups(tiles_for_samples(report))
        if report.unusable:
            self.tabs.setCurrentWidget(self.report)
        self.session.message.emit(f"Scan finished: {len(report.samples):,} images in {len(report.classes)} "
                                  f"classes, {len(report.skipped):,} skipped.")
        if self.session.split is None and report.usable:
            self.make_split(self._split_settings())

    def open_image(self, path: str) -> None:
        """The viewer on a thumbnail's file, with its class, part and group from the scan and split."""
        open_viewer(self, path, facts_for_path(self.session.report, self.session.split, path))

    # --- splitting ----------------------------------------------------------------------------------
    def _split_settings(self) -> dict[str, Any]:
        s = self.session.project.settings
        return {"val_fraction": s.val_fraction, "test_fraction": s.test_fraction, "seed": s.seed,
                "group_by": s.group_by}

    def make_split(self, settings: dict[str, Any]) -> None:
        report = self.session.report
        if report is None or not report.usable or (self.split_worker and self.split_worker.is_running()):
            return
        project = self.session.project
        for key, value in settings.items():
            setattr(project.settings, key, value)
        self.split_worker = Worker(tasks.split_task, report, name="split", **settings)
        self.split_worker.finished.connect(self._on_split_made)
        self.split_worker.errored.connect(lambda failure: task_failed(self, "split", failure))
        self.split_panel.button.setEnabled(False)
        self.split_worker.ended.connect(lambda: self.split_panel.button.setEnabled(True))
        self.split_worker.start()

    def _on_split_made(self, result: tuple[Any, Any]) -> None:  # (Split, LeakageCheck)
        split, check = result
        self.session.set_split(split)
        self.split_panel.show_split(self.session.report, split, check)

    def _on_split_restored(self, split: Any) -> None:
        self.split_panel.show_split(self.session.report, split, None)

    # --- project ------------------------------------------------------------------------------------
    def _on_project(self, project: Any) -> None:
        """Another project is open: a scan or split still running for the previous one is dropped (its result
        would land in this project), the scan report, classes, images and split panel are emptied."""
        drop_workers(self.scan_worker, self.split_worker)
        self.scan_worker = self.split_worker = None
        self._set_busy(False)
        self.session.report = None
        self._on_scan(None)
        self.split_panel.show_split(None, None)
        if project is None:
            return
        s = project.settings
        self.split_panel.set_values(s.val_fraction, s.test_fraction, s.seed, s.group_by)
        source = project.source_path()
        self.source.setText(f"Images: {source}" if source else "No images chosen yet.")
        if source is not None:
            self.scan()

    def shutdown(self) -> None:
        for worker in (self.scan_worker, self.split_worker):
            if worker is not None and worker.is_running():
                worker.stop()
                worker.wait()
        self.quality.shutdown()
        self.grid.shutdown()
