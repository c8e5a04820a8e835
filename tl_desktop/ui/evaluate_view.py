"""Step 4, Evaluate: test figures, per-class metrics, the confusion matrix and the misclassified images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QSplitter, QVBoxLayout, QWidget

from tl_desktop.ui.common import hint, label, percent, title
from tl_desktop.ui.confusion import ConfusionMatrix
from tl_desktop.ui.errors import task_failed
from tl_desktop.ui.scan_report import fill_table, make_table
from tl_desktop.ui.session import Session
from tl_desktop.ui.thumbnail_grid import ThumbnailGrid, Tile
from tl_desktop.workers import Worker, tasks

METRIC_COLUMNS = ["Class", "Sensitivity (recall)", "Precision", "F1", "ROC-AUC", "Test images"]
ALL_MISTAKES = "All mistakes"


class EvaluateView(QWidget):
    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.worker: Worker | None = None
        self.metrics: dict[str, Any] | None = None
        self.root = Path()
        self.run_label = label("No run selected yet: train a model in step 3, or pick a run there.", wrap=True)
        self.figures = {key: label("–", "figure") for key in ("n", "accuracy", "balanced", "auc")}
        self.table = make_table(METRIC_COLUMNS, "How well each class is recognised on the test images")
        self.matrix = ConfusionMatrix()
        self.matrix.cell_clicked.connect(self.show_cell)
        self.gallery = ThumbnailGrid(size=88)
        self.gallery_note = label("", "hint", wrap=True)
        self._arrange()
        session.run_selected.connect(self.load_run)
        session.project_changed.connect(lambda _p: self._clear())

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
        matrix_box = QGroupBox("Confusion matrix — rows: true class, columns: the model's answer "
                               "(click a cell to see its images)")
        QVBoxLayout(matrix_box).addWidget(self.matrix)
        gallery_box = QGroupBox("Misclassified test images, most confident mistakes first")
        gallery_layout = QVBoxLayout(gallery_box)
        gallery_layout.addWidget(self.gallery_note)
        gallery_layout.addWidget(self.gallery)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.table)
        right.addWidget(gallery_box)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(matrix_box)
        body.addWidget(right)
        body.setSizes([520, 560])
        box = QVBoxLayout(self)
        box.addWidget(title("4. How good is the model?"))
        box.addWidget(hint("All figures are measured on the test images, which the model never saw during "
                           "training. Sensitivity: the share of a class the model finds. Precision: how often the "
                           "model is right when it names that class."))
        box.addWidget(self.run_label)
        box.addLayout(figures)
        box.addWidget(body, 1)

    # --- loading ------------------------------------------------------------------------------------
    def load_run(self, run_dir: str) -> None:
        if self.worker is not None and self.worker.is_running():
            self.worker.stop()
        self.run_label.setText(f"Run: {Path(run_dir).name} — loading the test results…")
        self.worker = Worker(tasks.evaluate_task, run_dir, name="evaluate")
        self.worker.finished.connect(lambda result, r=run_dir: self.show_metrics(r, *result))
        self.worker.errored.connect(self._on_error)
        self.worker.start()

    def _on_error(self, message: str, details: str) -> None:
        self.run_label.setText(f"This run has no test results: {message}")
        if "no config.json" not in message and "manifest" not in message:
            task_failed(self, "evaluate", message, details)

    def show_metrics(self, run_dir: str, metrics: dict[str, Any], root: str) -> None:
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
            rows.append([name, _pct(m.get("recall")), _pct(m.get("precision")), _pct(m.get("f1")),
                         "–" if auc.get(name) is None else round(auc[name], 3), m.get("support", 0)])
        fill_table(self.table, rows)
        self.matrix.set_matrix(classes, metrics.get("confusion_matrix") or [])
        self.show_cell(None, None)

    # --- gallery ------------------------------------------------------------------------------------
    def show_cell(self, true: str | None, predicted: str | None) -> None:
        """Misclassified images, all of them or those of one confusion-matrix cell."""
        mistakes = (self.metrics or {}).get("misclassified") or []
        if true is not None and true == predicted:
            self.gallery_note.setText(f"Cell: {true} recognised correctly. Only mistakes are listed here; "
                                      "click a cell off the diagonal.")
            self.gallery.set_groups({})
            return
        if true is not None:
            mistakes = [m for m in mistakes if m["true"] == true and m["predicted"] == predicted]
            self.gallery_note.setText(f"{len(mistakes)} images of class {true} that the model called {predicted}.")
        else:
            self.gallery_note.setText(f"{len(mistakes)} mistakes on the test images. Under each image: the model's "
                                      "answer and its probability; hover for all probabilities." if mistakes or not self.metrics else
                                      "No mistakes on the test images.")
        groups: dict[str, list[Tile]] = {}
        for m in mistakes:
            groups.setdefault(f"{m['true']} called {m['predicted']}", []).append(self._tile(m))
        self.gallery.set_groups(groups, ALL_MISTAKES)

    def _tile(self, mistake: dict[str, Any]) -> Tile:
        probs = mistake.get("probabilities", {})
        p = probs.get(mistake["predicted"], 0.0)
        listing = "\n".join(f"  {name}: {100 * v:.1f} %" for name, v in sorted(probs.items(), key=lambda kv: -kv[1]))
        tip = f"{mistake['path']}\nis {mistake['true']}, model said {mistake['predicted']}\n{listing}"
        return Tile(str(self.root / mistake["path"]), f"{mistake['predicted']} {100 * p:.0f}%", tip)

    def _clear(self) -> None:
        self.metrics = None
        self.run_label.setText("No run selected yet: train a model in step 3, or pick a run there.")
        for widget in self.figures.values():
            widget.setText("–")
        fill_table(self.table, [])
        self.matrix.set_matrix([], [])
        self.gallery.set_groups({})
        self.gallery_note.clear()

    def shutdown(self) -> None:
        if self.worker is not None and self.worker.is_running():
            self.worker.stop()
            self.worker.wait()
        self.gallery.shutdown()


def _pct(value: float | None) -> str:
    return percent(value)
