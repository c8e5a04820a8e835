"""Step 1, Data: choose a folder or CSV (or drop it), scan in the background, look at the images, split."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QResizeEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.events import Progress
from tl_desktop.ui.data.quality import QualityPanel
from tl_desktop.ui.data.scan_report import ScanReportView, fill_table, make_table
from tl_desktop.ui.data.split_panel import SplitPanel
from tl_desktop.ui.label.start import LabelEntry
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
        self._refresh_pending = False  # a review decision came while a split was being made
        self.setAcceptDrops(True)
        self._build()
        session.project_changed.connect(self._on_project)
        session.scan_changed.connect(self._on_scan)
        session.split_changed.connect(self._on_split_restored)
        session.review_changed.connect(self.refresh_split)
        session.labels_changed.connect(lambda: self.isVisible() and self.scan())

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
        self.findings_note = label("", "hint", wrap=True)  # a multi-label set: frequencies, no finding, pairs
        self.findings_note.setVisible(False)
        self.split_panel = SplitPanel()
        self.split_panel.requested.connect(self.make_split)
        self.grid = ThumbnailGrid()
        self.grid.activated_path.connect(self.open_image)
        self.report = ScanReportView()
        self.quality = QualityPanel(self.session)
        self.quality.found_changed.connect(self._show_audit_crossings)
        self.label_entry = LabelEntry(self.session)  # "These images have no labels yet" / "Label in the app"
        self._scanned_labels: dict[str, Any] | None = None  # the labels the last scan applied
        self._arrange()

    def _arrange(self) -> None:
        buttons = QHBoxLayout()
        for widget in (self.folder_button, self.csv_button, self.rescan_button):
            buttons.addWidget(widget)
        buttons.addStretch()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.cancel_button)
        left = QSplitter(Qt.Orientation.Vertical)
        classes = QWidget()
        column = QVBoxLayout(classes)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.classes, 1)
        column.addWidget(self.findings_note)
        left.addWidget(classes)
        left.addWidget(self.split_panel)
        left.setSizes([160, 400])
        self._left = left
        right = QTabWidget()
        right.addTab(self.grid, "Images")
        right.addTab(self.report, "Scan report")
        right.addTab(self.quality, "Data quality")
        self.tabs = right
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(right)
        body.setSizes([380, 620])
        self._body = body
        page = QWidget()  # scrolls when the screen is smaller than the step (1366x768 with the label line)
        scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        scroll.setWidget(page)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        box = QVBoxLayout(page)
        box.addWidget(title("1. Your images"))
        box.addWidget(hint("Choose a folder with one sub-folder per class (for example normal/ and effusion/), or "
                           "a CSV file listing images and labels. You can also drop a folder here."))
        box.addWidget(self.source)
        box.addWidget(self.label_entry)
        box.addLayout(buttons)
        box.addWidget(body, 1)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        """Class and split tables beside the images where both fit the width, above them on a narrow screen
        (1024 px): the step then scrolls down, never sideways."""
        super().resizeEvent(event)
        needed = sum(self._body.widget(i).minimumSizeHint().width() for i in range(self._body.count())) + 40
        orientation = Qt.Orientation.Horizontal if event.size().width() >= needed else Qt.Orientation.Vertical
        if self._body.orientation() != orientation:
            self._body.setOrientation(orientation)

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
        labels = self._scanned_labels = project.labels.to_dict() if project.labels is not None else None
        self.scan_worker = Worker(tasks.scan_task, folder, csv, labels, name="scan")
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
        project, shape = self.session.project, lambda d: d and (d["layout"], d["classes"])
        now = project.labels.to_dict() if project is not None and project.labels is not None else None
        if self.scan_worker is not None and shape(now) != shape(self._scanned_labels):
            self.scan()  # labelling was set up (or its classes changed) while this scan ran

    def _on_scan(self, report: Any) -> None:
        self.report.show_report(report)
        self.split_panel.set_report(report)
        self.label_entry.show_scan(report)
        self._show_findings(report)
        if report is None:
            fill_table(self.classes, [])
            self.grid.set_groups({})
            return
        self._fill_classes(report)
        if report.is_multilabel:  # the table's rows and the sentences under it, without a scroll bar
            table = self.classes
            rows = table.horizontalHeader().height() + sum(table.rowHeight(r) for r in range(table.rowCount()))
            wanted = rows + 4 + self.findings_note.heightForWidth(max(self._left.width(), 300))
            self._left.setSizes([wanted, max(sum(self._left.sizes()) - wanted, 300)])
        self.grid.set_groups(tiles_for_samples(report))
        if report.unusable:
            self.tabs.setCurrentWidget(self.report)
        kinds = "findings" if report.is_multilabel else "classes"
        self.session.message.emit(f"Scan finished: {len(report.samples):,} images in {len(report.classes)} "
                                  f"{kinds}, {len(report.skipped):,} skipped.")
        if report.usable:
            self.refresh_split()

    def _show_findings(self, report: Any) -> None:
        """A multi-label set: the table is headed "Finding", the scan's sentences on the findings go under it."""
        multi = report is not None and report.is_multilabel
        self.classes.setHorizontalHeaderLabels(["Finding" if multi else "Class", "Images"])
        self.classes.setToolTip("The findings found and how many usable images show each (an image may show "
                                "several or none)" if multi else
                                "The classes found and how many usable images each has")
        self.findings_note.setText("\n".join(report.multilabel_lines()) if multi else "")
        self.findings_note.setVisible(multi)

    def _fill_classes(self, report: Any, reviewed: Any = None) -> None:
        """Images per class: the scan's, or with the review decisions applied (what training uses) and the
        scan's count beside a class they changed. A multi-label set: images per finding, then the images
        without any finding and all images."""
        shown = reviewed if reviewed is not None else report
        classes = list(dict.fromkeys([*shown.classes, *report.classes]))
        extra = [("All classes", len(shown.samples), len(report.samples))]
        if report.is_multilabel:
            none = [sum(not s.findings for s in r.samples) for r in (shown, report)]
            extra = [("No finding", *none), ("All images", len(shown.samples), len(report.samples))]
        rows = []
        for name, n, found in [(c, shown.counts.get(c, 0), report.counts.get(c, 0)) for c in classes] + extra:
            rows.append([name, n if n == found else f"{n}  (scan found {found}; your review changed it)"])
        fill_table(self.classes, rows)

    def open_image(self, path: str) -> None:
        """The viewer on a thumbnail's file, with its class, part and group from the scan and split."""
        open_viewer(self, path, facts_for_path(self.session.report, self.session.split, path))

    # --- splitting ----------------------------------------------------------------------------------
    def _split_settings(self) -> dict[str, Any]:
        s = self.session.project.settings
        return {"val_fraction": s.val_fraction, "test_fraction": s.test_fraction, "seed": s.seed,
                "group_by": s.group_by}

    def make_split(self, settings: dict[str, Any]) -> None:
        """A new split with ``settings`` (the panel's "Make split"), the review decisions applied."""
        report, project = self.session.report, self.session.project
        if report is None or not report.usable or (self.split_worker and self.split_worker.is_running()):
            return
        for key, value in settings.items():
            setattr(project.settings, key, value)
        self._start_split(settings, None)

    def refresh_split(self) -> None:
        """Divide the scan again as training will (``tasks.split_task``): after a scan or a review decision,
        by the current stored split (a new one when there is none)."""
        if self.session.project is None:
            return
        if self.split_worker is not None and self.split_worker.is_running():
            self._refresh_pending = True
            return
        stored = self.session.project.split if self.session.split is not None else None
        self._start_split(self._split_settings(), stored)

    def _start_split(self, settings: dict[str, Any], stored: dict[str, Any] | None) -> None:
        report, project = self.session.report, self.session.project
        if report is None or not report.usable or (self.split_worker and self.split_worker.is_running()):
            return
        review = project.review.to_dict() if len(project.review) else None
        self.split_worker = Worker(tasks.split_task, report, review, stored, name="split", **settings)
        self.split_worker.finished.connect(lambda result: self._on_split_made(result, stored is not None))
        self.split_worker.errored.connect(lambda failure: task_failed(self, "split", failure))
        self.split_panel.button.setEnabled(False)
        self.split_worker.ended.connect(self._on_split_ended)
        self.split_worker.start()

    def _on_split_ended(self) -> None:
        self.split_panel.button.setEnabled(True)
        if self._refresh_pending:
            self._refresh_pending = False
            self.refresh_split()

    def _on_split_made(self, result: tuple[Any, Any, bool], asked_stored: bool) -> None:
        divided, check, used = result  # (split.Divided, LeakageCheck, whether the stored split was used)
        self.session.set_split(divided.split, divided.stored)
        self.split_panel.show_split(divided.report, divided.split, check, divided.applied)
        if self.session.report is not None:
            self._fill_classes(self.session.report, divided.report)
        self._show_audit_crossings()
        if asked_stored and not used:
            self.session.message.emit("Some images had no part in the stored split (added, or no longer "
                                      "excluded): the split was made again.")

    def _show_audit_crossings(self) -> None:
        """The split's leakage line names the near-duplicate pairs the data-quality check found that still sit
        in two parts of this split (its own check covers identical files and pixels only)."""
        split = self.session.split
        parts = split.assignment if split is not None else {}
        crossing = sum(1 for a, b in self.quality.found if a in parts and b in parts and parts[a] != parts[b])
        self.split_panel.show_audit_crossings(crossing)

    def _on_split_restored(self, split: Any) -> None:
        self.split_panel.show_split(self.session.report, split, None)

    # --- project ------------------------------------------------------------------------------------
    def _on_project(self, project: Any) -> None:
        """Another project is open: a scan or split still running for the previous one is dropped (its result
        would land in this project), the scan report, classes, images and split panel are emptied."""
        drop_workers(self.scan_worker, self.split_worker)
        self.scan_worker = self.split_worker = None
        self._refresh_pending = False
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

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        """Back from the Label step: scan again when labels were given since the last scan."""
        super().showEvent(event)
        project = self.session.project
        labels = project.labels.to_dict() if project is not None and project.labels is not None else None
        if labels != self._scanned_labels and self.session.report is not None:
            self.scan()

    def shutdown(self) -> None:
        for worker in (self.scan_worker, self.split_worker):
            if worker is not None and worker.is_running():
                worker.stop()
                worker.wait()
        self.quality.shutdown()
        self.grid.shutdown()
