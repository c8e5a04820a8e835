"""Step 5, Export: a verified ONNX file of the selected run, with the verification figures shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.events import Progress
from tl_desktop.core.project.project_file import EXPORTS_FOLDER
from tl_desktop.ui.data.scan_report import fill_table, make_table
from tl_desktop.ui.glossary import set_term, term_button, with_term
from tl_desktop.ui.session import Session, drop_workers
from tl_desktop.ui.widgets.common import fit_columns, hint, icon, label, title
from tl_desktop.ui.widgets.errors import task_failed
from tl_desktop.ui.widgets.files import show_in_folder
from tl_desktop.workers import Worker, tasks

FIGURE_COLUMNS = ["File", "Precision", "Largest probability difference", "Same top answer", "Limits", "Verdict",
                  "Size"]
# What an exported file does with an image unlike the training images: the core's values
# (``model_checks.UNFAMILIAR_ACTIONS``, as ``export --unfamiliar`` takes them) in plain words.
UNFAMILIAR_CHOICES = (
    ("flagged", "show the answer and mark the image as unfamiliar",
     "The model still answers, and the answer carries a mark: this image is unlike the training images."),
    ("not sure", "answer “not sure”",
     "The model gives no class for such an image: it answers “not sure”, as for an uncertain image."),
)


class ExportView(QWidget):
    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.worker: Worker | None = None
        self.result: Any = None
        self.run_label = label("No run selected: train a model first.", wrap=True)
        self.out = QLineEdit(toolTip="Where the .onnx file goes. A .verification.json file with the figures "
                                     "is written next to it.")
        self.browse = QPushButton("Choose…", toolTip="Choose the file name and folder")
        self.browse.clicked.connect(self.choose_file)
        self.fp16 = QCheckBox("also a half-precision file (FP16)", toolTip=(
            f"Half the size; for GPUs. {_limits_text('fp16')}"))
        self.int8 = QCheckBox("also a quantised file (INT8)", toolTip=(
            f"About a quarter of the size and faster on CPUs. {_limits_text('int8')}"))
        self.unfamiliar = QComboBox(toolTip="What the exported file does with an image unlike every training "
                                            "image (for example a photo given to an X-ray model)")
        for value, text, tip in UNFAMILIAR_CHOICES:
            self.unfamiliar.addItem(text, value)
            self.unfamiliar.setItemData(self.unfamiliar.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.button = QPushButton(icon("export"), "Export and verify", toolTip="Write the ONNX file and check "
                                  "it gives the same answers as the trained model (Ctrl+E)")
        self.button.setProperty("role", "primary")
        self.button.setShortcut("Ctrl+E")
        self.button.clicked.connect(self.export)
        self.progress = QProgressBar(visible=False)
        self.table = fit_columns(make_table(FIGURE_COLUMNS, "How closely each exported file matches the trained "
                                                            "model"))
        self.where = label("", wrap=True)
        self.open_folder = QPushButton("Show in folder", visible=False, toolTip="Open the folder with the file")
        self.open_folder.clicked.connect(self._show_folder)
        self._arrange()
        session.run_selected.connect(self._on_run)
        session.project_changed.connect(lambda _p: self.reset())

    def _arrange(self) -> None:
        file_row = QHBoxLayout()
        file_row.addWidget(self.out, 1)
        file_row.addWidget(self.browse)
        options = QGroupBox("Export")
        form = QFormLayout(options)
        file_row.addWidget(term_button("onnx", self))
        form.addRow("File:", file_row)
        form.addRow("Extra files:", with_term(self.fp16, "fp16", self))
        form.addRow("", self.int8)
        set_term(self.int8, "int8")
        form.addRow("Images unlike the training images:", with_term(self.unfamiliar, "unfamiliar_image", self))
        form.addRow("", self.button)
        results = QGroupBox("Verification: the exported file against the trained model")
        results_layout = QVBoxLayout(results)
        results_layout.addWidget(self.table)
        results_layout.addWidget(self.where)
        results_layout.addWidget(self.open_folder)
        box = QVBoxLayout(self)
        box.addWidget(title("5. Export the model"))
        box.addWidget(hint("ONNX is a standard file that other programs (and step 6 here) can run without this "
                           "app or Python. Every exported file is checked: the app runs it on images of your "
                           "data set and compares its answers with the trained model's."))
        box.addWidget(self.run_label)
        box.addWidget(options)
        box.addWidget(self.progress)
        box.addWidget(results, 1)

    # --- run and file -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Another project is open: no result, verification figure or file path of the previous one stays (an
        export still running for it is dropped); a selected run's file goes to the new project's exports."""
        drop_workers(self.worker)
        self.worker, self.result = None, None
        self.progress.hide()
        fill_table(self.table, [])
        self.where.clear()
        self.open_folder.hide()
        self._on_run("")

    def _on_run(self, run_dir: str) -> None:
        project = self.session.project
        self.button.setEnabled(bool(run_dir))
        if not run_dir or project is None:
            self.run_label.setText("No run selected: train a model first.")
            self.out.clear()
            return
        self.run_label.setText(f"Run: {Path(run_dir).name}")
        name = f"{project.folder.name}-{Path(run_dir).name}.onnx"
        self.out.setText(str(project.folder / EXPORTS_FOLDER / name))
        existing = Path(self.out.text())
        self._show_existing(existing)

    def choose_file(self) -> None:
        file, _ = QFileDialog.getSaveFileName(self, "Save the ONNX model", self.out.text(), "ONNX model (*.onnx)")
        if file:
            self.out.setText(file if file.lower().endswith(".onnx") else f"{file}.onnx")

    # --- export -------------------------------------------------------------------------------------
    def export(self) -> None:
        run_dir = self.session.run_dir
        if run_dir is None or not self.out.text() or (self.worker and self.worker.is_running()):
            return
        self.worker = Worker(tasks.export_task, str(run_dir), self.out.text(), fp16=self.fp16.isChecked(),
                             int8=self.int8.isChecked(), unfamiliar_action=self.unfamiliar.currentData(),
                             name="export")
        self.worker.progressed.connect(self._on_progress)
        self.worker.finished.connect(self._on_exported)
        self.worker.errored.connect(lambda failure: task_failed(self, "export", failure))
        self.worker.ended.connect(lambda: (self.progress.hide(), self.button.setEnabled(True)))
        self.button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.where.setText("Exporting and verifying…")
        self.worker.start()

    def _on_progress(self, event: Any) -> None:
        if isinstance(event, Progress):
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)

    def _on_exported(self, result: Any) -> None:
        self.result = result
        files = [result] + list(result.variants.values())
        fill_table(self.table, [_row(r.path, r.verification) for r in files])
        accuracy = result.verification.get("test_accuracy") or {}
        extra = ""
        if accuracy:
            parts = [f"{k}: {100 * v['accuracy']:.1f} %" for k, v in accuracy.items()
                     if isinstance(v, dict) and v.get("accuracy") is not None]
            kind = "Exact-match accuracy (every finding right)" if accuracy.get("task") == "multi-label" else "Accuracy"
            extra = f"\n{kind} on {accuracy.get('n_images')} {accuracy.get('subset')} images: {', '.join(parts)}."
        self.where.setText(f"Saved to {result.path}\nFigures: {result.verification_path}{extra}"
                           f"{decision_text(result.verification.get('metadata') or {})}")
        self.open_folder.show()
        self.session.message.emit(f"Exported and verified: {result.path}")
        if self.session.project is not None and self.session.run_dir is not None:
            self.session.record_run(self.session.run_dir, onnx=str(result.path))

    def _show_existing(self, path: Path) -> None:
        """A file exported earlier: show its stored verification figures."""
        from tl_desktop.core.fsutil import read_json

        report = path.with_name(path.stem + ".verification.json")
        if path.is_file() and report.is_file():
            figures = read_json(report)
            fill_table(self.table, [_row(path, figures)])
            self.where.setText(f"Exported earlier to {path}{decision_text(figures.get('metadata') or {})}")
            self.open_folder.show()
        else:
            fill_table(self.table, [])
            self.where.setText("Not exported yet.")
            self.open_folder.hide()

    def _show_folder(self) -> None:
        """The exported file's folder in the file manager, or a message saying where the file is."""
        self.location_message = show_in_folder(Path(self.out.text()), self)

    def shutdown(self) -> None:
        if self.worker is not None and self.worker.is_running():
            self.worker.stop()
            self.worker.wait()


