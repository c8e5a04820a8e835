"""The "Data:" line of the "Did transfer help?" window: the open project's images, or another folder of class
folders or CSV chosen here (scanned first, so an unusable choice is refused with one plain line).

Another data set's results go to ``<its parent folder>/tl-desktop transfer checks/transfer/<date-time>-<kind>``,
next to the images where the user looks, never into the hidden data folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QWidget

from tl_desktop.core.config import DataSource
from tl_desktop.core.errors import ProjectError
from tl_desktop.core.project import project_file as proj
from tl_desktop.ui.widgets.common import label
from tl_desktop.workers import Worker, tasks

CHECKS_FOLDER = "tl-desktop transfer checks"  # beside another data set: where its results go
PROJECT, FOLDER, CSV = "project", "folder", "csv"  # combo entries (the chosen data set's entry holds its path)


class DataChoice(QWidget):
    """Which images the window's tasks use; ``changed`` once another data set was scanned and chosen (or the
    project chosen again)."""

    changed = Signal()

    def __init__(self, project: proj.Project | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.other: DataSource | None = None
        self.other_path: Path | None = None  # the chosen folder or CSV file
        self.other_scan: dict[str, Any] = {}  # task and classes of its scan
        self.worker: Worker | None = None
        self._previous = 0
        self.combo = QComboBox(toolTip="The images the check, the comparison and the label-budget curve use")
        if project is not None:
            self.combo.addItem(f"Use the open project ({project.name})", PROJECT)
        self.combo.addItem("Choose another folder of class folders…", FOLDER)
        self.combo.addItem("Choose a CSV file listing images and labels…", CSV)
        self.combo.setCurrentIndex(0 if project is not None else -1)
        self.combo.activated.connect(self._activated)
        self.note = label("" if project is not None else "Choose the images to check.", "hint", wrap=True)
        self.note.setObjectName("transferDataNote")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo)
        layout.addWidget(self.note, 1)

    # --- what the tasks use -----------------------------------------------------------------------------
    def uses_project(self) -> bool:
        return self.combo.currentData() == PROJECT

    def is_scanning(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def data_source(self) -> DataSource:
        """The chosen images as the core takes them.

        Raises:
            ProjectError: nothing usable is chosen yet (the project's images, or another data set).
        """
        if self.uses_project() and self.project is not None:
            return self.project.data_source()
        if self.other is None:
            raise ProjectError("choose the images on the Data line first")
        return self.other

    def results_root(self) -> Path | None:
        """The folder whose ``transfer/`` holds the results of the chosen images (None: nothing chosen)."""
        if self.uses_project() and self.project is not None:
            return self.project.folder
        return self.other_path.parent / CHECKS_FOLDER if self.other_path is not None else None

    def scan_info(self) -> dict[str, Any]:
        """``task`` and ``classes`` of the chosen images' scan (empty when unknown)."""
        if self.uses_project() and self.project is not None:
            return self.project.scan or {}
        return self.other_scan

    def name(self) -> str:
        if self.uses_project() and self.project is not None:
            return self.project.name
        return self.other_path.name if self.other_path is not None else "no images chosen"

    # --- choosing ---------------------------------------------------------------------------------------
    def _activated(self, index: int) -> None:
        kind = self.combo.itemData(index)
        if kind == FOLDER:
            path = QFileDialog.getExistingDirectory(self, "Folder with one sub-folder of images per class")
        elif kind == CSV:
            path, _ = QFileDialog.getOpenFileName(self, "CSV listing images and labels", "", "CSV files (*.csv)")
        else:
            self._previous = index
            self.note.setText("" if kind == PROJECT else f"Images: {self.other_path}")
            self.changed.emit()
            return
        self.combo.setCurrentIndex(self._previous)  # until the scan says the choice is usable
        if path:
            self.choose(Path(path))

    def choose(self, path: Path) -> None:
        """Scan a folder of class folders or a CSV file (in a worker); use it when it is usable."""
        if self.is_scanning():
            return
        path = Path(path)
        folder, csv = (path.parent, path) if path.suffix.lower() == ".csv" else (path, None)
        self.note.setText(f"Looking at the images in {path}…")
        self.combo.setEnabled(False)
        self.worker = Worker(tasks.scan_task, str(folder), str(csv) if csv else None, None, name="transfer-scan")
        self.worker.finished.connect(lambda report: self._scanned(path, folder, csv, report))
        self.worker.errored.connect(lambda failure: self._refused(path, failure.message))
        self.worker.ended.connect(lambda: self.combo.setEnabled(True))
        self.worker.start()

    def _scanned(self, path: Path, folder: Path, csv: Path | None, report: Any) -> None:
        if report.unusable:
            self._refused(path, report.unusable)
            return
        self.other = DataSource(data=str(folder), csv=str(csv) if csv else None)
        self.other_path, self.other_scan = path, {"task": report.task, "classes": list(report.classes)}
        index = self.combo.findData(str(path))
        if index < 0:
            self.combo.insertItem(1 if self.project is not None else 0, f"Use {path}", str(path))
            for i in range(self.combo.count()):  # a single chosen data set is listed
                if self.combo.itemData(i) not in (PROJECT, FOLDER, CSV, str(path)):
                    self.combo.removeItem(i)
                    break
            index = self.combo.findData(str(path))
        self.combo.setCurrentIndex(index)
        self._previous = index
        what = "findings" if report.task == "multi-label" else "classes"
        self.note.setText(f"{len(report.samples):,} usable images, {len(report.classes)} {what}. Results go to "
                          f"{self.results_root()}.")
        self.changed.emit()

    def _refused(self, path: Path, why: str) -> None:
        self.note.setText(f"{path.name} cannot be used: {why[:1].lower()}{why[1:].rstrip('.')}.")

    def shutdown(self) -> None:
        if self.is_scanning():
            self.worker.stop()
            self.worker.wait()

