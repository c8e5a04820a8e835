"""Step 3, Train: settings, Start/Stop, live curves, progress with ETA, a log, and the runs of the project.

The run list (``runs_panel``) renames, deletes and compares runs; selecting a run shows its curves, its
settings and its epochs (``run_details``). When a run ends the step stays on screen with its final curves and
offers "See the evaluation": the user reads where the curves ended before going on, and goes on when she
chooses (``evaluation_requested``; the window switches to Evaluate only then).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core import runs
from tl_desktop.core.errors import RunError
from tl_desktop.core.events import BatchEnded, EpochEnded, FitEnded, FitStarted, Notice, Progress
from tl_desktop.core.training.strategies import strategy_label
from tl_desktop.ui.server_job import ServerJobs
from tl_desktop.ui.session import Session
from tl_desktop.ui.train.run_details import RunDetails
from tl_desktop.ui.train.runs_panel import RunsPanel
from tl_desktop.ui.train.settings import TrainSettingsForm
from tl_desktop.ui.train.words import progress_format
from tl_desktop.ui.widgets.common import ElidedLabel, duration, hint, icon, percent, title
from tl_desktop.ui.widgets.errors import show_error, task_failed
from tl_desktop.ui.widgets.plots import TrainingPlots
from tl_desktop.workers import Failure, Worker, tasks

log = logging.getLogger(__name__)

STATUS_MS = 250  # progress text refresh while training


class TrainView(QWidget):
    run_finished = Signal(str)  # a run completed (not cancelled): its folder
    run_ended = Signal()  # any end: finished, cancelled or failed
    evaluation_requested = Signal()  # "See the evaluation": the user goes on to step 4

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.worker: Worker | None = None
        self._training_dir: Path | None = None  # the run folder the worker writes
        self._fit: FitStarted | None = None
        self._multi = False  # the open run is multi-label: its accuracy is the share of right finding decisions
        self.form = TrainSettingsForm()
        self.form.changed.connect(self._store_settings)
        self.start_button = QPushButton(icon("start"), "Start training", toolTip="Train a model (Ctrl+Return)")
        self.start_button.setProperty("role", "primary")
        self.start_button.setShortcut("Ctrl+Return")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton(icon("stop"), "Stop", enabled=False, toolTip=(
            "Stop after the current step (Esc). The epochs finished so far are kept and the run can be continued."))
        self.stop_button.setShortcut("Esc")
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton("Continue run", toolTip="Continue the selected stopped run from its last "
                                                                 "finished epoch")
        self.resume_button.clicked.connect(self.resume)
        self.further_button = QPushButton("Continue with current images", toolTip=(
            "Start a new run from the selected finished run's model with the images and classes of step 1 as "
            "they are now (new images, new classes). The earlier run is kept, its test images stay test "
            "images, and the result says how much it forgot."))
        self.further_button.clicked.connect(self.train_further)
        self.server = ServerJobs(session, self)
        self.server.imported.connect(self.show_run)
        self.server_button = QPushButton("Train on a server…", toolTip=(
            "Write this project's training as a job folder for a GPU server or cluster (PyTorch torchrun)"))
        self.server_button.clicked.connect(self.server.create_job)
        self.import_button = QPushButton("Import server run…", toolTip=(
            "Bring a finished server job back: its run appears here like a local one"))
        self.import_button.clicked.connect(self.server.choose_job)
        self.progress = QProgressBar(toolTip="Progress of the whole run", textVisible=True)
        self.status = ElidedLabel("Not started.")  # cut with "…", whole in its tooltip
        self.status.setMinimumWidth(100)  # long texts are cut, never re-layout the plots
        self._last_batch: BatchEnded | None = None
        self._status_timer = QTimer(self, singleShot=True, interval=STATUS_MS)
        self._status_timer.timeout.connect(self._show_batch_status)
        self.evaluation_button = QPushButton(icon("evaluate"), "See the evaluation", toolTip=(
            "Go to step 4: this run's figures on its test images, the confusion matrix and the mistakes"))
        self.evaluation_button.setProperty("role", "primary")
        self.evaluation_button.clicked.connect(self.evaluation_requested)
        self.evaluation_button.hide()
        self.plots = TrainingPlots()
        self.log_pane = QPlainTextEdit(readOnly=True, objectName="logPane", maximumBlockCount=5000,
                                       toolTip="What happened during training, step by step")
        self.details = RunDetails(self.log_pane)
        self.runs_panel = RunsPanel(session, self.training_dir)
        self.history = self.runs_panel.list
        self.runs_panel.current_changed.connect(self._on_history_selected)
        self._arrange()
        session.project_changed.connect(self._on_project)
        session.runs_changed.connect(self._fill_history)

    def _arrange(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        left = QVBoxLayout()
        left.addWidget(self.form)
        left.addLayout(buttons)
        resume_row = QHBoxLayout()
        resume_row.addWidget(self.resume_button)
        resume_row.addWidget(self.further_button)
        self.runs_panel.add_row(resume_row)
        history_buttons = QHBoxLayout()
        history_buttons.addWidget(self.server_button)
        history_buttons.addWidget(self.import_button)
        self.runs_panel.add_row(history_buttons)
        left.addWidget(self.runs_panel, 1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        right = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.progress)
        status_row = QHBoxLayout()
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.evaluation_button)
        top_layout.addLayout(status_row)
        top_layout.addWidget(self.plots, 1)
        right.addWidget(top)
        right.addWidget(self.details)
        right.setSizes([520, 160])
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left_widget)
        body.addWidget(right)
        body.setSizes([360, 760])
        box = QVBoxLayout(self)
        box.addWidget(title("3. Train"))
        box.addWidget(hint("Keep the defaults for a first try. You can keep working in the other steps while a "
                           "model trains; every run is kept and can be reopened."))
        box.addWidget(body, 1)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self.form.query_devices()  # imports torch in a worker the first time the step is shown

    # --- project ------------------------------------------------------------------------------------
    def _on_project(self, project: Any) -> None:
        self.reset()
        if project is not None:
            self.form.load(project.settings)
        self._fill_history()
        if project is not None and project.runs:
            self.status.setText("Select a run to see its curves, or start training.")

    def reset(self) -> None:
        """Another project is open: no curve, log line, progress or status of the previous one stays."""
        self._status_timer.stop()
        self._last_batch, self._fit = None, None
        self.plots.set_history([])
        self._set_task(None)
        self.log_pane.clear()
        self.details.clear()
        self.evaluation_button.hide()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%p %")
        self.status.setText("Not started.")

    def _store_settings(self) -> None:
        if self.session.project is not None:
            try:
                self.form.store(self.session.project.settings)
            except ValueError:
                return
            self.session.mark_dirty()

    def _fill_history(self) -> None:
        self.runs_panel.fill()
        self._update_buttons()

    def _on_history_selected(self, item: QListWidgetItem | None) -> None:
        if item is None or self.is_training():
            return
        run_dir = item.data(Qt.ItemDataRole.UserRole)
        self._show_curves(Path(run_dir))
        self.details.show_run(Path(run_dir))
        state = runs.read_status(Path(run_dir))
        self.status.setText(f"{self.runs_panel.name_of(run_dir)}: {state['state']}. {state.get('message', '')}")
        self.evaluation_button.setVisible(state["state"] == "finished")
        self.session.select_run(run_dir)
        self._update_buttons()

    def _show_curves(self, run_dir: Path, epochs_done: int | None = None) -> None:
        """The run's stored epochs (up to ``epochs_done``, the epochs a resume continues after) and, for a run
        continued from an earlier one, that run's curve before them."""
        rows = runs.read_history(run_dir)
        self._set_task(run_dir)
        if epochs_done is not None:
            rows = [row for row in rows if row["epoch"] <= epochs_done]
        self.plots.set_history(rows, runs.earlier_history(run_dir))

    def _set_task(self, run_dir: Path | None) -> None:
        """The plots' and log's words follow the open run's task (a multi-label run: finding decisions)."""
        try:
            self._multi = run_dir is not None and runs.load_config(run_dir).task == "multi-label"
        except RunError:  # no readable config.json yet (a run being created): single-label words
            self._multi = False
        self.plots.set_multilabel(self._multi)

    def show_run(self, run_dir: str) -> None:
        """Select a run in the history (its curves, evaluation and export follow)."""
        self.runs_panel.select(run_dir)

    # --- start / stop -------------------------------------------------------------------------------
    def is_training(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def training_dir(self) -> Path | None:
        """The run folder being trained now, if any (the run list refuses to delete it)."""
        return self._training_dir if self.is_training() else None

    def start(self) -> None:
        project = self.session.project
        if project is None or self.is_training():
            return
        if self.session.split is None:
            show_error(self, "The images are not ready", "There is no split into training, validation and test "
                       "images yet.", "Go to step 1 (Data), wait for the scan to finish and press “Make split”.")
            return
        self._store_settings()
        run_dir = project.new_run_dir(project.settings.model)
        config = project.train_config(run_dir)
        self._launch(Worker(tasks.train_task, config, name="train"), f"Starting a new run in {run_dir}", run_dir)

    def train_further(self) -> None:
        """A new run that starts from the selected finished run (core: TrainConfig.init_from)."""
        item, project = self.history.currentItem(), self.session.project
        if item is None or project is None or self.is_training():
            return
        if self.session.split is None:
            show_error(self, "The images are not ready", "There is no split of the current images yet.",
                       "Go to step 1 (Data), scan the images and press “Make split”.")
            return
        earlier = Path(item.data(Qt.ItemDataRole.UserRole))
        self._store_settings()
        model = runs.load_config(earlier).model  # the network must be the earlier run's
        run_dir = project.new_run_dir(f"{model}-continued")
        config = replace(project.train_config(run_dir), model=model, init_from=str(earlier))
        self._launch(Worker(tasks.train_task, config, name="train"),
                     f"Continuing from {earlier.name} with the current images in {run_dir}", run_dir)
        self.plots.set_history([], (earlier.name, runs.read_history(earlier)))  # until the new run starts

    def resume(self) -> None:
        item = self.history.currentItem()
        if item is not None and not self.is_training():
            run_dir = item.data(Qt.ItemDataRole.UserRole)
            self._launch(Worker(tasks.resume_task, run_dir, name="train"), f"Continuing {run_dir}", Path(run_dir))
            self._show_curves(Path(run_dir))  # the epochs so far stay on screen while the model loads

    def _launch(self, worker: Worker, message: str, run_dir: Path) -> None:
        self.worker, self._training_dir = worker, Path(run_dir)
        self.evaluation_button.hide()
        worker.progressed.connect(self._on_event)
        worker.finished.connect(self._on_finished)
        worker.errored.connect(self._on_errored)
        worker.aborted.connect(lambda: self._log("Training stopped by the user."))
        worker.ended.connect(self._on_ended)
        self.plots.reset()
        self._fit = None
        self.progress.setRange(0, 0)
        self.status.setText("Preparing: loading the model and reading the images…")
        self._log(message)
        worker.start()
        self._update_buttons()

    def stop(self) -> None:
        if self.is_training():
            self.worker.stop()
            self.stop_button.setEnabled(False)
            self.status.setText("Stopping after the current step…")

    def _update_buttons(self) -> None:
        training = self.is_training()
        self.start_button.setEnabled(not training and self.session.project is not None)
        self.server_button.setEnabled(self.session.project is not None)
        self.import_button.setEnabled(self.session.project is not None)
        self.stop_button.setEnabled(training)
        item = self.history.currentItem()
        stopped = item is not None and runs.read_status(Path(item.data(Qt.ItemDataRole.UserRole)))["state"] in (
            "cancelled", "failed", "running")
        self.resume_button.setEnabled(not training and stopped)
        finished = item is not None and runs.read_status(Path(item.data(Qt.ItemDataRole.UserRole)))["state"] == \
            "finished"
        self.further_button.setEnabled(not training and finished)

    # --- events from the engine (GUI thread) --------------------------------------------------------
    def _on_event(self, event: Any) -> None:
        if isinstance(event, BatchEnded):
            self._on_batch(event)
        elif isinstance(event, EpochEnded):
            self._on_epoch(event)
        elif isinstance(event, FitStarted):
            self._on_fit_started(event)
        elif isinstance(event, Progress):
            self.progress.setRange(0, max(event.total, 1))
            self.progress.setValue(event.done)
            self.progress.setFormat(progress_format(event.phase, event.eta_s, event.done, event.total))
        elif isinstance(event, Notice):
            self._log(f"Note: {event.message}")
            self.session.message.emit(event.message)
        elif isinstance(event, FitEnded) and not event.cancelled:
            self._log(f"Finished. Best epoch: {event.best_epoch}.")

    def _on_fit_started(self, event: FitStarted) -> None:
        self._fit = event
        self._show_curves(Path(event.run_dir), event.start_epoch)  # a resumed run keeps its earlier epochs
        self.session.record_run(event.run_dir, model=self.session.project.settings.model, strategy=event.strategy)
        self._started_at = time.monotonic()
        self.progress.setRange(0, event.epochs * max(event.steps_per_epoch, 1))
        self.progress.setValue(event.start_epoch * event.steps_per_epoch)
        self.progress.setFormat("%p %")
        self._log(f"Training: {strategy_label(event.strategy)}, on {event.device}, {event.epochs} epochs of "
                  f"{event.steps_per_epoch} steps, batch size {event.batch_size}.")

    def _on_batch(self, event: BatchEnded) -> None:
        steps = max(self._fit.steps_per_epoch, 1) if self._fit else 1
        self.plots.add_batch(event.global_step / steps, event.loss)
        self._last_batch = event  # shown by the status timer, a few times a second at most
        if not self._status_timer.isActive():
            self._status_timer.start()

    def _show_batch_status(self) -> None:
        event, self._last_batch = self._last_batch, None
        if event is None:
            return
        steps = max(self._fit.steps_per_epoch, 1) if self._fit else 1
        self.progress.setValue(event.global_step)
        self.status.setText(f"Epoch {event.epoch + 1}: step {event.step + 1} of {steps} · "
                            f"{event.images_per_s:,.0f} images/s · about {duration(event.eta_s)} left")

    def _on_epoch(self, event: EpochEnded) -> None:
        self.plots.add_epoch(event.epoch, event.train_loss, event.val_loss, event.train_acc, event.val_acc,
                             event.best_epoch)
        best = " (best so far)" if event.is_best else ""
        words = "right finding decisions" if self._multi else "accuracy"
        self._log(f"Epoch {event.epoch}: loss {event.train_loss:.3f} / validation {event.val_loss:.3f}, {words} "
                  f"{percent(event.train_acc)} / validation {percent(event.val_acc)}{best} · "
                  f"{duration(event.seconds)}")

    def _on_finished(self, result: Any) -> None:
        self._status_timer.stop()
        self._last_batch = None
        metrics = result.test_metrics or {}
        summary = {k: metrics[k] for k in ("accuracy", "balanced_accuracy") if metrics.get(k) is not None}
        self.session.record_run(result.run_dir, best_epoch=result.best_epoch, cancelled=result.cancelled,
                                metrics=summary, model=runs.load_config(Path(result.run_dir)).model)
        if result.cancelled:
            self.status.setText("Stopped. The run is kept; select it and press “Continue run” to go on.")
            return
        old = metrics.get("continued")
        if old and old.get("old_test_accuracy_before") is not None:
            self._log(f"On the earlier run's {old['old_test_images']} test images: accuracy "
                      f"{percent(old['old_test_accuracy_before'])} before, {percent(old['old_test_accuracy_after'])} "
                      f"after (forgetting {100 * old['forgetting']:+.1f} points).")
        self.status.setText(_done_text(metrics))
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat("Training finished")
        self.evaluation_button.show()
        self.session.select_run(result.run_dir)
        self.run_finished.emit(result.run_dir)

    def _on_errored(self, failure: Failure) -> None:
        self._log(f"Error: {failure.message}")
        self.status.setText(f"Training stopped with an error: {failure.message}")
        task_failed(self, "train", failure)

    def _on_ended(self) -> None:
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self._fill_history()
        if self._training_dir is not None and self.runs_panel.select(self._training_dir, quiet=True):
            self.details.show_run(self._training_dir)  # the run just trained stays current, status kept
            if self.session.run_dir != self._training_dir:
                self.session.select_run(self._training_dir)
        self.session.save()
        if self.evaluation_button.isVisibleTo(self):  # finished: say where to go on, after "Saved …"
            self.session.message.emit("Training finished: the final curves are shown. Press “See the "
                                      "evaluation” for the figures on the test images.")
        self._update_buttons()
        self.run_ended.emit()

    def _log(self, text: str) -> None:
        self.log_pane.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")
        log.info(text)

    def shutdown(self) -> None:
        if self.worker is not None and self.worker.is_running():
            self.worker.stop()
            self.worker.wait(120_000)
        self.form.shutdown()
        self.server.shutdown()


def _done_text(metrics: dict[str, Any]) -> str:
    """The status line of a finished run: accuracy and balanced accuracy, or (multi-label) the mean AUC over
    findings and the share of images with every finding right."""
    if metrics.get("task") == "multi-label":
        auc = (metrics.get("roc_auc") or {}).get("macro")
        shown = f"{auc:.2f}" if auc is not None else "–"
        return (f"Done. Test: mean AUC over findings {shown}, every finding right on "
                f"{percent(metrics.get('subset_accuracy'))} of the images.")
    return (f"Done. Test accuracy {percent(metrics.get('accuracy'))}, balanced accuracy "
            f"{percent(metrics.get('balanced_accuracy'))}.")

