"""Step 4, Evaluate: test figures and per-class metrics, the confusion matrix, ROC/PR curves with a live
threshold, calibration and "not sure", the images of any matrix cell with Grad-CAM heatmaps, and the report.

Every figure on every tab comes from one artefact: the run's evaluation of its best checkpoint (clinical.json,
read or computed by ``current.evaluation_state`` in a worker). The headline, per-class table and matrix are
``ClinicalResult.summary``; the drill-down, gallery and heatmap captions are its per-image answers; the
threshold and calibration tabs are numpy on the same stored probabilities. The line under the title names the
checkpoint. While the run trains the last finished evaluation is shown, labelled so; whenever the step is shown
again it checks (by the checkpoint's SHA-256) that the figures are still current and replaces them all at once
when not. The headline leads with accuracy and balanced accuracy (``overview_panel``); for more than two classes
there is no positive class until the user chooses a class of interest, and for two the suggested operating
point is labelled a suggestion. "Use this operating point" stores the user's choice through the core; only that
choice goes into an export. A multi-label run shows its findings tabs instead (``findings_panel``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QPushButton, QTabWidget, QVBoxLayout, QWidget

from tl_desktop.core.errors import ClinicalError, IncompleteRunError
from tl_desktop.core.evaluation import decision as rules
from tl_desktop.core.evaluation.current import EvaluationState
from tl_desktop.core.evaluation.stored_result import ClinicalResult, Decision
from tl_desktop.core.events import Notice, Progress
from tl_desktop.ui.evaluate.calibration_panel import CalibrationPanel
from tl_desktop.ui.evaluate.findings_panel import FindingsTabs
from tl_desktop.ui.evaluate.images import ImagesPane
from tl_desktop.ui.evaluate.overview_panel import TAB_TITLES, Headline, OverviewPanel, point_text
from tl_desktop.ui.evaluate.subgroups_panel import SubgroupsPanel
from tl_desktop.ui.evaluate.threshold_panel import ThresholdPanel
from tl_desktop.ui.model_card import edit_model_card
from tl_desktop.ui.review.gallery import open_review
from tl_desktop.ui.session import Session, drop_workers
from tl_desktop.ui.train.words import phase_words
from tl_desktop.ui.widgets.common import hint, label, title
from tl_desktop.ui.widgets.errors import task_failed
from tl_desktop.ui.widgets.files import show_in_folder
from tl_desktop.ui.widgets.notes import show_notes
from tl_desktop.workers import Failure, Worker, tasks

NO_RUN = "No run selected yet: train a model in step 3, or pick a run there."


class EvaluateView(QWidget):
    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.workers: dict[str, Worker] = {}
        self.metrics: dict[str, Any] | None = None  # ClinicalResult.summary of the shown evaluation
        self.clinical: ClinicalResult | None = None
        self.state: EvaluationState | None = None
        self.decision: Decision | None = None
        self.run_dir: str | None = None
        self.root = Path()
        self._clinical_wanted = False
        self.run_label = label(NO_RUN, wrap=True)
        self.banner = label("", "badge-warn", wrap=True)
        self.recheck_button = QPushButton("Check again", toolTip=(
            "Check whether the figures still belong to the run's best checkpoint; computes them again if not"))
        self.recheck_button.clicked.connect(self.check_current)
        self.clinical_note = label("", "hint", wrap=True)
        self.headline = Headline()
        self.figures = self.headline.figures
        self.report_button = QPushButton("Write report…", enabled=False, toolTip=(
            "Write an audit-ready report of this run: PDF, HTML and an audit folder with the file manifest"))
        self.report_button.clicked.connect(self.choose_report_folder)
        self.card_button = QPushButton("Model card…", enabled=session.project is not None, toolTip=(
            "What the model is for, who would use it and what it is not for: goes into the report's model card"))
        self.card_button.clicked.connect(lambda: edit_model_card(self, session))
        session.project_changed.connect(lambda p: self.card_button.setEnabled(p is not None))
        self.report_note = label("", "hint")
        self.report_note.linkActivated.connect(lambda _url: show_in_folder(Path(self.last_report.pdf).parent, self))
        self.last_report: Any = None
        self.overview = OverviewPanel()
        self.table, self.matrix = self.overview.table, self.overview.matrix
        self.matrix.cell_clicked.connect(lambda t, p: self.show_cell(t, p, thresholded=False))
        self.threshold = ThresholdPanel()
        self.calibration = CalibrationPanel()
        self.images = ImagesPane()
        self.subgroups = SubgroupsPanel()
        self.subgroups.computed.connect(self._on_subgroups)
        self.subgroups.chosen.connect(self._keep_subgroups)
        self.images.review_requested.connect(
            lambda: open_review(self, session, self.images.shown, self.root, self.images.note.text()))
        self.tabs = QTabWidget()
        self._connect_panels()
        self._arrange()
        session.run_selected.connect(self.load_run)
        session.project_changed.connect(lambda _p: (drop_workers(*self.workers.values()), self._clear()))

    def _connect_panels(self) -> None:
        t, c = self.threshold, self.calibration
        t.positive_changed.connect(lambda name: self._set_decision(positive=name))
        t.threshold_changed.connect(lambda value: self._set_decision(threshold=value, moved=True))
        t.pick_requested.connect(self.pick_threshold)
        t.export_requested.connect(self.use_for_export)
        t.clear_requested.connect(lambda: self.use_for_export(clear=True))
        t.cell_clicked.connect(lambda true, pred: self.show_cell(true, pred, thresholded=True))
        c.abstain_changed.connect(lambda value: self._set_decision(abstain=value))
        c.accuracy_pick_requested.connect(self.pick_abstain)

    def _arrange(self) -> None:
        figures = QHBoxLayout()
        figures.addWidget(self.headline, 1)
        figures.addWidget(self.report_note)
        figures.addWidget(self.card_button)
        figures.addWidget(self.report_button)
        self.tabs.addTab(self.overview, "Overview")
        self.tabs.addTab(self.threshold, TAB_TITLES[False])
        self.tabs.addTab(self.calibration, "Calibration and “not sure”")
        self.tabs.addTab(self.images, "Images and heatmaps")
        self.tabs.addTab(self.subgroups, "Subgroups")
        self.findings = FindingsTabs(self.tabs, [self.overview, self.threshold, self.calibration, self.images,
                                                 self.subgroups])
        box = QVBoxLayout(self)
        box.addWidget(title("4. How good is the model?"))
        box.addWidget(hint("All figures are measured on the test images, which the model never saw during "
                           "training. Sensitivity: the share of a class the model finds. Precision: how often the "
                           "model is right when it names that class."))
        box.addWidget(self.run_label)
        stale = QHBoxLayout()
        stale.addWidget(self.banner, 1)
        stale.addWidget(self.recheck_button)
        box.addLayout(stale)
        self._set_banner("")
        box.addLayout(figures)
        box.addWidget(self.clinical_note)
        box.addWidget(self.tabs, 1)

    # --- workers ------------------------------------------------------------------------------------
    def _start(self, key: str, worker: Worker) -> Worker:
        old = self.workers.get(key)
        if old is not None and old.is_running():
            old.stop()
        self.workers[key] = worker
        worker.start()
        return worker

    def busy(self) -> bool:
        return any(w.is_running() for w in self.workers.values())

    # --- loading ------------------------------------------------------------------------------------
    def load_run(self, run_dir: str) -> None:
        self._clear()
        self.run_dir = run_dir
        self.run_label.setText(f"Run: {Path(run_dir).name} — loading its evaluation…")
        self._clinical_wanted = True
        if self.isVisible():
            self.load_clinical()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self._clinical_wanted:
            self.load_clinical()
        elif self.run_dir is not None and not (self.workers.get("clinical") and self.workers["clinical"].is_running()):
            self.check_current()  # training may have moved the checkpoint on since the figures were shown

    def load_clinical(self) -> None:
        """The run's evaluation (read, or computed once per checkpoint by the core; seconds on a CPU)."""
        if self.run_dir is None:
            return
        self._clinical_wanted = False
        self.clinical_note.setText("Loading the evaluation (computed once per checkpoint)…")
        self.check_current()

    def check_current(self) -> None:
        """Ask the core for the current evaluation; figures change only when it is another one."""
        if self.run_dir is None:
            return
        worker = Worker(tasks.evaluation_task, self.run_dir, name="clinical")
        worker.progressed.connect(self._on_clinical_progress)
        worker.finished.connect(lambda result, r=self.run_dir: self.show_evaluation(r, *result))
        worker.errored.connect(self._on_error)
        self._start("clinical", worker)

    def _on_clinical_progress(self, event: Any) -> None:
        if isinstance(event, Progress) and event.total:
            words = phase_words(event.phase)
            self.clinical_note.setText(f"Computing the evaluation: {words[:1].lower()}{words[1:]}, {event.done} of "
                                       f"{event.total} images…")
        elif isinstance(event, Notice) and self.clinical is not None:
            self._set_banner(f"Out of date: {event.message}. The figures below are replaced when it is done.")

    def _on_error(self, failure: Failure) -> None:
        """A line for a folder that is not (yet) a complete run; a dialog for every other failure."""
        self.run_label.setText(f"This run has no test results: {failure.message}")
        self.clinical_note.clear()
        if not isinstance(failure.error, (IncompleteRunError, ClinicalError)):
            task_failed(self, "evaluate", failure)

    def show_evaluation(self, run_dir: str, state: EvaluationState, root: str) -> None:
        """Show an evaluation (every tab at once), unless it is the one already on screen."""
        if run_dir != self.run_dir:
            return
        same = self.state is not None and _identity(self.state) == _identity(state)
        self.state, self.root = state, Path(root)
        self._show_state(state)
        if same and self.clinical is not None:
            return
        if state.data is None:
            self.clinical_note.clear()
            return
        self.clinical = ClinicalResult(state.data, run_dir)
        self.metrics = self.clinical.summary()
        self.decision = self.clinical.stored_decision()
        if self.clinical.multilabel:
            self._show_findings(state.data)
            return
        self.findings.set_shown(False)
        self._show_summary(run_dir, self.metrics)
        self._show_panels(state.data)

    def _show_findings(self, data: dict[str, Any]) -> None:
        """A multi-label run: its headline and findings tabs instead of the single-label tabs."""
        self.headline.show_findings(self.metrics)
        self._show_warnings(data.get("warnings") or [])
        self.findings.show(self.clinical, self.metrics, self.root)

    def _show_state(self, state: EvaluationState) -> None:
        """The line naming the checkpoint, and the banner while the run trains."""
        name = Path(self.run_dir or "").name
        when = _local_time(state.data.get("computed_utc")) if state.data else ""
        if state.data is None:
            self.run_label.setText(f"Run: {name}")
            self._set_banner("Training in progress: this run has no finished evaluation yet; it appears here "
                             "when training ends.")
        else:
            self.run_label.setText(f"Run: {name} · evaluation of the {state.label} · computed {when}")
            self._set_banner("" if not state.training else
                             f"Training in progress: showing the evaluation of the {state.label} from {when}"
                             + ("; out of date, the checkpoint has changed since. It is evaluated again when "
                                "training ends." if state.stale else "; still its best."))
            self.banner.setToolTip(state.stale or "")
        self.report_button.setEnabled(state.data is not None and not state.training)

    def _set_banner(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.setVisible(bool(text))
        self.recheck_button.setVisible(bool(text))

    def _show_summary(self, run_dir: str, metrics: dict[str, Any]) -> None:
        """Headline, per-class table and matrix: ``ClinicalResult.summary`` of the test images."""
        self.headline.show_summary(metrics, self.clinical)
        self.overview.show_summary(metrics, self.clinical.curves())
        self.images.set_run(run_dir, self.root, list(metrics.get("class_names", [])))

    def _show_panels(self, data: dict[str, Any]) -> None:
        """Threshold, calibration and images tabs from the same evaluation."""
        names = self.clinical.names
        self._show_warnings(data.get("warnings") or [])
        self.tabs.setTabText(self.tabs.indexOf(self.threshold), TAB_TITLES[self.clinical.multiclass])
        self.threshold.set_classes(names, self.decision.positive, data.get("positive_reason") or "")
        if self.decision.has_point:
            self.threshold.set_threshold(self.decision.threshold)
        self.threshold.plots.set_curves(self.clinical.curves(), names, self.decision.positive)
        self.calibration.set_abstain(self.decision.abstain)
        self.calibration.show_calibration(self.clinical.calibration(), self.clinical.temperature,
                                          self.clinical.n("val"))
        self._show_stored(data)
        self.refresh()
        self.show_mistakes()
        project = self.session.project
        self.subgroups.set_run(self.run_dir, data, list(project.subgroups) if project is not None else None)

    def _on_subgroups(self, data: dict[str, Any]) -> None:
        """The breakdown was stored in the evaluation: the shown artefact is that one now."""
        if self.clinical is not None:
            self.clinical.data = data

    def _keep_subgroups(self, names: list[str]) -> None:
        if self.session.project is not None and self.session.project.subgroups != names:
            self.session.project.subgroups = list(names)
            self.session.mark_dirty()

    def _show_warnings(self, warnings: list[str]) -> None:
        """The core's notes on the figures: identical ones once with a count, the first in full, every one
        under "show all" (``widgets.notes``)."""
        if not warnings:
            self.clinical_note.clear()
            self.clinical_note.setToolTip("")
            return
        show_notes(self.clinical_note, warnings)

    # --- the decision -------------------------------------------------------------------------------
    def _set_decision(self, moved: bool = False, **change: Any) -> None:
        if self.clinical is None or self.decision is None:
            return
        if "positive" in change and change["positive"] != self.decision.positive:
            self._choose_class(change.pop("positive"))
        self.decision = replace(self.decision, **change)
        if moved:
            self.threshold.set_threshold(self.decision.threshold)
            self.threshold.pick_note.setText("Threshold set by hand.")
        self.refresh()

    def _choose_class(self, name: str | None) -> None:
        """Another class of interest (None: none); a class chosen from none starts at Youden's threshold."""
        names = self.clinical.names
        self.threshold.plots.set_curves(self.clinical.curves(), names, name)
        self.threshold.show_reason(name, "chosen by you")
        self.threshold.set_point_enabled(name is not None)
        threshold = self.decision.threshold
        if name is not None and threshold is None:
            try:
                threshold = self.clinical.pick(name, "youden")
            except ValueError:
                threshold = 0.5
            self.threshold.set_threshold(threshold)
            self.threshold.pick_note.setText(f"Starting point: best balance (Youden) on the validation images, "
                                             f"{threshold:.4f}; not stored until you press “Use this operating "
                                             "point”.")
        self.decision = replace(self.decision, positive=name, threshold=threshold if name is not None else None)

    def refresh(self) -> None:
        """Recompute the figures of the current decision (pure numpy; called on every slider move)."""
        if self.clinical is None or self.decision is None or self.clinical.multilabel:
            return
        d, names = self.decision, self.clinical.names
        if d.has_point:
            self.threshold.show_point(self.clinical.operating_point(d), names, d.abstain)
        else:
            confusion = self.clinical.confusion(d)
            self.threshold.show_plain(names, confusion["matrix"], confusion["not_sure"] if d.abstain else None)
        self.threshold.export_button.setEnabled(d.has_point or (d.abstain is not None))
        accuracy, coverage = self.clinical.accuracy_at_abstain(d.abstain)
        plain, _ = self.clinical.accuracy_at_abstain(None)
        self.calibration.show_coverage(self.clinical.coverage(), accuracy, coverage, plain)

    def pick_threshold(self, method: str, target: float) -> None:
        if self.clinical is None or self.decision is None or self.decision.positive is None:
            return
        try:
            value = self.clinical.pick(self.decision.positive, method, target if method != "youden" else None)
        except ValueError as exc:
            self.threshold.pick_note.setText(f"Cannot pick a threshold: {exc}.")
            return
        names = {"youden": "best balance (Youden)", "sensitivity": f"sensitivity ≥ {target:.2f}",
                 "specificity": f"specificity ≥ {target:.2f}"}
        self.threshold.pick_note.setText(f"{names[method]} on the validation images: threshold {value:.4f}.")
        self.decision = replace(self.decision, threshold=value)
        self.threshold.set_threshold(value)
        self.refresh()

    def pick_abstain(self, accuracy: float) -> None:
        if self.clinical is None or self.decision is None:
            return
        value = self.clinical.abstain_for_accuracy(accuracy)
        if value is None:
            self.calibration.note.setText(f"No threshold reaches {100 * accuracy:.0f} % on the validation images.")
            return
        self.calibration.note.setText(f"Accuracy ≥ {100 * accuracy:.0f} % on the validation images: "
                                      f"“not sure” below {value:.4f}.")
        self.calibration.set_abstain(value)
        self._set_decision(abstain=value)

    def use_for_export(self, clear: bool = False) -> None:
        """Store the shown operating point as the user's choice (or, ``clear``, remove it) through the core."""
        if self.clinical is None or self.decision is None or self.run_dir is None:
            return
        d = self.decision
        choice = {"clear": True, "abstain_threshold": None} if clear else {
            "threshold": d.threshold if d.has_point else None, "positive_class": d.positive if d.has_point else None,
            "abstain_threshold": d.abstain}
        worker = Worker(tasks.set_decision_task, self.run_dir, **choice, name="decision")
        worker.finished.connect(lambda data, r=self.run_dir: self._on_stored(r, data, clear))
        worker.errored.connect(lambda failure: task_failed(self, "decision", failure))
        self.threshold.export_button.setEnabled(False)
        worker.ended.connect(self.refresh)
        self._start("decision", worker)

    def _on_stored(self, run_dir: str, data: dict[str, Any], cleared: bool) -> None:
        if run_dir == self.run_dir and self.clinical is not None:
            self.clinical.data = data
            self.headline.point.setText(point_text(self.clinical))
            if cleared:  # back to no rule (or the suggestion): every control shows it
                self.decision = self.clinical.stored_decision()
                self._show_panels(data)
            self._show_stored(data)
            self.subgroups.show_block(data.get("subgroups"))  # refreshed at the new decision rule by the core
            self.session.message.emit("Stored for export: " + self.threshold.stored.text())

    def _show_stored(self, data: dict[str, Any]) -> None:
        """What the exported model decides, in the Export step's words; a suggestion is named as one."""
        text = rules.rule_sentence(rules.exported_rule(data)) + "."
        if data.get("decision_source") == rules.SUGGESTED:
            text = f"Suggested only. Until you press “Use this operating point”: {text}"
        self.threshold.show_status(text, data.get("decision_source") == rules.USER)

    # --- images -------------------------------------------------------------------------------------
    def show_mistakes(self) -> None:
        if self.clinical is None:
            self.images.show_images([], "")
            return
        mistakes = self.clinical.images(None, mistakes_only=True)
        note = (f"{len(mistakes)} mistakes on the test images, most confident first. Under each image: its true "
                "class, then the model's answer and its probability; hover for all, click for the heatmap."
                ) if mistakes else (
            "No mistakes on the test images.")
        self.images.show_images(mistakes, note)

    def show_cell(self, true: str, predicted: str, thresholded: bool) -> None:
        """The test images of a confusion-matrix cell (diagonal included), in the images tab."""
        if self.clinical is None:
            self.images.show_images([], "The evaluation is still loading; try again in a moment.")
        else:
            decision = self.decision if thresholded else None
            self.images.show_cell(self.clinical.images(decision, true, predicted), true, predicted)
        self.tabs.setCurrentWidget(self.images)

    # --- report -------------------------------------------------------------------------------------
    def choose_report_folder(self) -> None:
        if self.run_dir is None:
            return
        from tl_desktop.report.folders import default_parent

        start = default_parent(self.run_dir)  # the project's reports/ folder
        folder = QFileDialog.getExistingDirectory(
            self, "Where to put the report (a new dated folder is made there for it)",
            str(start if start.is_dir() else self.run_dir))
        if folder:
            self.write_report(folder)

    def write_report(self, folder: str | None = None) -> None:
        if self.run_dir is None:
            return
        worker = Worker(tasks.report_task, self.run_dir, folder, name="report")
        worker.progressed.connect(lambda e: isinstance(e, Notice) and self.session.message.emit(e.message))
        worker.finished.connect(self._on_report)
        worker.errored.connect(lambda failure: task_failed(self, "report", failure))
        self.report_button.setEnabled(False)
        self.report_button.setText("Writing the report…")
        worker.ended.connect(lambda: (self.report_button.setEnabled(True), self.report_button.setText(
            "Write report…")))
        self._start("report", worker)

    def _on_report(self, result: Any) -> None:
        self.last_report = result
        folder = Path(result.pdf).parent
        self.report_note.setText(f'Report: <a href="{QUrl.fromLocalFile(str(folder)).toString()}">{folder}</a>')
        self.session.message.emit(f"Report written: {result.pdf}")

    # --- clearing -----------------------------------------------------------------------------------
    def _clear(self) -> None:
        self.metrics, self.clinical, self.decision, self.run_dir, self.state = None, None, None, None, None
        self._clinical_wanted = False
        self.run_label.setText(NO_RUN)
        self._set_banner("")
        self.clinical_note.clear()
        self.report_note.clear()
        self.report_button.setEnabled(False)
        self.headline.clear()
        self.overview.clear()
        self.images.clear()
        self.threshold.clear()
        self.calibration.clear()
        self.subgroups.clear()
        self.findings.clear()

    def shutdown(self) -> None:
        for worker in self.workers.values():
            if worker.is_running():
                worker.stop()
                worker.wait()
        self.images.shutdown()
        self.subgroups.shutdown()
        self.findings.shutdown()


def _identity(state: EvaluationState) -> tuple[Any, ...]:
    """What makes two evaluation states the same on screen."""
    data = state.data or {}
    return (state.training, state.stale, (data.get("checkpoint") or {}).get("sha256"), data.get("computed_utc"))


def _local_time(utc: str | None) -> str:
    """An ISO UTC time as local "YYYY-MM-DD HH:MM"; "an unknown time" when missing."""
    import datetime as dt

    if not utc:
        return "an unknown time"
    try:
        return dt.datetime.fromisoformat(utc).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return utc
