"""The Label step: label images one at a time (or many at once in a grid) while a quick model learns.

The view drives ``core.insight.active.LabellingLoop`` around the project's ``Labels`` (changed in place, saved
within ``SAVE_MS`` of every decision and on close). Everything slow runs in workers, never on the GUI thread:
the image features (``tasks.label_features_task``, once, when the step opens; cached by file content), the
probe's refit after every ``active.RETRAIN_EVERY`` labels (``label_fit_task``), the uncertainty order's k-means
(``label_order_task``; meanwhile the queue is topped up in file order) and the CSV export. The next images of
the queue are decoded ahead (``picture.Preloader``), so the next image is on screen as soon as a key is pressed.

Keys (also on the buttons): 1-9 a class, Enter accept the proposal, S or Space skip, N not sure, Ctrl+Z or
Backspace undo (a decision on several grid images is one step), G grid mode.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.events import Progress
from tl_desktop.ui.label.grid import GRID_IMAGES, LabelGrid
from tl_desktop.ui.label.keys import key_action
from tl_desktop.ui.label.panel import LabelPanel
from tl_desktop.ui.label.picture import LabelPicture, caption_for
from tl_desktop.ui.session import Session, drop_workers
from tl_desktop.ui.widgets.common import hint, title
from tl_desktop.ui.widgets.errors import show_error
from tl_desktop.ui.widgets.thumbnail_grid import Tile
from tl_desktop.workers import Worker, tasks

log = logging.getLogger(__name__)

SAVE_MS = 500  # a decision is in project.json at most this long after it was made
PRELOAD = 4  # images of the queue decoded ahead
ALL_DONE = "Every image is labelled or marked not sure. Go on to Train, or export the labels as a CSV."

SAVED_HINT = "The labels are saved in the project as you go; your files are not moved."
ONE_IMAGE_HINT = f"Press the key of the class (1–9) for the image shown. {SAVED_HINT}"


class LabelView(QWidget):
    """The Label step (shown while the project has labels given in the app)."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.loop: Any = None  # active.LabellingLoop
        self.samples: dict[str, Any] = {}  # relative path -> scan Sample (of the images to label)
        self.root: Path | None = None
        self.current: str | None = None  # the image on screen (single mode)
        self.groups: list[int] = []  # undo steps: how many decisions each key press made
        self.planned: list[str] = []  # the last uncertainty order a worker chose
        self.features_worker: Worker | None = None
        self.fit_worker: Worker | None = None
        self.order_worker: Worker | None = None
        self.export_worker: Worker | None = None
        self._order_again = False
        self._save_timer = QTimer(self, singleShot=True, interval=SAVE_MS)
        self._save_timer.timeout.connect(self.session.save)
        self._build()
        session.project_changed.connect(self._on_project)
        session.scan_changed.connect(self._on_scan)
        session.labels_changed.connect(self._on_labels)

    # --- layout -------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.picture = LabelPicture()
        self.grid = LabelGrid()
        self.panel = LabelPanel()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.picture)
        self.stack.addWidget(self.grid)
        self.grid_button = QPushButton("Grid  (G)", checkable=True, focusPolicy=Qt.FocusPolicy.NoFocus,
                                       toolTip="Show the next images as thumbnails and label many at once (G)")
        self.grid_button.toggled.connect(self.set_grid)
        self.classes_button = QPushButton("Classes…", focusPolicy=Qt.FocusPolicy.NoFocus,
                                          toolTip="Add, rename or remove classes")
        self.classes_button.clicked.connect(self.edit_classes)
        self.export_button = QPushButton("Export labels as CSV…", focusPolicy=Qt.FocusPolicy.NoFocus,
                                         toolTip="Write every labelled image as a path,label CSV file")
        self.export_button.clicked.connect(lambda: self.export_csv())
        p = self.panel
        p.class_clicked.connect(self.label_as)
        p.accept_clicked.connect(self.accept)
        p.skip_clicked.connect(self.skip)
        p.not_sure_clicked.connect(self.mark_not_sure)
        p.undo_clicked.connect(self.undo)
        p.order_chosen.connect(self.set_order)
        for widget in (self.picture.canvas, self.grid.view, self):
            widget.installEventFilter(self)
        self.grid.view.selectionModel().selectionChanged.connect(lambda *_: self.loop and self._refresh_panel())
        top = QHBoxLayout()
        top.addWidget(title("Label your images"), 1)
        for button in (self.grid_button, self.classes_button, self.export_button):
            top.addWidget(button)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(self.stack)
        body.addWidget(self.panel)
        body.setStretchFactor(0, 1)
        body.setSizes([700, 330])
        self.panel.setMinimumWidth(300)
        box = QVBoxLayout(self)
        box.addLayout(top)
        self.page_hint = hint(ONE_IMAGE_HINT)  # the grid says what to press there: this line follows the view
        box.addWidget(self.page_hint)
        box.addWidget(body, 1)

    # --- keys ---------------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.KeyPress and self.loop is not None:
            action = key_action(event)
            if action is not None:
                self._act(*action)
                return True
        return super().eventFilter(watched, event)

    def _act(self, action: str, index: int) -> None:
        {"class": lambda: self.label_as(index), "accept": self.accept, "skip": self.skip,
         "not_sure": self.mark_not_sure, "undo": self.undo,
         "grid": lambda: self.grid_button.setChecked(not self.grid_button.isChecked())}[action]()

    # --- the images to label ------------------------------------------------------------------------
    def _on_project(self, _project: Any) -> None:
        self._stop_workers()
        self.loop, self.samples, self.root, self.current = None, {}, None, None
        self.groups, self.planned = [], []
        self.picture.preloader.clear()
        self._show_empty("Looking at the images… (the Data step scans them)")

    def _on_scan(self, report: Any) -> None:
        project = self.session.project
        if report is None or project is None or project.labels is None:
            return
        labels = project.labels
        samples = {s.path: s for s in report.samples if s.path in labels.assigned}
        samples.update({s.path: s for s in report.unlabelled})
        self.samples, self.root = samples, Path(report.root)
        paths = sorted(samples)
        if self.loop is None or set(self.loop.paths) != set(paths):
            from tl_desktop.core.insight.active import LabellingLoop

            order = self.loop.order if self.loop is not None else "uncertainty"
            drop_workers(self.features_worker, self.fit_worker, self.order_worker)
            self.features_worker = self.fit_worker = self.order_worker = None
            self.loop = LabellingLoop(paths, labels, order=order)
            self.loop.background = True  # k-means runs in a worker (label_order_task)
            self.groups, self.planned, self.current = [], [], None
            self.panel.set_order(order)
        self.loop.labels = labels
        if self.isVisible():
            self._start_features()
        self._after_change()

    def _on_labels(self) -> None:
        """The classes changed (or labelling was set up): the buttons follow; a new set-up waits for the scan."""
        project = self.session.project
        if self.loop is not None and project is not None and project.labels is not None:
            self.loop.labels = project.labels
            self.loop.undo_steps.clear()
            self.groups = []
            self._after_change()

    def abspath(self, rel: str) -> str:
        return str(Path(self.root or ".", *rel.split("/")))

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self._start_features()
        (self.grid.view if self.grid_button.isChecked() else self.picture.canvas).setFocus()

    def hideEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        self.flush()
        super().hideEvent(event)

    # --- decisions ----------------------------------------------------------------------------------
    def targets(self) -> list[str]:
        """The images a key press decides: the one shown, or the grid's selected ones."""
        if self.loop is None:
            return []
        if self.grid_button.isChecked():
            return [p for p in self.grid.selected_paths() if self.loop.is_open(p)]
        return [self.current] if self.current is not None else []

    def label_as(self, index: int) -> None:
        if self.loop is None or index >= len(self.loop.labels.classes):
            return
        name = self.loop.labels.classes[index]
        self._decide(self.targets(), lambda path: self.loop.answer(path, name))

    def accept(self) -> None:
        """Give each target the proposed label (those without a proposal are left)."""
        if self.loop is None:
            return
        proposed = {p: s[0] for p in self.targets() if (s := self.loop.suggestion(p)) is not None}
        self._decide(list(proposed), lambda path: self.loop.answer(path, proposed[path]))

    def mark_not_sure(self) -> None:
        self._decide(self.targets(), lambda path: self.loop.not_sure(path))

    def skip(self) -> None:
        targets = self.targets()
        for path in targets:
            self.loop.skip(path)
        if targets:
            self.current = None
            self._after_change(grid_too=True)

    def _decide(self, targets: list[str], act) -> None:
        if not targets:
            if self.grid_button.isChecked() and self.loop is not None:
                self.session.message.emit("Select the images first (click, Ctrl+click, Shift+click or Ctrl+A).")
            return
        for path in targets:
            act(path)
        self.groups.append(len(targets))
        self.current = None
        self._save_soon()
        self._after_change(grid_too=True)

    def undo(self) -> None:
        if self.loop is None or not self.groups:
            self.session.message.emit("Nothing to undo.")
            return
        last = None
        for _ in range(self.groups.pop()):
            last = self.loop.undo() or last
        self.current = last
        self._save_soon()
        self._after_change(grid_too=True)
        if self.grid_button.isChecked() and last is not None:
            self.grid.select([last])

    def _save_soon(self) -> None:
        if not self._save_timer.isActive():
            self._save_timer.start()

    def flush(self) -> None:
        """Save now what is waiting to be saved."""
        if self._save_timer.isActive():
            self.session.save()

    # --- showing ------------------------------------------------------------------------------------
    def _after_change(self, grid_too: bool = False) -> None:
        if self.loop is None:
            return
        if self.current is None or not self.loop.is_open(self.current):
            self.current = self.loop.current()
        upcoming = self.loop.queue(GRID_IMAGES if self.grid_button.isChecked() else PRELOAD + 1)
        if self.grid_button.isChecked():
            if grid_too or not self.grid.paths:
                self._fill_grid(upcoming)
        elif self.current is None:
            self.picture.show_path(None, ALL_DONE)
        else:
            self.picture.show_path(self.abspath(self.current), caption_for(self.samples.get(self.current)))
            self.picture.preloader.want([self.abspath(p) for p in upcoming if p != self.current][:PRELOAD])
        self._refresh_panel()
        self._maybe_fit()
        self._maybe_order()

    def _fill_grid(self, paths: list[str]) -> None:
        tiles = []
        for path in paths:
            proposal = self.loop.suggestion(path)
            caption = Path(path).name + (f"\n→ {proposal[0]} {100 * proposal[1]:.0f} %" if proposal else "")
            tiles.append((path, Tile(self.abspath(path), caption, caption_for(self.samples.get(path)))))
        self.grid.set_tiles(tiles)

    def _refresh_panel(self) -> None:
        loop = self.loop
        progress = loop.progress()
        proposal = loop.suggestion(self.current) if self.current and not self.grid_button.isChecked() else None
        self.panel.set_classes(loop.labels.classes, progress["per_class"], proposal[0] if proposal else None)
        self.panel.set_proposal(proposal, self._why_no_proposal())
        grid = self.grid_button.isChecked()
        self.panel.classes_box.setTitle("Label the selected images as" if grid else "Label this image as")
        if grid:
            self.panel.accept.setEnabled(any(loop.suggestion(p) is not None for p in self.targets()))
        self.panel.set_progress(progress)
        self.panel.set_estimate(loop.fitted.estimate if loop.fitted is not None else None)
        self.panel.set_enabled(bool(self.targets()) or self.grid_button.isChecked())

    def _why_no_proposal(self) -> str:
        from tl_desktop.core.insight.active import MIN_PER_CLASS

        if self.grid_button.isChecked():
            n = len(self.targets())
            return (f"{n} image{'s' if n != 1 else ''} selected: press a class key (Enter: the proposals under "
                    "the images)" if n else "Select images (click, Ctrl+click, Shift+click, Ctrl+A).")
        if self.loop.vectors is None:
            return "No proposal yet: the model is still reading the images."
        if sum(n >= MIN_PER_CLASS for n in self.loop.progress()["per_class"].values()) >= 2:
            return "No proposal yet: the quick model is learning from your labels…"  # the refit is on its way
        return f"No proposal yet: label at least {MIN_PER_CLASS} images of two classes."

    def _show_empty(self, text: str) -> None:
        self.picture.show_path(None, text)
        self.grid.set_tiles([])

    def set_grid(self, on: bool) -> None:
        self.stack.setCurrentWidget(self.grid if on else self.picture)
        self.page_hint.setText(SAVED_HINT if on else ONE_IMAGE_HINT)
        if self.loop is not None:
            self._after_change(grid_too=True)
        (self.grid.view if on else self.picture.canvas).setFocus()

    def set_order(self, order: str) -> None:
        if self.loop is not None:
            self.loop.set_order(order)
            self.planned = []
            self._maybe_order(force=True)
            self._after_change(grid_too=True)

    # --- workers ------------------------------------------------------------------------------------
    def _start_features(self) -> None:
        """Compute the image features once (when the step is open): until then, file order, no proposals."""
        loop = self.loop
        if loop is None or loop.vectors is not None or self.features_worker is not None or not loop.paths:
            return
        project = self.session.project
        paths = [self.abspath(p) for p in loop.paths]
        shas = [self.samples[p].sha256 for p in loop.paths]
        worker = Worker(tasks.label_features_task, paths, shas, project.settings.image_size, name="label features")
        worker.progressed.connect(self._on_features_progress)
        worker.finished.connect(lambda x, w=worker: self._on_features(w, x))
        worker.errored.connect(lambda f: self.panel.set_features(f"Proposals are off: {f.message}"))
        self.panel.set_features("Reading the images so that the model can propose labels…", 0, len(paths))
        self.features_worker = worker
        worker.start()

    def _on_features_progress(self, event: Any) -> None:
        if isinstance(event, Progress) and event.total:
            self.panel.set_features(f"Reading the images so that the model can propose labels: {event.done:,} of "
                                    f"{event.total:,}", event.done, event.total)

    def _on_features(self, worker: Worker, x: Any) -> None:
        if worker is not self.features_worker or self.loop is None or len(x) != len(self.loop.paths):
            return
        self.loop.vectors = x
        self.panel.set_features("")
        self._maybe_order(force=True)
        self._after_change()

    def _maybe_fit(self) -> None:
        if self.loop is None or not self.loop.wants_fit() or (self.fit_worker and self.fit_worker.is_running()):
            return
        worker = Worker(tasks.label_fit_task, *self.loop.fit_inputs(), name="label probe")
        worker.finished.connect(lambda fitted, w=worker: self._on_fitted(w, fitted))
        worker.errored.connect(lambda f: self.session.message.emit(f"The quick model could not be fitted: "
                                                                   f"{f.message}"))
        self.fit_worker = worker
        worker.start()

    def _on_fitted(self, worker: Worker, fitted: Any) -> None:
        if worker is not self.fit_worker or self.loop is None:
            return
        self.loop.take(fitted)
        self.planned = []
        self._maybe_order(force=True)
        self._after_change(grid_too=not self.grid.selected_paths())

    def _maybe_order(self, force: bool = False) -> None:
        """Have a worker choose the next images in the uncertainty order when the chosen ones run short."""
        loop = self.loop
        if loop is None or loop.order != "uncertainty" or loop.vectors is None:
            return
        left = [p for p in self.planned if loop.is_open(p) and p not in loop.skipped]
        if not force and len(left) > PRELOAD + 1:
            return
        if self.order_worker is not None and self.order_worker.is_running():
            self._order_again = True
            return
        inputs = loop.order_inputs()
        if inputs is None:
            return
        worker = Worker(tasks.label_order_task, *inputs, name="label order")
        worker.finished.connect(lambda rows, w=worker: self._on_order(w, rows))
        worker.ended.connect(self._on_order_ended)
        self.order_worker = worker
        self._order_again = False
        worker.start()

    def _on_order(self, worker: Worker, rows: list[int]) -> None:
        if worker is not self.order_worker or self.loop is None or self.loop.order != "uncertainty":
            return
        self.loop.use_order(rows)
        self.planned = [self.loop.paths[r] for r in rows]
        self._after_change(grid_too=not self.grid.paths)

    def _on_order_ended(self) -> None:
        if self._order_again:
            self._maybe_order(force=True)

    def _stop_workers(self) -> None:
        drop_workers(self.features_worker, self.fit_worker, self.order_worker, self.export_worker)
        self.features_worker = self.fit_worker = self.order_worker = self.export_worker = None

    # --- classes and export -------------------------------------------------------------------------
    def edit_classes(self) -> None:
        from tl_desktop.ui.label.classes import ClassesDialog

        project = self.session.project
        if project is None or project.labels is None:
            return
        dialog = ClassesDialog(project.labels, self)
        if dialog.exec() == ClassesDialog.DialogCode.Accepted:
            self.session.set_labels(dialog.labels)

    def export_csv(self, target: str | None = None) -> None:
        """Write every labelled image as a ``path,label`` CSV (asks where unless ``target`` is given)."""
        project = self.session.project
        if project is None or project.labels is None or (self.export_worker and self.export_worker.is_running()):
            return
        if target is None:
            target, _ = QFileDialog.getSaveFileName(self, "Export labels as CSV",
                                                    str(project.folder / "labels.csv"), "CSV files (*.csv)")
            if not target:
                return
        self.flush()
        source = project.data_source()
        worker = Worker(tasks.export_labels_task, source.data, source.csv, project.labels.to_dict(), target,
                        name="export labels")
        worker.finished.connect(lambda rows: self.session.message.emit(f"Saved {rows:,} labels to {target}"))
        worker.errored.connect(lambda f: show_error(self, "Exporting the labels failed", f.message,
                                                    "Choose another file or folder.", f.details))
        self.export_worker = worker
        worker.start()

    def shutdown(self) -> None:
        """Save what waits to be saved; stop the workers and silence them (nothing they deliver lands)."""
        self.flush()
        for worker in (self.features_worker, self.fit_worker, self.order_worker, self.export_worker):
            if worker is not None and worker.is_running():
                worker.blockSignals(True)
                worker.stop()
                worker.wait()
        self.loop = None
        self.picture.shutdown()
        self.grid.shutdown()
