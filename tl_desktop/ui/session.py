"""The open project as the views share it: the project file, the current scan and split, the selected run.

Views change the project through this object; it autosaves (debounced, atomic) and tells every view.
``project_changed`` is the one signal of a project switch (new, open, sample): every step resets on it, so
nothing of the previous project (figures, logs, models, answers) stays on screen; a step's workers of the
previous project are dropped with ``drop_workers``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from tl_desktop.core.data.review import Review
from tl_desktop.core.project import project_file as proj
from tl_desktop.ui.settings import add_recent_project, default_device

if TYPE_CHECKING:
    from tl_desktop.workers import Worker

log = logging.getLogger(__name__)

AUTOSAVE_MS = 400


def drop_workers(*workers: Worker | None) -> None:
    """Another project is open: ask the running ``workers`` to stop and silence them, so nothing they still
    deliver reaches the new project's views. A dropped worker keeps itself alive until its thread ends."""
    for worker in workers:
        if worker is not None and worker.is_running():
            worker.stop()
            worker.blockSignals(True)


class Session(QObject):
    """Holds at most one open project; emits when it, its scan, split or runs change."""

    project_changed = Signal(object)  # Project | None: every step resets (a project switch)
    scan_changed = Signal(object)  # ScanReport | None
    split_changed = Signal(object)  # Split | None
    review_changed = Signal()  # the project's review decisions changed (saved already)
    labels_changed = Signal()  # labelling in the app was set up or its classes changed (saved already)
    labelling_requested = Signal()  # the user asked to label images (the main window opens the Label step)
    runs_changed = Signal()
    run_selected = Signal(str)  # absolute run folder
    saved = Signal(str)  # path of project.json
    message = Signal(str)  # for the status bar

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project: proj.Project | None = None
        self.report: Any = None  # data.ScanReport of the current source
        self.split: Any = None  # data.Split
        self.run_dir: Path | None = None
        self._autosave = QTimer(self, singleShot=True, interval=AUTOSAVE_MS)
        self._autosave.timeout.connect(self.save)

    # --- opening and saving -------------------------------------------------------------------------
    def open(self, project: proj.Project) -> None:
        """Make ``project`` the open one: the previous one is saved, every step resets (``project_changed``),
        then its latest run is selected. A project of an older version gets its visible ``runs/``,
        ``exports/`` and ``reports/`` folders (not on read-only media)."""
        self.save()
        project.ensure_folders()
        self.project, self.report, self.split, self.run_dir = project, None, None, None
        add_recent_project(project.folder)
        log.info("opened project %s", project.folder)
        self.project_changed.emit(project)
        if project.runs:
            self.select_run(project.run_path(project.runs[-1]))

    def open_path(self, path: str | Path) -> proj.Project:
        """Open a project folder or project.json. Raises ProjectError with a readable line."""
        project = proj.load(path)
        self.open(project)
        return project

    def create(self, folder: str | Path, name: str | None = None) -> proj.Project:
        """Create a project and open it; its Train step starts with the default device of Settings."""
        project = proj.create(folder, name)
        if project.settings.device != default_device():
            project.settings.device = default_device()
            proj.save(project)
        self.open(project)
        return project

    def mark_dirty(self) -> None:
        """Something changed: save shortly (several quick changes make one write)."""
        if self.project is not None:
            self._autosave.start()

    def save(self) -> None:
        self._autosave.stop()
        if self.project is None:
            return
        try:
            file = proj.save(self.project)
        except OSError as exc:
            log.exception("saving the project failed")
            self.message.emit(f"Could not save the project: {exc}")
            return
        self.saved.emit(str(file))

    # --- data ---------------------------------------------------------------------------------------
    def set_scan(self, report: Any) -> None:
        self.report = report
        if self.project is not None and report is not None:
            self.project.scan = proj.scan_summary(report)
            self._restore_split(report)
            self.mark_dirty()
        self.scan_changed.emit(report)

    def _restore_split(self, report: Any) -> None:
        """Reuse the stored split when it still covers exactly the scanned files (those the review excluded
        may be missing from it)."""
        stored = self.project.split if self.project else None
        if not stored:
            return
        from tl_desktop.core.data.split import Split

        split = Split.from_dict(stored)
        paths = {s.path for s in report.samples}
        if paths - set(self.project.review.excluded) <= set(split.assignment) <= paths:
            self.split = split
            self.split_changed.emit(split)
        else:
            self.message.emit("The images changed since the split was made: please make the split again.")
            self.split = None
            self.split_changed.emit(None)

    def set_split(self, split: Any, stored: Any = None) -> None:
        """The current split (``split.Split``); the project keeps ``stored`` when given (``Divided.stored``:
        the stored split with its excluded files), else ``split``."""
        self.split = split
        if self.project is not None:
            kept = stored if stored is not None else split
            self.project.split = kept.to_dict() if kept is not None else None
            self.mark_dirty()
        self.split_changed.emit(split)

    def change_review(self, change: Callable[[Review], None]) -> bool:
        """Apply one decision to the project's review (``change(review)``), save the project at once and tell
        the views. A refused decision (DataError: a bad path or class name) changes nothing and is shown in
        the status bar; returns whether it was applied."""
        if self.project is None:
            return False
        from tl_desktop.core.errors import DataError

        before = Review.from_dict(self.project.review.to_dict())
        try:
            change(self.project.review)
        except DataError as exc:
            self.project.review = before
            self.message.emit(f"Not recorded: {exc}")
            return False
        self.save()
        self.review_changed.emit()
        return True

    def set_labels(self, labels: Any) -> None:
        """Set up labelling in the app, or change its classes (``data.labels.Labels``; None: no labelling):
        saved at once, then the views are told. Single decisions are saved with ``mark_dirty``."""
        if self.project is None:
            return
        self.project.labels = labels
        self.save()
        self.labels_changed.emit()

    # --- runs ---------------------------------------------------------------------------------------
    def record_run(self, run_dir: str | Path, **summary: Any) -> None:
        if self.project is None:
            return
        self.project.add_run(run_dir, **summary)
        self.save()
        self.runs_changed.emit()

    def reload_runs(self) -> None:
        """Take the run list from project.json on disk (a core function added a run there, e.g. an import)."""
        if self.project is None:
            return
        self.project.runs = proj.load(self.project.folder).runs
        self.runs_changed.emit()

    def select_run(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_selected.emit(str(self.run_dir))
