"""The "Did transfer help?" window: the transfer check with live overlaid learning curves and its verdict, the
comparison of the offline models, and the label-budget curve, for the open project or another folder of class
folders or CSV chosen on its "Data:" line (``source.DataChoice``).

Non-modal; every computation is a plain core function (``transfer.transfer_check``, ``transfer.compare_models``,
``label_budget.label_budget_curve``) run by a ``Worker``; Stop sets its CancelToken. Results are the JSON files
the core writes under ``<project>/transfer/`` (another data set: ``<its parent>/tl-desktop transfer checks/transfer/``);
the newest of each kind is shown when the window opens and when the data changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.errors import ProjectError
from tl_desktop.core.events import BatchEnded, EpochEnded, FitStarted, Notice, Progress
from tl_desktop.core.insight.label_budget import answer_summary
from tl_desktop.core.insight.results import compare_sentence, latest_result, new_result_folder
from tl_desktop.core.project import project_file as proj
from tl_desktop.ui.train.words import phase_words
from tl_desktop.ui.transfer.plots import LabelBudgetPlot, LearningCurves
from tl_desktop.ui.transfer.results import (
    ARM_NAMES,
    COMPARE_COLUMNS,
    VERDICT_SUMMARY,
    AnswerPanel,
    FolderLine,
    VerdictPanel,
    fill_compare_table,
    make_table,
)
from tl_desktop.ui.transfer.source import DataChoice
from tl_desktop.ui.widgets.common import hint, icon, label
from tl_desktop.ui.widgets.errors import show_error
from tl_desktop.workers import Failure, Worker

log = logging.getLogger(__name__)

TASK_WORDS = {"check": "The transfer check", "compare": "The model comparison", "budget": "The label-budget curve"}
NETWORK_ARMS = ("linear-probe", "fine-tune", "scratch")
STATUS_MS = 250
DEFAULT_BUDGET = 5
CURVES_MIN = 200  # px of the learning curves under the verdict


def offline_catalog() -> list[tuple[str, str]]:
    """(name, label) of every catalog model whose pretrained weights work offline (no torch import)."""
    from tl_desktop.core.models.catalog import catalog, offline_weights_available

    return [(m.name, m.label) for m in catalog() if offline_weights_available(m.name)]


class TransferWindow(QWidget):
    """Transfer insight on the open project's images (``project``, may be None) or another data set;
    ``task_ended(kind, outcome)`` after each task (finished/aborted/errored)."""

    task_ended = Signal(str, str)

    def __init__(self, project: proj.Project | None, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.project = project
        self.settings = project.settings if project is not None else proj.TrainSettings()
        self.data = DataChoice(project)
        self.data.changed.connect(self._data_changed)
        self.worker: Worker | None = None
        self.kind: str | None = None
        self._out: Path | None = None
        self._epochs_done = 0
        self._last_batch: tuple[str, BatchEnded] | None = None
        self.setWindowTitle(f"Did transfer help? — {self.data.name()}")
        self.setWindowIcon(icon("train"))
        self._build_controls()
        self._build_tabs()
        self._arrange()
        self._status_timer = QTimer(self, singleShot=True, interval=STATUS_MS)
        self._status_timer.timeout.connect(self._show_batch_status)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.resize(1240, 760)
        self.load_saved()

    # --- construction -------------------------------------------------------------------------------
    def _build_controls(self) -> None:
        settings = self.settings
        self.model = QComboBox(toolTip="The pretrained backbone to test (only models whose weights work offline)")
        for name, text in offline_catalog():
            self.model.addItem(text, name)
        self.model.setCurrentIndex(max(0, self.model.findData(settings.model)))
        self.budget = QSpinBox(minimum=1, maximum=200, value=min(settings.epochs, DEFAULT_BUDGET) or DEFAULT_BUDGET,
                               suffix=" epochs", toolTip="The same number of epochs for every network (no early "
                               "stopping), so the comparison is fair. More epochs: slower but closer to the truth.")
        self.image_size = QSpinBox(minimum=0, maximum=1024, singleStep=16, suffix=" px",
                                   specialValueText="the model's own", value=settings.image_size or 0,
                                   toolTip="Size the images are resized to; smaller is faster")
        self.start_button = QPushButton(icon("start"), "Start the check", toolTip=(
            "Train the pretrained network's last layer only (linear probe), its last layers too (fine-tune) and "
            "the same network from random weights (from scratch) on the same images, and tell whether the "
            "pretrained knowledge helped"))
        self.start_button.setProperty("role", "primary")
        self.start_button.clicked.connect(self.start_check)
        self.stop_button = QPushButton(icon("stop"), "Stop", enabled=False,
                                       toolTip="Stop after the current step; the networks finished so far are kept")
        self.stop_button.clicked.connect(self.stop)
        self.progress = QProgressBar(textVisible=True, toolTip="Epochs done of all networks of the task")
        self.status = label("Not started.")
        self.status.setMinimumWidth(100)

    def _build_tabs(self) -> None:
        self.curves = LearningCurves()
        self._project_chance()
        self.log_pane = QPlainTextEdit(readOnly=True, maximumBlockCount=2000,
                                       toolTip="What happened, step by step")
        self.log_pane.setMaximumHeight(110)
        self.verdict = VerdictPanel()
        self.compare_button = QPushButton("Compare offline models", toolTip=(
            "Train only the last layer (linear probe) of every offline model on the same images (the epoch "
            "budget above) and list "
            "accuracy, time and size"))
        self.compare_button.clicked.connect(self.start_compare)
        self.compare_table = make_table(COMPARE_COLUMNS, "Every offline model on the same split: test balanced "
                                        "accuracy with its 95% interval, time of the whole run, size of the weights")
        self.compare_summary = label("", wrap=True)
        self.compare_folder = FolderLine()
        self.budget_button = QPushButton("Label-budget curve", toolTip=(
            "Test score versus images per class, the chosen model kept as it is and only its last layer "
            "trained: would labelling more "
            "images pay off?"))
        self.budget_button.clicked.connect(self.start_label_budget)
        self.budget_plot = LabelBudgetPlot()
        self.answer = AnswerPanel()
        self.tabs = QTabWidget()
        self.tabs.addTab(self._check_tab(), "Did transfer help?")
        self.tabs.addTab(self._compare_tab(), "Which pretrained model?")
        self.tabs.addTab(self._budget_tab(), "Would more labels pay off?")

    def _check_tab(self) -> QWidget:
        """The verdict and its table (every row shown) above, the curves and the log below, in a splitter."""
        scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.verdict)
        self.verdict_scroll = scroll
        self.log_pane.setMaximumHeight(16777215)
        below = QSplitter(Qt.Orientation.Horizontal)
        below.addWidget(self.curves)
        below.addWidget(self.log_pane)
        below.setStretchFactor(0, 3)
        below.setStretchFactor(1, 1)
        split = QSplitter(Qt.Orientation.Vertical, childrenCollapsible=False)
        split.addWidget(scroll)
        split.addWidget(below)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        self.check_split = split
        return split

    def _compare_tab(self) -> QWidget:
        tab = QWidget()
        box = QVBoxLayout(tab)
        row = QHBoxLayout()
        row.addWidget(self.compare_button)
        row.addWidget(hint("Each model trains only its last layer (linear probe, fast) with the epoch budget above, on the "
                           "same images. Pick the model with evidence: accuracy, but also time and size."), 1)
        box.addLayout(row)
        box.addWidget(self.compare_table, 0, Qt.AlignmentFlag.AlignLeft)
        box.addWidget(self.compare_summary)
        box.addStretch(1)
        box.addWidget(self.compare_folder)
        return tab

    def _budget_tab(self) -> QWidget:
        tab = QWidget()
        box = QVBoxLayout(tab)
        row = QHBoxLayout()
        row.addWidget(self.budget_button)
        row.addWidget(hint("Trains on 1, 2, 5, 10, 20, half and all of the training images per class (three random "
                           "draws each) and scores each on the same test images."), 1)
        box.addLayout(row)
        box.addWidget(self.answer)
        box.addWidget(self.budget_plot, 1)
        return tab

    def _arrange(self) -> None:
        form = QFormLayout()
        form.addRow("Pretrained model", self.model)
        form.addRow("Budget per network", self.budget)
        form.addRow("Image size", self.image_size)
        buttons = QVBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        top = QHBoxLayout()
        top.addLayout(form)
        top.addLayout(buttons)
        top.addWidget(self._intro(), 1)
        data = QHBoxLayout()
        data.addWidget(label("Data:"))
        data.addWidget(self.data, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(label("Did transfer help?", "title"))
        layout.addLayout(data)
        layout.addLayout(top)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)

    def _intro(self) -> QWidget:
        text = ("The check trains the same network on the same images with the pretrained knowledge (last layer "
                "only: linear probe; last layers too: fine-tune) and without it (from random weights: from "
                "scratch), adds a simple classifier on the raw pixels, and compares "
                "their test scores. Positive: the pretrained model clearly helps; neutral: no clear difference; "
                "negative: it does worse than doing without.")
        if self.project is not None and self.project.split:
            text += " It uses your project's stored split, so its test images are those of your runs."
        return hint(text)

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        QTimer.singleShot(0, self.fit_verdict)

    def fit_verdict(self) -> None:
        """Give the verdict and its table the height they need, leaving the curves at least CURVES_MIN px."""
        total = sum(self.check_split.sizes())
        if total <= 0:
            return
        width = self.verdict_scroll.viewport().width()
        need = self.verdict.heightForWidth(width) if self.verdict.hasHeightForWidth() else -1
        need = max(need, self.verdict.minimumSizeHint().height())
        top = min(need, max(total - CURVES_MIN, total // 2))
        self.check_split.setSizes([top, total - top])

    # --- saved results ------------------------------------------------------------------------------
    def load_saved(self) -> None:
        """Show the newest saved check, comparison and label-budget curve of the chosen images, if any."""
        root = self.data.results_root()
        for kind, show in (("check", self._show_check), ("compare", self._show_compare),
                           ("budget", self._show_budget)):
            saved = latest_result(root, kind) if root is not None else None
            if saved is not None:
                show(*saved)
        if self.verdict.report is not None:
            self.status.setText(f"Showing the check saved in {self.verdict.folder.folder}.")

    def _project_chance(self) -> None:
        """The chance guide for the chosen images: 1 / classes, or 50 % per finding of a multi-label set."""
        scan = self.data.scan_info()
        multi = scan.get("task") == "multi-label"
        self.curves.set_multilabel(multi)
        self.curves.set_chance(2 if multi else len(scan.get("classes") or []) or None)

    def _show_check(self, report: dict[str, Any], folder: Path) -> None:
        self.verdict.show_report(report, folder)
        QTimer.singleShot(0, self.fit_verdict)
        self.curves.set_curves(report["arms"], report["budget_epochs"])
        self.curves.set_target(report["target_val_balanced_accuracy"])
        multi = report.get("task") == "multi-label"
        self.curves.set_multilabel(multi)
        self.curves.set_chance(2 if multi else len(report["classes"]))  # a finding's balanced accuracy: 50 %

    def _show_compare(self, result: dict[str, Any], folder: Path) -> None:
        fill_compare_table(self.compare_table, result["rows"])
        self.compare_summary.setText(compare_sentence(result["rows"]))
        self.compare_folder.set_folder(folder, "Runs and compare_models.json")

    def _show_budget(self, curve: dict[str, Any], folder: Path) -> None:
        self.budget_plot.set_points(curve["points"])
        self.answer.show_curve(curve, folder)

    # --- starting tasks -----------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def _data_kwargs(self) -> dict[str, Any] | None:
        """The chosen data source (images, split) and image size as core keyword arguments, or None (after a
        dialog or a status line)."""
        if self.data.is_scanning():
            self.status.setText("Still looking at the chosen images; start again when the Data line says they "
                                "can be used.")
            return None
        try:
            source = self.data.data_source()
        except ProjectError as exc:
            where = ("Go to step 1 (Data) and choose them, or choose another folder or CSV on the Data line."
                     if self.data.uses_project() else "Choose a folder or CSV on the Data line above.")
            show_error(self, "The images are not chosen yet", str(exc), where)
            return None
        if self.model.currentData() is None:
            show_error(self, "No offline model", "None of the pretrained models has its weights on this computer.",
                       "Import a weights file in step 2 (Model).")
            return None
        return {"source": source, "image_size": self.image_size.value() or None}

    def start_check(self) -> None:
        data = self._data_kwargs()
        if data is None or self.is_running():
            return
        model, s = self.model.currentData(), self.settings
        self.verdict.clear("The check is running…")
        self.curves.reset(self.budget.value())
        self._project_chance()
        self.tabs.setCurrentIndex(0)
        self._start("check", len(NETWORK_ARMS) * self.budget.value(), model, lambda out: dict(
            model=model, budget_epochs=self.budget.value(), out_dir=out, batch_size=s.batch_size,
            device=s.device, **data))

    def start_compare(self) -> None:
        data = self._data_kwargs()
        if data is None or self.is_running():
            return
        models = [self.model.itemData(i) for i in range(self.model.count())]
        s = self.settings
        self.compare_table.setRowCount(0)
        self.compare_summary.setText("")
        self.compare_folder.set_folder(None)
        self._start("compare", len(models) * self.budget.value(), "", lambda out: dict(
            models=models, budget_epochs=self.budget.value(), out_dir=out, strategy="linear-probe",
            batch_size=s.batch_size, device=s.device, **data))

    def start_label_budget(self) -> None:
        data = self._data_kwargs()
        if data is None or self.is_running():
            return
        model = self.model.currentData()
        self.answer.clear()
        self.budget_plot.set_points([])
        self._start("budget", 0, model, lambda out: dict(model=model, out_dir=out, **data))

    def _start(self, kind: str, total_epochs: int, model: str, arguments: Callable[[Path], dict[str, Any]]) -> None:
        """Run the core function of ``kind`` with ``arguments(result folder)`` in a worker."""
        self._out = new_result_folder(self.data.results_root(), kind, model)
        if kind == "budget":
            self._out.mkdir(parents=True)  # label_budget_curve writes into it; the others create it
        self.kind, self._epochs_done, self._last_batch = kind, 0, None
        self.worker = Worker(_task(kind), name=f"transfer-{kind}", **arguments(self._out))
        self.worker.progressed.connect(self._on_event)
        self.worker.finished.connect(self._on_finished)
        self.worker.aborted.connect(self._on_aborted)
        self.worker.errored.connect(self._on_errored)
        self.progress.setRange(0, total_epochs)  # 0 to 0: busy indicator
        self.progress.setValue(0)
        self.log_pane.clear()
        self._log(f"{TASK_WORDS[kind]} started; results go to {self._out}")
        self.status.setText(f"{TASK_WORDS[kind]}: starting (loading the engine)…")
        self._set_running(True)
        self.worker.start()

    def _set_running(self, running: bool) -> None:
        for widget in (self.start_button, self.compare_button, self.budget_button, self.model, self.budget,
                       self.image_size, self.data):
            widget.setEnabled(not running)
        self.stop_button.setEnabled(running)

    def stop(self) -> None:
        """Ask the running task to stop at its next check (never blocks)."""
        if self.is_running():
            self.worker.stop()
            self.stop_button.setEnabled(False)
            self.status.setText("Stopping after the current step…")

    def shutdown(self) -> None:
        """On quitting the app: stop and wait for the task (a running QThread must not be destroyed)."""
        self.data.shutdown()
        if self.is_running():
            self.worker.stop()
            self.worker.wait()

    def _data_changed(self) -> None:
        """Other images chosen: show their saved results (if any) and their chance level."""
        self.setWindowTitle(f"Did transfer help? — {self.data.name()}")
        self.verdict.clear("No result yet for these images. Press “Start the check”.")
        self.curves.reset(self.budget.value())
        self._project_chance()
        self.compare_table.setRowCount(0)
        self.compare_summary.setText("")
        self.compare_folder.set_folder(None)
        self.answer.clear()
        self.budget_plot.set_points([])
        self.status.setText(f"Images: {self.data.name()}.")
        self.load_saved()

    # --- events of the running task (GUI thread) ------------------------------------------------------
    def _on_event(self, item: Any) -> None:
        arm, event = (item.arm, item.event) if hasattr(item, "arm") else ("", item)
        name = ARM_NAMES.get(arm, arm)
        if isinstance(event, BatchEnded):
            self._last_batch = (name, event)
            if not self._status_timer.isActive():
                self._status_timer.start()
        elif isinstance(event, EpochEnded):
            self._epochs_done += 1
            self.progress.setValue(min(self._epochs_done, self.progress.maximum()))
            if self.kind == "check":
                self.curves.add_point(arm, event.epoch, event.val_balanced_acc)
            self._log(f"{name}: epoch {event.epoch}, validation balanced accuracy "
                      f"{100 * event.val_balanced_acc:.1f} % ({event.seconds:.1f} s)")
        elif isinstance(event, FitStarted):
            self.status.setText(f"{name}: training on {event.device}…")
            self._log(f"{name}: training started ({event.epochs} epoch(s), {event.device})")
        elif isinstance(event, Notice):
            self._log(f"{name}: {event.message}" if name else event.message)
        elif isinstance(event, Progress):
            self.status.setText(f"{name + ': ' if name else ''}{phase_words(event.phase)}, {event.done} of "
                                f"{event.total}")

    def _show_batch_status(self) -> None:
        if self._last_batch is not None and self.is_running():
            name, batch = self._last_batch
            self.status.setText(f"{name}: epoch {batch.epoch}, batch {batch.step + 1}, loss {batch.loss:.3f}")

    def _log(self, text: str) -> None:
        self.log_pane.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")

    def _ended(self, outcome: str, text: str) -> None:
        kind, self.kind, self.worker = self.kind, None, None
        self._status_timer.stop()
        self._set_running(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if outcome == "finished" else 0)
        self.status.setText(text)
        self._log(text)
        self.task_ended.emit(kind or "", outcome)

    def _on_finished(self, result: Any) -> None:
        out = self._out
        if self.kind == "check":
            self._show_check(result.to_dict(), out)
            self.tabs.setCurrentIndex(0)
            text = f"Finished: {VERDICT_SUMMARY.get(result.verdict, result.verdict)}. Saved in {out}."
        elif self.kind == "compare":
            self._show_compare({"rows": result}, out)
            text = f"Finished: {len(result)} models compared. Saved in {out}."
        else:
            self._show_budget(result.to_dict(), out)
            text = f"Finished: {answer_summary(result.answer)}. Saved in {out}."
        self._ended("finished", text)

    def _on_aborted(self) -> None:
        self._ended("aborted", f"Stopped. What finished before stopping is kept in {self._out}.")
        if self.verdict.report is None:
            self.verdict.clear("Stopped before a verdict. Press “Start the check” to run it again.")

    def _on_errored(self, failure: Failure) -> None:
        words = TASK_WORDS.get(self.kind or "", "The task")
        self._ended("errored", f"{words} failed: {failure.message}")
        if self.verdict.report is None:
            self.verdict.clear("No result.")
        show_error(self, f"{words} failed", failure.message, "Your project and its runs are unchanged. Try fewer "
                   "epochs, a smaller image size, or choose the CPU in step 3 (Train).", failure.details)


def _task(kind: str) -> Callable[..., Any]:
    """The core function of a task kind (imported here, in the GUI thread; the core imports torch only when
    it runs)."""
    from tl_desktop.core.insight import label_budget, transfer

    tasks = {"check": transfer.transfer_check, "compare": transfer.compare_models,
             "budget": label_budget.label_budget_curve}
    return tasks[kind]
