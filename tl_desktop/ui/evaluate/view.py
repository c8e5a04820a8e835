"""Step 4, Evaluate: test figures and per-class metrics, the confusion matrix, ROC/PR curves with a live
threshold, calibration and "not sure", the images of any matrix cell with Grad-CAM heatmaps, and the report.

Two workers load a run: its test metrics (metrics.json) and its clinical evaluation (clinical.json, computed
once by the core when missing). Everything the threshold slider shows is then numpy on the stored per-image
probabilities (``ClinicalResult``); "Use this threshold for export" stores the choice through the core.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.errors import IncompleteRunError
from tl_desktop.core.evaluation.stored_result import ClinicalResult, Decision
from tl_desktop.core.events import Notice, Progress
from tl_desktop.ui.data.scan_report import fill_table, make_table
from tl_desktop.ui.evaluate.calibration_panel import CalibrationPanel
from tl_desktop.ui.evaluate.images import ImagesPane, mistake_results
from tl_desktop.ui.evaluate.threshold_panel import ThresholdPanel
from tl_desktop.ui.session import Session
from tl_desktop.ui.widgets.common import hint, label, percent, title
from tl_desktop.ui.widgets.confusion import ConfusionMatrix
from tl_desktop.ui.widgets.errors import task_failed
from tl_desktop.workers import Failure, Worker, tasks

METRIC_COLUMNS = ["Class", "Sensitivity (recall)", "Precision", "F1", "ROC-AUC", "Test images"]
NO_RUN = "No run selected yet: train a model in step 3, or pick a run there."


class EvaluateView(QWidget):
    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.workers: dict[str, Worker] = {}
        self.metrics: dict[str, Any] | None = None
        self.clinical: ClinicalResult | None = None
        self.decision: Decision | None = None
        self.run_dir: str | None = None
        self.root = Path()
        self._clinical_wanted = False
        self.run_label = label(NO_RUN, wrap=True)
        self.clinical_note = label("", "hint", wrap=True)
        self.figures = {key: label("–", "figure") for key in ("n", "accuracy", "balanced", "auc")}
        self.report_button = QPushButton("Write report…", enabled=False, toolTip=(
            "Write an audit-ready report of this run: PDF, HTML and an audit folder with the file manifest"))
        self.report_button.clicked.connect(self.choose_report_folder)
        self.report_note = label("", "hint")
        self.report_note.setOpenExternalLinks(True)
        self.last_report: Any = None
        self.table = make_table(METRIC_COLUMNS, "How well each class is recognised on the test images")
        self.matrix = ConfusionMatrix()
        self.matrix.cell_clicked.connect(lambda t, p: self.show_cell(t, p, thresholded=False))
        self.threshold = ThresholdPanel()
        self.calibration = CalibrationPanel()
        self.images = ImagesPane()
        self.tabs = QTabWidget()
        self._connect_panels()
        self._arrange()
        session.run_selected.connect(self.load_run)
        session.project_changed.connect(lambda _p: self._clear())

    def _connect_panels(self) -> None:
        t, c = self.threshold, self.calibration
        t.positive_changed.connect(lambda name: self._set_decision(positive=name))
        t.threshold_changed.connect(lambda value: self._set_decision(threshold=value, moved=True))
        t.pick_requested.connect(self.pick_threshold)
        t.export_requested.connect(self.use_for_export)
        t.cell_clicked.connect(lambda true, pred: self.show_cell(true, pred, thresholded=True))
        c.abstain_changed.connect(lambda value: self._set_decision(abstain=value))
        c.accuracy_pick_requested.connect(self.pick_abstain)

    def _arrange(self) -> None:
        figures = QHBoxLayout()
        for key, text in (("n", "test images"), ("accuracy", "accuracy"), ("balanced", "balanced accuracy"),
                          ("auc", "ROC-AUC (mean)")):
            column = QVBoxLayout()
            column.addWidget(self.figures[key])
            column.addWidget(label(text, "hint"))
            figures.addLayout(column)
            figures.addSpacing(24)
        figures.addStretch()
        figures.addWidget(self.report_note)
        figures.addWidget(self.report_button)
        overview = QWidget()
        row = QHBoxLayout(overview)
        matrix_box = QGroupBox("Confusion matrix: rows true class, columns the model's answer (click a cell)")
        QVBoxLayout(matrix_box).addWidget(self.matrix)
        row.addWidget(matrix_box, 1)
        row.addWidget(self.table, 1)
        self.tabs.addTab(overview, "Overview")
        self.tabs.addTab(self.threshold, "Threshold and curves")
        self.tabs.addTab(self.calibration, "Calibration and “not sure”")
        self.tabs.addTab(self.images, "Images and heatmaps")
        box = QVBoxLayout(self)
        box.addWidget(title("4. How good is the model?"))
        box.addWidget(hint("All figures are measured on the test images, which the model never saw during "
                           "training. Sensitivity: the share of a class the model finds. Precision: how often the "
                           "model is right when it names that class."))
        box.addWidget(self.run_label)
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
        self.run_label.setText(f"Run: {Path(run_dir).name} — loading the test results…")
        worker = Worker(tasks.evaluate_task, run_dir, name="evaluate")
        worker.finished.connect(lambda result, r=run_dir: self.show_metrics(r, *result))
        worker.errored.connect(self._on_error)
        self._start("metrics", worker)
        self._clinical_wanted = True
        if self.isVisible():
            self.load_clinical()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self._clinical_wanted:
            self.load_clinical()

    def load_clinical(self) -> None:
        """The clinical figures of the run (computed once by the core; seconds on a CPU)."""
        if self.run_dir is None:
            return
        self._clinical_wanted = False
        self.clinical_note.setText("Loading the per-image results (computed once per run)…")
        worker = Worker(tasks.clinical_task, self.run_dir, name="clinical")
        worker.progressed.connect(self._on_clinical_progress)
        worker.finished.connect(lambda data, r=self.run_dir: self.show_clinical(r, data))
        worker.errored.connect(lambda failure: self.clinical_note.setText(
            f"No threshold or calibration figures: {failure.message}"))
        self._start("clinical", worker)

    def _on_clinical_progress(self, event: Any) -> None:
        if isinstance(event, Progress) and event.total:
            self.clinical_note.setText(f"Computing the per-image results: {event.phase}, {event.done} of "
                                       f"{event.total} images…")

    def _on_error(self, failure: Failure) -> None:
        """A line for a folder that is not (yet) a complete run; a dialog for every other failure."""
        self.run_label.setText(f"This run has no test results: {failure.message}")
        if not isinstance(failure.error, IncompleteRunError):
            task_failed(self, "evaluate", failure)

    def show_metrics(self, run_dir: str, metrics: dict[str, Any], root: str) -> None:
        if run_dir != self.run_dir:
            return
        self.metrics, self.root = metrics, Path(root)
        classes = list(metrics.get("class_names", []))
        self.run_label.setText(f"Run: {Path(run_dir).name} (best epoch {metrics.get('best_epoch', '–')} of "
                               f"{metrics.get('epochs_run', '–')})")
        auc = metrics.get("roc_auc") or {}
        self.figures["n"].setText(f"{metrics.get('n', 0):,}")
        self.figures["accuracy"].setText(percent(metrics.get("accuracy")))
        self.figures["balanced"].setText(percent(metrics.get("balanced_accuracy")))
        self.figures["auc"].setText("–" if auc.get("macro") is None else f"{auc['macro']:.3f}")
        rows = []
        for name in classes:
            m = (metrics.get("per_class") or {}).get(name, {})
            rows.append([name, percent(m.get("recall")), percent(m.get("precision")), percent(m.get("f1")),
                         "–" if auc.get(name) is None else round(auc[name], 3), m.get("support", 0)])
        fill_table(self.table, rows)
        self.matrix.set_matrix(classes, metrics.get("confusion_matrix") or [])
        self.table.horizontalHeaderItem(METRIC_COLUMNS.index("ROC-AUC")).setText("ROC-AUC")
        self._add_auc_intervals()
        self.report_button.setEnabled(True)
        self.images.set_run(run_dir, self.root, classes)  # the data root comes with the metrics
        self.show_mistakes()

    def show_clinical(self, run_dir: str, data: dict[str, Any]) -> None:
        if run_dir != self.run_dir:
            return
        self.clinical = ClinicalResult(data, run_dir)
        self.decision = self.clinical.stored_decision()
        names = self.clinical.names
        self._show_warnings(data.get("warnings") or [])
        self._add_auc_intervals()
        self.threshold.set_classes(names, self.decision.positive, data.get("positive_reason", ""))
        self.threshold.set_threshold(self.decision.threshold)
        self.threshold.plots.set_curves(self.clinical.curves(), names, self.decision.positive)
        self.calibration.set_abstain(self.decision.abstain)
        self.calibration.show_calibration(self.clinical.calibration(), self.clinical.temperature,
                                          self.clinical.n("val"))
        self._show_stored(data)
        self.refresh()
        if self.metrics is not None:  # else show_metrics shows them, with the data root
            self.show_mistakes()

    def _show_warnings(self, warnings: list[str]) -> None:
        """The core's notes on the figures: the first in full, all of them in the tooltip."""
        if not warnings:
            self.clinical_note.clear()
            return
        more = f" (and {len(warnings) - 1} more notes: hover here)" if len(warnings) > 1 else ""
        self.clinical_note.setText(f"Note: {warnings[0]}{more}")
        self.clinical_note.setToolTip("\n\n".join(warnings))

    def _add_auc_intervals(self) -> None:
        """Each class's ROC-AUC in the metrics table with its bootstrap 95% interval."""
        curves = self.clinical.curves() if self.clinical else {}
        column = METRIC_COLUMNS.index("ROC-AUC")
        for row in range(self.table.rowCount()):
            entry = curves.get(self.table.item(row, 0).text())
            if entry is not None:
                auc = entry["auc"]
                self.table.item(row, column).setText(f"{auc['auc']:.3f} ({auc['low']:.3f}–{auc['high']:.3f})")
        self.table.horizontalHeaderItem(column).setText("ROC-AUC (95% CI)")

    # --- the decision -------------------------------------------------------------------------------
    def _set_decision(self, moved: bool = False, **change: Any) -> None:
        if self.clinical is None or self.decision is None:
            return
        if "positive" in change and change["positive"] != self.decision.positive:
            self.threshold.plots.set_curves(self.clinical.curves(), self.clinical.names, change["positive"])
            self.threshold.reason.setText(f"Why {change['positive']}: chosen by you.")
        self.decision = replace(self.decision, **change)
        if moved:
            self.threshold.set_threshold(self.decision.threshold)
            self.threshold.pick_note.setText("Threshold set by hand.")
        self.refresh()

    def refresh(self) -> None:
        """Recompute the figures of the current decision (pure numpy; called on every slider move)."""
        if self.clinical is None or self.decision is None:
            return
        point = self.clinical.operating_point(self.decision)
        self.threshold.show_point(point, self.clinical.names, self.decision.abstain)
        accuracy, coverage = self.clinical.accuracy_at_abstain(self.decision.abstain)
        plain, _ = self.clinical.accuracy_at_abstain(None)
        self.calibration.show_coverage(self.clinical.coverage(), accuracy, coverage, plain)

    def pick_threshold(self, method: str, target: float) -> None:
        if self.clinical is None or self.decision is None:
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

    def use_for_export(self) -> None:
        """Store the decision in clinical.json through the core; the next export carries it."""
        if self.clinical is None or self.decision is None or self.run_dir is None:
            return
        d = self.decision
        worker = Worker(tasks.set_decision_task, self.run_dir, threshold=d.threshold, positive_class=d.positive,
                        abstain_threshold=d.abstain, name="decision")
        worker.finished.connect(lambda data, r=self.run_dir: self._on_stored(r, data))
        worker.errored.connect(lambda failure: task_failed(self, "decision", failure))
        self.threshold.export_button.setEnabled(False)
        worker.ended.connect(lambda: self.threshold.export_button.setEnabled(True))
        self._start("decision", worker)

    def _on_stored(self, run_dir: str, data: dict[str, Any]) -> None:
        if run_dir == self.run_dir and self.clinical is not None:
            self.clinical.data = data
            self._show_stored(data)
            self.session.message.emit("Stored for export: " + self.threshold.stored.text())

    def _show_stored(self, data: dict[str, Any]) -> None:
        abstain = data.get("abstain_threshold")
        self.threshold.stored.setText(
            f"The exported model calls {data['positive_class']} at probability ≥ "
            f"{data['decision_threshold']:.4f}" + (f" and says “not sure” below {abstain:.4f}." if abstain is not
                                                  None else "; it never says “not sure”."))

    # --- images -------------------------------------------------------------------------------------
    def show_mistakes(self) -> None:
        if self.clinical is not None:
            mistakes = self.clinical.images(None, mistakes_only=True)
        else:
            mistakes = mistake_results((self.metrics or {}).get("misclassified") or [])
        note = (f"{len(mistakes)} mistakes on the test images, most confident first. Under each image: the "
                "model's answer and its probability; hover for all, click for the heatmap.") if mistakes else (
            "No mistakes on the test images." if self.metrics else "")
        self.images.show_images(mistakes, note)

    def show_cell(self, true: str, predicted: str, thresholded: bool) -> None:
        """The test images of a confusion-matrix cell (diagonal included), in the images tab."""
        if self.clinical is None:
            if true == predicted:
                self.images.show_images([], "The per-image results are still loading; try again in a moment.")
            else:
                mistakes = mistake_results((self.metrics or {}).get("misclassified") or [])
                self.images.show_cell([m for m in mistakes if m.true == true and m.predicted == predicted],
                                      true, predicted)
        else:
            decision = self.decision if thresholded else None
            self.images.show_cell(self.clinical.images(decision, true, predicted), true, predicted)
        self.tabs.setCurrentWidget(self.images)

    # --- report -------------------------------------------------------------------------------------
    def choose_report_folder(self) -> None:
        if self.run_dir is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Folder for the report (PDF, HTML and audit folder)",
                                                  self.run_dir)
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
        self.metrics, self.clinical, self.decision, self.run_dir = None, None, None, None
        self._clinical_wanted = False
        self.run_label.setText(NO_RUN)
        self.clinical_note.clear()
        self.report_note.clear()
        self.report_button.setEnabled(False)
        for widget in self.figures.values():
            widget.setText("–")
        fill_table(self.table, [])
        self.matrix.set_matrix([], [])
        self.images.clear()

    def shutdown(self) -> None:
        for worker in self.workers.values():
            if worker.is_running():
                worker.stop()
                worker.wait()
        self.images.shutdown()
