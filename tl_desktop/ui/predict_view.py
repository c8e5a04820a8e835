"""Step 6, Predict: any exported .onnx file on dropped images or a folder; results with thumbnails; CSV.

The answers on screen always belong to the model named above them: choosing another model clears them (and
the heatmap) at once, before the new file is opened, and a file that cannot be opened leaves no answer behind.
With a project open the step starts from the project's latest verified export (``latest_verified_export``).
Images unlike the model's training images (``Prediction.unfamiliar``) are marked in their own column, in the
summary and in the CSV; the column is hidden for a model exported before the reference existed.
A multi-label model names its findings and thresholds in the model line, and each row lists the image's
findings at or above their thresholds ("zero 0.93, seven 0.71", or "No finding") with the others below; the
summary counts each finding and the CSV has ``findings`` and one ``p_<finding>`` column each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.evaluation.statistics import NOT_SURE
from tl_desktop.core.events import Progress
from tl_desktop.core.fsutil import atomic_write_text, csv_text
from tl_desktop.core.project.project_file import latest_verified_export
from tl_desktop.ui.evaluate.heatmap_panel import HeatmapPanel
from tl_desktop.ui.glossary import term_button, with_term
from tl_desktop.ui.predict_findings import (
    MULTI_HEADERS,
    answer_spread,
    findings_tip,
    row_text,
    thresholds_words,
)
from tl_desktop.ui.session import Session, drop_workers
from tl_desktop.ui.widgets.common import fit_columns, hint, icon, label, title
from tl_desktop.ui.widgets.errors import task_failed
from tl_desktop.ui.widgets.image_viewer import open_viewer
from tl_desktop.workers import Failure, Worker, tasks
from tl_desktop.workers.thumbnails import ThumbnailCache

HEADERS = ["Image", "File", "Answer", "Probability", "Unfamiliar", "Problem", "Other candidates"]
THUMB = 64
NO_EXPORT = ("No exported model in this project yet: export one in the Export step, or choose a model file.")
NO_PROJECT = "Choose a model file: an .onnx file exported by tl-desktop."
UNFAMILIAR = "⚠ unlike the training images"
UNFAMILIAR_TIP = ("This image is unlike the images the model was trained on (unfamiliarity {score:.2f}, above "
                  "what about 95 % of its validation images reach): the answer may mean nothing. Check the image "
                  "yourself.")
WARN = QColor(200, 85, 61)


CHOOSE_MODEL_FIRST = "Choose a model file first (an .onnx file exported in step 5)."


def _unfamiliar(p: Any) -> bool:
    return bool(getattr(p, "unfamiliar", None))


class PredictionModel(QAbstractTableModel):
    def __init__(self, cache: ThumbnailCache, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[Any] = []
        self.thresholds: dict[str, float] | None = None  # a multi-label model's, when the rows are its answers
        self.multilabel = False
        self._cache = cache
        self._index: dict[str, int] = {}
        cache.loaded.connect(self._on_thumbnail)

    def set_rows(self, rows: list[Any], thresholds: dict[str, float] | None = None) -> None:
        self.beginResetModel()
        self.rows = rows
        self.thresholds = thresholds
        self.multilabel = any(getattr(r, "findings", None) is not None for r in rows)
        self._index = {r.path: i for i, r in enumerate(rows)}
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return MULTI_HEADERS.get(section, HEADERS[section]) if self.multilabel else HEADERS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        p, col = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            image = self._cache.get(p.path)
            return QPixmap.fromImage(image) if image is not None and not image.isNull() else None
        if role == Qt.ItemDataRole.ToolTipRole:
            if col in (2, 4) and _unfamiliar(p):
                return UNFAMILIAR_TIP.format(score=p.unfamiliarity)
            if col == 2 and self.multilabel and p.decision != NOT_SURE:
                return findings_tip(self.thresholds)
            if col == 2 and p.decision == NOT_SURE:
                return "The model's top probability is below its “not sure” threshold: check this image yourself"
            return p.path
        if role == Qt.ItemDataRole.ForegroundRole and (
                (col == 2 and p.decision == NOT_SURE) or (col in (2, 4) and _unfamiliar(p))):
            return WARN
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if p.findings is not None:
            return row_text(p, self.thresholds, UNFAMILIAR if _unfamiliar(p) else "")[col]
        top = p.top or []
        probability = f"{100 * top[0][1]:.1f} %" if top else ""
        if top and p.label != top[0][0]:  # "not sure" or a threshold decision: name the most probable class
            probability += f" ({top[0][0]})"
        unlike = f"{UNFAMILIAR} (score {p.unfamiliarity:.2f})" if _unfamiliar(p) else ""
        return ["", Path(p.path).name, p.label or "", probability, unlike,
                p.error or "", ", ".join(f"{name} {100 * prob:.1f} %" for name, prob in top[1:])][col]

    def _on_thumbnail(self, path: str) -> None:
        row = self._index.get(path)
        if row is not None:
            index = self.index(row, 0)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class PredictView(QWidget):
    """Works with or without a project: any tl-desktop .onnx file and any images."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.worker: Worker | None = None
        self.model_worker: Worker | None = None  # opens a newly chosen model to name it (or its problem)
        self.class_names: list[str] = []
        self.model_error: str | None = None  # why the current model file cannot be used
        self._model = ""  # the model the view shows (results belong to it)
        self._source = ""  # where it came from, in words
        self._auto = True  # the model is the open project's default, not one the user chose
        self._stamp: float | None = None  # the model file's modification time when it was chosen
        self.thresholds: dict[str, float] | None = None  # the opened model's, when it is multi-label
        self.setAcceptDrops(True)
        self.model_path = QLineEdit(placeholderText="an .onnx file exported by tl-desktop",
                                    toolTip="The exported model to use; it needs nothing else")
        self.model_path.editingFinished.connect(lambda: self.set_model(self.model_path.text().strip()))
        self.choose_model = QPushButton("Choose model…", toolTip="Pick an exported .onnx file")
        self.choose_model.clicked.connect(self._choose_model)
        self.model_note = label(NO_PROJECT, "hint", wrap=True)
        self.model_problem = label("", "badge-warn", wrap=True)
        self.model_problem.hide()
        self.top_k = QSpinBox(minimum=1, maximum=10, value=3, prefix="show top ",
                              toolTip="How many candidate classes to list per image")
        self.add_files = QPushButton(icon("open"), "Images…", toolTip="Classify image files (or drop them here)")
        self.add_files.clicked.connect(self._choose_files)
        self.add_folder = QPushButton("Folder…", toolTip="Classify every image in a folder and its sub-folders")
        self.add_folder.clicked.connect(self._choose_folder)
        self.stop_button = QPushButton("Stop", enabled=False, toolTip="Stop predicting")
        self.stop_button.clicked.connect(lambda: self.worker and self.worker.stop())
        self.save_button = QPushButton("Save as CSV…", enabled=False, toolTip=(
            "Save the table as a CSV file (once the model above has classified images)"))
        self.save_button.clicked.connect(self._save_csv)
        self.progress = QProgressBar(visible=False)
        self.cache = ThumbnailCache(THUMB, parent=self)
        self.results = PredictionModel(self.cache, self)
        self.table = self._make_table()
        self.summary = label("", wrap=True)
        self.heatmaps = HeatmapPanel(self)
        self.table.clicked.connect(self._on_row_clicked)
        self.table.doubleClicked.connect(lambda i: open_viewer(self, self.results.rows[i.row()].path))
        self._arrange()
        session.runs_changed.connect(self._suggest_model)
        session.project_changed.connect(lambda _p: self.reset())

    def _make_table(self) -> QTableView:
        table = QTableView(toolTip="One row per image; sort by clicking a column title")
        table.setModel(self.results)
        table.setIconSize(QSize(THUMB, THUMB))
        table.verticalHeader().setDefaultSectionSize(THUMB + 6)
        table.verticalHeader().setVisible(False)
        table.setAlternatingRowColors(True)
        return fit_columns(table, wrap_rows=False)  # the header fits at 1024 px; rows keep the thumbnail height

    def _arrange(self) -> None:
        model_row = QHBoxLayout()
        model_row.addWidget(label("Model:"))
        model_row.addWidget(self.model_path, 1)
        model_row.addWidget(self.choose_model)
        actions = QHBoxLayout()
        for widget in (self.add_files, self.add_folder, self.top_k, self.stop_button):
            actions.addWidget(widget)
        actions.addWidget(self.progress, 1)
        actions.addStretch()
        actions.addWidget(self.save_button)
        box = QVBoxLayout(self)
        box.addWidget(title("6. Use the model"))
        box.addWidget(hint("Drop images or a folder here, or choose them. Works with any model exported by "
                           "tl-desktop, also without opening a project."))
        box.addLayout(model_row)
        box.addWidget(self.model_note)
        box.addWidget(self.model_problem)
        box.addLayout(actions)
        summary_row = with_term(self.summary, "unfamiliar_image", self)  # the summary counts unfamiliar images
        summary_row.addWidget(term_button("not_sure", self), 0, Qt.AlignmentFlag.AlignTop)
        box.addLayout(summary_row)
        self.table.setProperty("glossary_term", "unfamiliar_image")  # F1 in the results: the "Unfamiliar" column
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(self.heatmaps)
        split.setSizes([760, 420])
        box.addWidget(split, 1)

    # --- the model ----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Another project is open: no model, answer or heatmap of the previous one stays; the step starts from
        the new project's latest verified export."""
        self._use("", "", auto=True)
        self._suggest_model()

    def _suggest_model(self) -> None:
        """Use the open project's latest verified export, unless the user chose a model."""
        project = self.session.project
        if not self._auto:
            return
        found = latest_verified_export(project) if project is not None else None
        if found is None:
            if not self._model:
                self.model_note.setText(NO_EXPORT if project is not None else NO_PROJECT)
            return
        path, entry = found
        if str(path) != self._model or _stamp(str(path)) != self._stamp:  # another file, or exported again
            run = f"run {Path(entry.path).name}" if entry is not None else "a run this project did not record"
            self._use(str(path), f"The open project's latest verified export, from {run}: ", auto=True)

    def set_model(self, path: str, source: str = "", *, auto: bool = False) -> None:
        """Use the model file ``path`` ("" for none): the answers and heatmap of the previous model are cleared
        at once, then the file is opened in a worker to name its classes or say why it cannot be used."""
        if path != self._model:
            self._use(path, source, auto=auto)

    def _use(self, path: str, source: str, *, auto: bool) -> None:
        drop_workers(self.worker, self.model_worker)
        self.worker = self.model_worker = None
        self._clear_results()
        self._model, self._source, self._auto, self.model_error = path, source, auto, None
        self.thresholds = None
        self.top_k.show()
        self._stamp = _stamp(path)
        self.model_path.setText(path)
        self.model_path.setToolTip(path or "The exported model to use; it needs nothing else")
        self.model_problem.hide()
        if not path:
            self.model_note.setText(NO_EXPORT if self.session.project is not None else NO_PROJECT)
            return
        self.model_note.setText(f"{source}{Path(path).name}: opening…")
        self.model_worker = Worker(tasks.model_task, path, name="model")
        self.model_worker.finished.connect(lambda names, p=path: self._on_model_opened(p, names))
        self.model_worker.errored.connect(lambda failure, p=path: self._on_model_failed(p, failure))
        self.model_worker.start()

    def _on_model_opened(self, path: str, summary: Any) -> None:
        if path != self._model:
            return
        names = summary.class_names
        self.thresholds = summary.thresholds
        self.top_k.setVisible(summary.thresholds is None)  # every finding is shown for a multi-label model
        if summary.thresholds is not None:
            self.model_note.setText(f"{self._source}{Path(path).name} · multi-label, {len(names)} findings, each "
                                    f"present at or above its threshold: {thresholds_words(summary.thresholds)}.")
            return
        listing = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        self.model_note.setText(f"{self._source}{Path(path).name} · {len(names)} classes: {listing}.")

    def _on_model_failed(self, path: str, failure: Failure) -> None:
        if path != self._model:
            return
        self.model_error = failure.message
        self.model_note.clear()
        self.model_problem.setText(f"This model cannot be used: {failure.message.rstrip('.')}. Choose an .onnx file "
                                   "exported by tl-desktop (step 5).")
        self.model_problem.show()

    def _clear_results(self) -> None:
        """No answers, summary, heatmap or CSV button: what is shown belongs to no model."""
        self.class_names = []
        self.results.set_rows([])
        self.cache.clear()
        self.heatmaps.set_run(None, [])
        self.summary.clear()
        self.save_button.setEnabled(False)
        self.progress.hide()
        self.stop_button.setEnabled(False)
        self.table.setColumnHidden(HEADERS.index("Problem"), True)
        self.table.setColumnHidden(HEADERS.index("Unfamiliar"), True)

    # --- inputs -------------------------------------------------------------------------------------
    def _choose_model(self) -> None:
        file, _ = QFileDialog.getOpenFileName(self, "Exported model", "", "ONNX model (*.onnx)")
        if file:
            self._auto = False  # the user's choice, even when it is the project's default
            self.set_model(file)

    def _choose_files(self) -> None:
        if self._model_missing():  # said before the user picks images, not after
            return
        files, _ = QFileDialog.getOpenFileNames(self, "Images to classify")
        if files:
            self.predict(files)

    def _choose_folder(self) -> None:
        if self._model_missing():
            return
        folder = QFileDialog.getExistingDirectory(self, "Folder of images to classify")
        if folder:
            self.predict([folder])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        onnx = [p for p in paths if p.lower().endswith(".onnx")]
        if onnx:
            self.set_model(onnx[0])
        images = [p for p in paths if not p.lower().endswith(".onnx")]
        if images:
            self.predict(images)
        event.acceptProposedAction()

    # --- predicting ---------------------------------------------------------------------------------
    def _model_missing(self) -> bool:
        """Whether no usable model is chosen; if so, the summary says what to do (before any image is asked)."""
        self.set_model(self.model_path.text().strip())  # a path typed but not confirmed yet
        if not self._model:
            self.summary.setText(CHOOSE_MODEL_FIRST)
        elif self.model_error is not None:
            self.summary.setText("Choose another model file: this one cannot be used.")
        return not self._model or self.model_error is not None

    def predict(self, paths: list[str]) -> None:
        if self._model_missing():
            return
        if self.worker is not None and self.worker.is_running():
            return
        self.worker = Worker(tasks.predict_task, self._model, list(paths), top_k=self.top_k.value(),
                             name="predict")
        self.worker.progressed.connect(self._on_progress)
        self.worker.finished.connect(self._on_predicted)
        self.worker.errored.connect(lambda failure: task_failed(self, "predict", failure))
        self.worker.ended.connect(self._on_ended)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.stop_button.setEnabled(True)
        self.summary.setText("Classifying…")
        self.worker.start()

    def _on_progress(self, event: Any) -> None:
        if isinstance(event, Progress):
            self.progress.setRange(0, max(event.total, 1))
            self.progress.setValue(event.done)

    def _on_predicted(self, result: tuple[list[str], list[Any], str | None]) -> None:
        self.class_names, predictions, manifest_sha256 = result
        self._connect_heatmaps(manifest_sha256)
        self.cache.clear()
        self.results.set_rows(predictions, self.thresholds)
        failed = sum(1 for p in predictions if p.error)
        spread = answer_spread(predictions)
        unlike = sum(1 for p in predictions if _unfamiliar(p))
        verb = "checked for each finding" if self.results.multilabel else "classified"
        self.summary.setText(f"{len(predictions)} images {verb} ({spread})"
                             + (f"; {failed} could not be read" if failed else "")
                             + (f"; {unlike} unlike the training images ({UNFAMILIAR[0]}): check those yourself"
                                if unlike else "") + ".")
        self.save_button.setEnabled(bool(predictions))
        self.table.setColumnHidden(HEADERS.index("Problem"), not failed)
        scored = any(getattr(p, "unfamiliar", None) is not None for p in predictions)
        self.table.setColumnHidden(HEADERS.index("Unfamiliar"), not scored)
        self.table.setColumnHidden(HEADERS.index("Probability"), self.results.multilabel)

    def _connect_heatmaps(self, manifest_sha256: str | None) -> None:
        """Heatmaps need the PyTorch model: that of the open project's run the .onnx file was exported from."""
        project = self.session.project
        run_dirs = [str(project.run_path(r)) for r in project.runs] if project else []
        run_dir = tasks.run_of_model(run_dirs, manifest_sha256)
        self.heatmaps.set_run(run_dir, self.class_names)
        if run_dir is None:
            self.heatmaps.info.setText("Heatmaps need the run this model was trained in: open its project to "
                                       "see where the model looked.")

    def _on_row_clicked(self, index: QModelIndex) -> None:
        row = self.results.rows[index.row()] if 0 <= index.row() < len(self.results.rows) else None
        if row is not None and not row.error and self.heatmaps.run_dir is not None:
            self.heatmaps.show_image(row.path)

    def _on_ended(self) -> None:
        self.progress.hide()
        self.stop_button.setEnabled(False)

    def _save_csv(self) -> None:
        file, _ = QFileDialog.getSaveFileName(self, "Save predictions", "predictions.csv", "CSV files (*.csv)")
        if file:
            self.write_csv(Path(file))

    def write_csv(self, path: Path) -> None:
        """One row per image: file, answer ("not sure" when the model abstains), the top probability, every
        class probability, then (for a model with the reference) unfamiliar yes/no and the unfamiliarity."""
        scored = any(getattr(p, "unfamiliar", None) is not None for p in self.results.rows)
        extra = ["unfamiliar", "unfamiliarity"] if scored else []
        multi = self.results.multilabel  # findings (a;b) and one p_<finding> column each, as the CLI writes
        middle = ["findings", *(f"p_{n}" for n in self.class_names)] if multi else ["probability", *self.class_names]
        rows = [["file", "prediction", *middle, *extra, "error"]]
        for p in self.results.rows:
            top = p.top[0] if p.top else ("", "")
            probs = [f"{v:.6f}" for v in p.probabilities] or [""] * len(self.class_names)
            flags = ["" if p.unfamiliar is None else ("yes" if p.unfamiliar else "no"),
                     "" if p.unfamiliarity is None else f"{p.unfamiliarity:.4f}"] if scored else []
            first = (p.findings_text or "") if multi else (f"{top[1]:.6f}" if p.top else "")
            rows.append([p.path, p.label or "", first, *probs, *flags, p.error or ""])
        atomic_write_text(path, csv_text(rows))
        self.session.message.emit(f"Saved {len(self.results.rows)} predictions to {path}")

    def shutdown(self) -> None:
        for worker in (self.worker, self.model_worker):
            if worker is not None and worker.is_running():
                worker.stop()
                worker.wait()
        self.heatmaps.shutdown()
        self.cache.shutdown()


def _stamp(path: str) -> float | None:
    """A model file's modification time (None when there is no such file): a file exported again is another
    model, even under the same name."""
    try:
        return Path(path).stat().st_mtime if path else None
    except OSError:
        return None