def decision_text(meta: dict[str, str]) -> str:
    """What the exported file decides, from its metadata: "No decision rule inside: ..." or "Decision rule
    inside: ..." (``decision.rule_sentence``; a rule is only there when chosen in Evaluate)."""
    from tl_desktop.core.evaluation.decision import rule_sentence

    if meta.get("task") == "multi-label":  # one threshold per finding, no temperature (core.export.multilabel)
        from tl_desktop.core.export.multilabel import rule_sentence as findings_rule

        return f"\n{findings_rule(meta)}{unfamiliar_text(meta)}"
    if not meta.get("temperature"):
        return ""
    return (f"\n{rule_sentence(meta)}.\nProbabilities calibrated with temperature "
            f"{float(meta['temperature']):.2f}.{unfamiliar_text(meta)}")


def unfamiliar_text(meta: dict[str, str]) -> str:
    """What the exported file does with images unlike the training images, from its metadata ("" for a file
    without the unfamiliarity output)."""
    words = {value: text for value, text, _ in UNFAMILIAR_CHOICES}.get(meta.get("unfamiliar_action", ""))
    return f"\nImages unlike the training images: {words}." if words else ""


def _limits_text(precision: str) -> str:
    """The limits a file of ``precision`` must meet to be called verified, in words (``verify.TOLERANCES``)."""
    from tl_desktop.core.export.verify import TOLERANCES

    tol = TOLERANCES[precision]
    return (f"Verified separately: only kept when it gives the same top answer on at least "
            f"{100 * tol['top1_agreement']:.0f} % of the verification images and no probability differs from the "
            f"trained model's by more than {tol['max_abs_diff']:g}.")


def _row(path: Path, figures: dict[str, Any]) -> list[Any]:
    """A file's measured figures, today's limits for its precision and the verdict under those limits (a file
    verified under an older, looser rule shows as not verified)."""
    from tl_desktop.core.export.verify import TOLERANCES, agreement_key, within_tolerance

    tol = TOLERANCES.get(figures.get("precision", ""), {})
    key = agreement_key(figures)  # a multi-label file: the same findings at its thresholds (same limits)
    limits = (f"difference ≤ {tol['max_abs_diff']:g}, same {'findings' if key != 'top1_agreement' else 'answer'} "
              f"≥ {100 * tol['top1_agreement']:.0f} %" if tol else "")
    size = figures.get("file_size_bytes")
    return [Path(path).name, figures.get("precision", ""), f"{figures.get('max_abs_diff', float('nan')):.3g}",
            f"{100 * (figures.get(key) or 0):.1f} % of {figures.get('n_images', '?')} images", limits,
            "✔ verified" if within_tolerance(figures) else "✘ not verified (outside the limits)",
            f"{size / 1e6:.1f} MB" if size else ""]
