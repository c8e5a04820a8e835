"""The images tab of Evaluate: the test images of a confusion-matrix cell (or every mistake) as thumbnails,
each captioned with its true class and the model's answer, and the Grad-CAM heatmap of the selected one.

Captions, tooltips and the heatmap's "model's answer" all come from the ``ImageResult`` of the run's evaluation
(the same per-image answers the matrix counts), never from a second prediction."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QPushButton, QSplitter, QVBoxLayout, QWidget

from tl_desktop.core.evaluation.stored_result import NOT_SURE, ImageResult
from tl_desktop.ui.evaluate.heatmap_panel import HeatmapPanel
from tl_desktop.ui.widgets.common import label
from tl_desktop.ui.widgets.image_viewer import KnownFacts, open_viewer
from tl_desktop.ui.widgets.thumbnail_grid import ThumbnailGrid, Tile

ALL_MISTAKES = "All mistakes"


class ImagesPane(QWidget):
    review_requested = Signal()  # "Review these images": the review gallery on the images shown

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.root = Path()
        self.shown: list[ImageResult] = []
        self._answers: dict[str, ImageResult] = {}  # absolute path -> the evaluation's answer
        self.note = label("", "hint", wrap=True)
        self.gallery = ThumbnailGrid(size=88)
        self.gallery.view.setGridSize(QSize(88 + 64, 88 + 44))  # two caption lines: the true class, the answer
        self.heatmap = HeatmapPanel()
        self.gallery.selected_path.connect(lambda path: self.heatmap.show_image(path, self._answers.get(path)))
        self.gallery.activated_path.connect(self.open_image)
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        self.review_button = QPushButton("Review these images…", enabled=False, toolTip=(
            "Go through these images one by one: keep, relabel or exclude each from the next training"))
        self.review_button.clicked.connect(self.review_requested)
        top = QHBoxLayout()
        top.addWidget(self.note, 1)
        top.addWidget(self.review_button)
        column.addLayout(top)
        column.addWidget(self.gallery, 1)
        heat_box = QGroupBox("Heatmap of the selected image (Grad-CAM)")
        QVBoxLayout(heat_box).addWidget(self.heatmap)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(heat_box)
        body.setSizes([560, 480])
        box = QHBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(body)

    def set_run(self, run_dir: str | None, root: Path, class_names: list[str]) -> None:
        self.root = root
        self.heatmap.set_run(run_dir, class_names)

    def show_images(self, images: list[ImageResult], note: str, single_group: str | None = None) -> None:
        """Thumbnails grouped by (true, answer), or in one group named ``single_group``."""
        self.shown = images
        self._answers = {str(self.root / image.path): image for image in images}
        self.note.setText(note)
        self.review_button.setEnabled(bool(images))
        groups: dict[str, list[Tile]] = {}
        for image in images:
            name = single_group or f"{image.true} called {image.predicted}"
            groups.setdefault(name, []).append(self._tile(image))
        self.gallery.set_groups(groups, ALL_MISTAKES)

    def show_cell(self, images: list[ImageResult], true: str, predicted: str) -> None:
        n = f"{len(images)} image{'' if len(images) == 1 else 's'} of class {true}"
        if predicted == NOT_SURE:
            what = f"{n} for which the model said “not sure”."
        elif true == predicted:
            what = f"{n} recognised correctly, most confident first."
        else:
            what = f"{n} that the model called {predicted}."
        self.show_images(images, what + " Click one for its heatmap, double-click it for a large view.", f"{true} → {predicted}")

    def open_image(self, path: str) -> None:
        """The viewer on a test image, with its true class and the model's answer."""
        image = self._answers.get(path)
        answer = f"{image.predicted} ({100 * image.confidence:.0f} %)" if image is not None else None
        open_viewer(self, path, KnownFacts(image.true, "test", None, answer) if image is not None else None)

    def _tile(self, image: ImageResult) -> Tile:
        """Under the image, two lines: its true class, then the model's answer and its probability."""
        listing = "\n".join(f"  {name}: {100 * v:.1f} %"
                            for name, v in sorted(image.probabilities.items(), key=lambda kv: -kv[1]))
        tip = f"{image.path}\nis {image.true}, model said {image.predicted}\n{listing}"
        if image.predicted == NOT_SURE:
            answer = f"not sure {100 * image.confidence:.0f}%"
        else:
            answer = f"{image.predicted} {100 * image.probabilities.get(image.predicted, 0.0):.0f}%"
        return Tile(str(self.root / image.path), f"true: {image.true}\nmodel: {answer}", tip)

    def clear(self) -> None:
        self.shown, self._answers = [], {}
        self.note.clear()
        self.review_button.setEnabled(False)
        self.gallery.set_groups({})
        self.heatmap.set_run(None, [])

    def shutdown(self) -> None:
        self.heatmap.shutdown()
        self.gallery.shutdown()
