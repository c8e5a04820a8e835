"""Grad-CAM next to an image: which regions drove the model towards a class.

Heatmaps are computed by the core (``explain.explain_run``) in a worker, one at a time, and cached per
(image, class) for the run; the panel only shows PNGs and writes the one on screen with "Save heatmap as PNG".
"The model's answer" is the image's answer in the run's evaluation (``ImageResult``), which the caption
states: the heatmap explains that class, so the caption can never contradict the thumbnail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QComboBox, QFileDialog, QGridLayout, QLabel, QPushButton, QWidget

from tl_desktop.core.evaluation.stored_result import ImageResult
from tl_desktop.core.fsutil import atomic_write_bytes
from tl_desktop.ui.widgets.common import label
from tl_desktop.workers import Worker, tasks

SIDE = 200  # two pictures side by side leave a 1024-pixel Predict step room for its table
ANSWER = "the model's answer"


def _picture() -> QLabel:
    widget = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
    widget.setFixedSize(SIDE, SIDE)
    widget.setStyleSheet("background: palette(base); border: 1px solid palette(mid);")
    return widget


class HeatmapPanel(QWidget):
    shown = Signal(object)  # the result dict now on screen

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_dir: str | None = None
        self.image: str | None = None
        self.answer: ImageResult | None = None  # the evaluation's answer for the image shown
        self.caption: str | None = None  # the line on the answer, where the caller words it
        self.cache: dict[tuple[str, str | None], dict[str, Any]] = {}
        self.worker: Worker | None = None
        self._pending: tuple[str, str | None] | None = None
        self.seen, self.heat = _picture(), _picture()
        self.target = QComboBox(toolTip="Explain the model's own answer, or show what speaks for another class")
        self.target.currentIndexChanged.connect(lambda _i: self._request())
        self.info = label("Click an image to see which regions the model looked at.", "hint", wrap=True)
        self.save_button = QPushButton("Save heatmap as PNG…", enabled=False,
                                       toolTip="Write the heatmap overlay shown here to a PNG file")
        self.save_button.clicked.connect(self.choose_file)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(label("As the model saw it"), 0, 0)
        grid.addWidget(label("Heatmap (red: most influence)"), 0, 1)
        grid.addWidget(self.seen, 1, 0)
        grid.addWidget(self.heat, 1, 1)
        grid.addWidget(label("Heatmap for:"), 2, 0)
        grid.addWidget(self.target, 2, 1)
        grid.addWidget(self.info, 3, 0, 1, 2)
        grid.addWidget(self.save_button, 4, 0, 1, 2)
        grid.setRowStretch(5, 1)

    def set_run(self, run_dir: str | None, class_names: list[str], answer_item: str = ANSWER) -> None:
        """A run's classes in the chooser; ``answer_item`` names its first entry (what the answer explains)."""
        self.cache.clear()  # a new run or a new evaluation of it: other weights, other answers
        self.run_dir, self.image, self.answer, self.caption = run_dir, None, None, None
        self.target.blockSignals(True)
        self.target.clear()
        self.target.addItem(answer_item, None)
        for name in class_names:
            self.target.addItem(name, name)
        self.target.blockSignals(False)
        self._clear("Click an image to see which regions the model looked at.")

    def show_image(self, path: str, answer: ImageResult | None = None, caption: str | None = None) -> None:
        """The heatmap of an image; ``answer`` (the evaluation's) is what "the model's answer" explains;
        ``caption`` replaces the line on the answer (a multi-label image's findings)."""
        self.image, self.answer, self.caption = path, answer, caption
        self._request()

    def _target(self, key: tuple[str, str | None]) -> str | None:
        """The class to explain: the chosen one, else the evaluation's answer (None: the live model's)."""
        if key[1] is not None or self.answer is None:
            return key[1]
        return self.answer.predicted if self.answer.predicted in self.answer.probabilities else None

    def current(self) -> dict[str, Any] | None:
        key = self._key()
        return self.cache.get(key) if key else None

    # --- computing ----------------------------------------------------------------------------------
    def _key(self) -> tuple[str, str | None] | None:
        return (self.image, self.target.currentData()) if self.image and self.run_dir else None

    def _request(self) -> None:
        key = self._key()
        if key is None:
            return
        if key in self.cache:
            self._display(self.cache[key])
            return
        self._clear(f"Computing the heatmap of {Path(key[0]).name}…")
        if self.worker is not None and self.worker.is_running():
            self._pending = key
            return
        self.worker = Worker(tasks.heatmap_task, self.run_dir, key[0], self._target(key), name="heatmap")
        self.worker.finished.connect(lambda result, k=key: self._done(k, result))
        self.worker.errored.connect(lambda failure: self._clear(f"No heatmap: {failure.message}"))
        self.worker.ended.connect(self._next)
        self.worker.start()

    def _done(self, key: tuple[str, str | None], result: dict[str, Any]) -> None:
        self.cache[key] = result
        if key == self._key():
            self._display(result)

    def _next(self) -> None:
        key, self._pending = self._pending, None
        if key is not None and key == self._key() and key not in self.cache:
            self._request()

    # --- showing and saving -------------------------------------------------------------------------
    def _clear(self, text: str) -> None:
        self.seen.clear()
        self.heat.clear()
        self.info.setText(text)
        self.save_button.setEnabled(False)

    def _display(self, result: dict[str, Any]) -> None:
        for widget, key in ((self.seen, "seen_png"), (self.heat, "overlay_png")):
            pixmap = QPixmap()
            pixmap.loadFromData(result[key])
            widget.setPixmap(pixmap.scaled(SIDE - 4, SIDE - 4, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation))
        self.info.setText(f"{Path(result['image']).name}: {self._answer_text(result)}.<br>The heatmap shows "
                          f"what speaks for <b>{result['class_name']}</b>.")
        self.save_button.setEnabled(True)
        self.shown.emit(result)

    def _answer_text(self, result: dict[str, Any]) -> str:
        """The model's answer as the evaluation recorded it (true class too), else the live prediction's."""
        answer = self.answer  # set with the image on screen
        if self.caption:
            return self.caption
        if answer is None:
            return f"the model's answer: {result['predicted']}"
        return f"true class {answer.true}; the model's answer: {answer.predicted} {100 * answer.confidence:.0f} %"

    def choose_file(self) -> None:
        result = self.current()
        if result is None:
            return
        default = f"{Path(result['image']).stem}-heatmap-{result['class_name']}.png"
        file, _ = QFileDialog.getSaveFileName(self, "Save heatmap as PNG", default, "PNG image (*.png)")
        if file:
            self.save_png(file if file.lower().endswith(".png") else f"{file}.png")

    def save_png(self, path: str | Path) -> Path | None:
        result = self.current()
        return None if result is None else atomic_write_bytes(path, result["overlay_png"])

    def shutdown(self) -> None:
        self._pending = None
        if self.worker is not None and self.worker.is_running():
            self.worker.stop()
            self.worker.wait()
