"""The training settings form: strategy (named by what it does, its technical name second, with a one-line
explanation), epochs, learning rate, batch size, image size, augmentation and device. Reads from and writes to
the project's TrainSettings; the strategy's stored value stays its key (``linear-probe``...)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from tl_desktop.ui.glossary import set_term, term_button, with_term
from tl_desktop.ui.glossary_terms import lookup
from tl_desktop.ui.widgets.common import label
from tl_desktop.workers import Worker, tasks

AUGMENTATION_HELP = {
    "none": "No changes to the images: the model sees each image exactly as it is.",
    "light": "Random crops and left-right flips: good for photos and most natural images.",
    "medical": "Never changes brightness or contrast; flips and small rotations only where you allow them.",
}
IMAGE_SIZES = [None, 32, 64, 96, 128, 160, 192, 224, 256, 320, 384]


class TrainSettingsForm(QGroupBox):
    """Emits ``changed`` whenever the user edits a setting."""

    changed = Signal()
    engine_ready = Signal()  # torch is loaded and the devices are known

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Settings", parent)
        from tl_desktop.core.training.strategies import (  # light: torch is not imported
            STRATEGIES,
            STRATEGY_NAMES,
            strategy_help,
            strategy_label,
        )

        self.strategy_help = {name: strategy_help(name) for name in STRATEGIES}
        self.strategy = QComboBox(toolTip="How much of the pretrained network is adapted to your images")
        self.strategy.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.strategy.setMinimumContentsLength(24)  # long names do not widen the form past a 1024-pixel window
        for name in STRATEGIES:  # the plain words fit the box; the technical name heads the line below it
            self.strategy.addItem(STRATEGY_NAMES[name][0], name)
            self.strategy.setItemData(self.strategy.count() - 1, strategy_label(name), Qt.ItemDataRole.ToolTipRole)
        self.strategy_text = label("", "hint", wrap=True)
        self.epochs = QSpinBox(minimum=1, maximum=500, toolTip="How many times the model sees every training "
                               "image. Training stops early when validation stops improving.")
        self.lr = QLineEdit(placeholderText="automatic", toolTip=(
            "Size of each learning step. Leave blank: the app picks a safe value for the strategy. Too high "
            "makes the loss jump or become NaN; too low makes learning slow."))
        self.lr.setValidator(QDoubleValidator(1e-7, 10.0, 8))
        self.batch = QSpinBox(minimum=1, maximum=1024, toolTip="Images per learning step. Smaller needs less "
                              "memory; if the GPU runs out of memory the app halves it by itself.")
        self.image_size = QComboBox(toolTip="Images are resized to this many pixels per side. The model's own "
                                    "size is best for accuracy; smaller is faster.")
        for size in IMAGE_SIZES:
            self.image_size.addItem("model's own" if size is None else f"{size} px", size)
        self.augmentation = QComboBox(toolTip="Random changes to training images, so the model does not learn "
                                      "the exact pixels by heart")
        for name, text in AUGMENTATION_HELP.items():
            self.augmentation.addItem(name, name)
            self.augmentation.setItemData(self.augmentation.count() - 1, text, Qt.ItemDataRole.ToolTipRole)
        self.allow_flip = QCheckBox("allow flips", toolTip="Only if a mirrored image is still a valid example "
                                    "(not for chest X-rays where left and right matter)")
        self.allow_rotate = QCheckBox("allow small rotations", toolTip="Rotate by up to 10 degrees")
        self.device = QComboBox(toolTip="Where the computation runs. Automatic uses a GPU when one is usable.")
        self.device.addItem("Automatic", "auto")
        self.device.addItem("CPU", "cpu")
        self.device.addItem("GPU (CUDA)", "cuda")
        self.device_worker: Worker | None = None
        self.ready = False
        self._layout()
        self._connect()

    def _layout(self) -> None:
        """One row per setting; a "?" beside each word a newcomer may not know opens the glossary there."""
        form = QFormLayout(self)
        form.addRow("Strategy:", with_term(self.strategy, "strategy", self))
        form.addRow("", self.strategy_text)
        form.addRow("Epochs:", with_term(self.epochs, "epoch", self))
        form.addRow("Learning rate:", with_term(self.lr, "learning_rate", self))
        form.addRow("Batch size:", with_term(self.batch, "batch_size", self))
        form.addRow("Image size:", self.image_size)
        augment = QHBoxLayout()
        augment.addWidget(self.augmentation)
        augment.addWidget(self.allow_flip)
        augment.addWidget(self.allow_rotate)
        augment.addWidget(term_button("augmentation", self))
        set_term(self.augmentation, "augmentation")
        form.addRow("Augmentation:", augment)
        form.addRow("Device:", with_term(self.device, "device", self))

    def _connect(self) -> None:
        for combo in (self.strategy, self.image_size, self.augmentation, self.device):
            combo.currentIndexChanged.connect(self._on_edit)
        for spin in (self.epochs, self.batch):
            spin.valueChanged.connect(self._on_edit)
        self.lr.editingFinished.connect(self._on_edit)
        for box in (self.allow_flip, self.allow_rotate):
            box.toggled.connect(self._on_edit)

    def _on_edit(self, *_args: Any) -> None:
        self.strategy_text.setText(self.strategy_help.get(self.strategy.currentData(), ""))
        set_term(self.strategy, lookup(self.strategy.currentData()) or "strategy")  # F1: the chosen strategy
        medical = self.augmentation.currentData() == "medical"
        self.allow_flip.setEnabled(medical)
        self.allow_rotate.setEnabled(medical)
        self.changed.emit()

    # --- project settings in and out ----------------------------------------------------------------
    def load(self, settings: Any) -> None:
        self.blockSignals(True)
        for combo, value in ((self.strategy, settings.strategy), (self.image_size, settings.image_size),
                             (self.augmentation, settings.augmentation), (self.device, settings.device)):
            index = combo.findData(value)
            if index < 0 and combo is self.image_size:
                combo.addItem(f"{value} px", value)
                index = combo.count() - 1
            combo.setCurrentIndex(max(index, 0))
        self.epochs.setValue(settings.epochs)
        self.batch.setValue(settings.batch_size)
        self.lr.setText("" if settings.lr is None else f"{settings.lr:g}")
        self.allow_flip.setChecked(settings.allow_flip)
        self.allow_rotate.setChecked(settings.allow_rotate)
        self.blockSignals(False)
        self._on_edit()

    def store(self, settings: Any) -> None:
        settings.strategy = self.strategy.currentData()
        settings.epochs = self.epochs.value()
        settings.batch_size = self.batch.value()
        settings.image_size = self.image_size.currentData()
        settings.augmentation = self.augmentation.currentData()
        settings.allow_flip = self.allow_flip.isChecked()
        settings.allow_rotate = self.allow_rotate.isChecked()
        settings.device = self.device.currentData()
        text = self.lr.text().strip().replace(",", ".")
        settings.lr = float(text) if text else None

    # --- devices, found lazily (imports torch in a worker) ------------------------------------------
    def query_devices(self) -> None:
        if self.device_worker is not None:
            return
        self.device_worker = Worker(tasks.devices_task, name="devices")
        self.device_worker.finished.connect(self._on_devices)
        self.device_worker.start()

    def _on_devices(self, devices: list[tuple[str, str]]) -> None:
        self.ready = True
        current = self.device.currentData()
        self.device.blockSignals(True)
        self.device.clear()
        for value, text in devices:
            self.device.addItem(text, value)
        self.device.setCurrentIndex(max(self.device.findData(current), 0))
        self.device.blockSignals(False)
        self.engine_ready.emit()

    def shutdown(self) -> None:
        if self.device_worker is not None and self.device_worker.is_running():
            self.device_worker.wait()
