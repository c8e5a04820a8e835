"""A large view of one image file: zoom and pan, DICOM window/level, and the file's plain facts.

Opened by double-clicking a thumbnail anywhere (``open_viewer``). The file is decoded in a worker thread by
``core.data.grey_levels`` (the limits of the decoder apply; a refused file shows its one-line reason). DICOM
and 16-bit greyscale images are windowed from their own values: a right- or Ctrl-drag changes the window,
presets offer the file's own window, the full range and, only for values that are Hounsfield units, the
usual CT windows. 8-bit and colour images are shown as stored. No patient tag is ever read into the window:
the facts are the scan's (class, part, keyed group hash) and the pixels' (size, bit depth, format).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.errors import ImageDecodeError
from tl_desktop.ui.widgets.common import label
from tl_desktop.ui.widgets.image_canvas import ZOOM_STEP, ImageCanvas
from tl_desktop.workers import Failure, Worker

PARTS = {"train": "training", "val": "validation", "test": "test"}
CT_PRESETS = (("Lung", -600.0, 1500.0), ("Soft tissue", 40.0, 400.0), ("Bone", 400.0, 1800.0))
PREVIEW_PIXELS = 4_000_000  # larger images are previewed at screen resolution while a window drag lasts
DRAG_STEPS = 600  # a drag across this many screen pixels changes the window by the image's whole value range
NO_WINDOW = ("This image has 8 bits per channel (or is in colour) and is shown as stored: there are no "
             "extra grey levels to window.")


@dataclass(frozen=True)
class KnownFacts:
    """What the app knows about a file beyond its pixels (from the scan, the split or an evaluation)."""

    label: str | None = None
    split: str | None = None  # "train" | "val" | "test"
    group: str | None = None  # the keyed hash the split stores (never the grouping value itself)
    answer: str | None = None  # the model's answer where the thumbnail shows one


def facts_for_sample(sample: Any, split: Any | None) -> KnownFacts:
    """The facts of a scanned ``Sample`` with its part and group in ``split`` (a ``Split`` or None)."""
    groups = (split.groups or {}) if split is not None else {}
    return KnownFacts(sample.label, split.assignment.get(sample.path) if split is not None else None,
                      groups.get(sample.path))


def facts_for_path(report: Any | None, split: Any | None, path: str | Path) -> KnownFacts | None:
    """The facts of the scanned file at absolute ``path`` (a ``ScanReport``'s sample), None when not scanned."""
    if report is None:
        return None
    try:
        rel = Path(path).relative_to(report.root).as_posix()
    except ValueError:
        return None
    sample = next((s for s in report.samples if s.path == rel), None)
    return facts_for_sample(sample, split) if sample is not None else None


def open_viewer(parent: QWidget | None, path: str | Path, known: KnownFacts | None = None) -> ImageViewer:
    """Open a viewer window on ``path`` (non-modal; deleted when closed) and return it."""
    viewer = ImageViewer(str(path), known or KnownFacts(), parent.window() if parent is not None else None)
    viewer.show()
    viewer.raise_()
    return viewer


def _load(path: str, **_: Any) -> tuple[Any, Any] | ImageDecodeError:
    """Runs in the worker: the grey levels and, for windowable images, their look-up index; a file the decoder
    refuses is an expected outcome (returned, so it is not logged as a failure)."""
    from tl_desktop.core.data.grey_levels import Windower, load_grey_levels

    try:
        grey = load_grey_levels(path)
    except ImageDecodeError as exc:
        return exc
    return grey, Windower(grey.values, grey.value_range) if grey.values is not None else None


class ImageViewer(QDialog):
    """One file, large: the picture (zoom, pan, window/level) and a side panel of controls and facts."""

    def __init__(self, path: str, known: KnownFacts, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path, self.known = path, known
        self.grey: Any = None
        self.windower: Any = None
        self.window: tuple[float, float] | None = None  # (centre, width) now shown
        self.default_window: tuple[float, float] | None = None
        self.shown: np.ndarray | None = None  # the uint8 pixels now on screen (full resolution)
        self.span = 1.0  # the image's value range: what a drag across DRAG_STEPS screen pixels changes
        self._dragging = False
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle(f"{Path(path).name} — image viewer")
        self.setModal(False)
        self.resize(1180, 800)
        self._render_timer = QTimer(self, singleShot=True, interval=0)
        self._render_timer.timeout.connect(self._render)
        self._build()
        self.worker = Worker(_load, path, name="image viewer")
        self.worker.finished.connect(self._on_loaded)
        self.worker.errored.connect(self._on_failed)
        self.worker.start()

    # --- layout -------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.canvas = ImageCanvas()
        self.canvas.window_dragged.connect(self._on_drag)
        self.canvas.window_drag_ended.connect(self._on_drag_ended)
        self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{100 * z:.0f} %"))
        self.canvas.hovered.connect(self._on_hover)
        self.message = label("Opening the image…", "hint", wrap=True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.message)
        self.stack.addWidget(self.canvas)
        side = QVBoxLayout()
        side.addWidget(self._view_box())
        side.addWidget(self._window_box())
        side.addWidget(self._facts_box(), 1)
        panel = QWidget()
        panel.setLayout(side)
        panel.setFixedWidth(340)
        box = QHBoxLayout(self)
        box.addWidget(self.stack, 1)
        box.addWidget(panel)

    def _view_box(self) -> QGroupBox:
        group = QGroupBox("Zoom")
        row = QHBoxLayout(group)
        for text, tip, slot in (("Fit", "The whole image in the window", self.canvas.fit),
                                ("100 %", "One image pixel per screen pixel", self.canvas.actual_size),
                                ("−", "Zoom out (or turn the mouse wheel)", lambda: self.canvas.zoom_by(1 / ZOOM_STEP)),
                                ("+", "Zoom in (or turn the mouse wheel)", lambda: self.canvas.zoom_by(ZOOM_STEP))):
            button = QPushButton(text, toolTip=tip)
            button.clicked.connect(slot)
            if len(text) == 1:
                button.setFixedWidth(36)
            row.addWidget(button)
        self.zoom_label = label("")
        self.zoom_label.setMinimumWidth(self.zoom_label.fontMetrics().horizontalAdvance("8888 %"))
        row.addWidget(self.zoom_label)
        self.zoom_group = group
        return group

    def _window_box(self) -> QGroupBox:
        self.window_group = QGroupBox("Brightness and contrast (window)")
        self.presets = QComboBox(placeholderText="–", toolTip="Ready-made windows for this image: C is the "
                                 "centre (level), W the width")
        self.presets.activated.connect(self._on_preset)
        self.centre_spin = self._spin("Centre (level): the value shown as middle grey")
        self.width_spin = self._spin("Width: the range of values from black to white; smaller means more contrast")
        self.reset_button = QPushButton("Reset", toolTip="Back to the file's own window (or the full range)")
        self.reset_button.clicked.connect(self.reset_window)
        form = QFormLayout(self.window_group)
        form.addRow("Preset:", self.presets)
        form.addRow("Centre:", self.centre_spin)
        form.addRow("Width:", self.width_spin)
        form.addRow(self.reset_button)
        self.window_hint = label("Drag on the image with the right mouse button (or Ctrl + left button): "
                                 "left–right changes the width (contrast), up–down the centre (brightness).",
                                 "hint", wrap=True)
        form.addRow(self.window_hint)
        self.window_group.setEnabled(False)
        return self.window_group

    def _spin(self, tip: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox(minimum=-1e9, maximum=1e9, decimals=0, toolTip=tip, keyboardTracking=False,
                              specialValueText="–")
        spin.setValue(spin.minimum())  # shows "–" until an image with windowable values is open
        spin.valueChanged.connect(self._on_spin)
        return spin

    def _facts_box(self) -> QGroupBox:
        group = QGroupBox("About this file")
        self.facts = QFormLayout(group)
        self.facts.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        self.pixel_value = label("", "hint", wrap=True)
        self._add_fact("File", Path(self.path).name, self.path)
        return group

    def _add_fact(self, name: str, value: str, tip: str = "") -> None:
        text = label(value, wrap=True)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        text.setToolTip(tip)
        self.facts.addRow(f"{name}:", text)

    # --- loading ------------------------------------------------------------------------------------
    def _on_loaded(self, result: tuple[Any, Any] | ImageDecodeError) -> None:
        if isinstance(result, ImageDecodeError):
            self._on_failed(Failure(result, ""))
            return
        self.grey, self.windower = result
        self._show_facts(self.grey.facts)
        if self.windower is None:
            self.shown = np.ascontiguousarray(self.grey.rgb)
            self._show(self.shown, QImage.Format.Format_RGB888)
            self.window_group.setToolTip(NO_WINDOW)
            self.window_hint.setText(NO_WINDOW)
        else:
            self._fill_presets()
            self.presets.setPlaceholderText("Custom")
            self.window_group.setEnabled(True)
            self.canvas.windowing_enabled = True
            self.reset_window()
        self.stack.setCurrentWidget(self.canvas)

    def _on_failed(self, failure: Failure) -> None:
        reason = failure.message if isinstance(failure.error, ImageDecodeError) else (
            f"unexpected error: {failure.message}")
        self.message.setText(f"This file cannot be shown: {reason}")
        self.zoom_group.setEnabled(False)
        self.message.setProperty("role", "badge-warn")
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)

    def _show_facts(self, facts: Any) -> None:
        self._add_fact("Size on disk", _bytes(facts.size_bytes))
        self._add_fact("Image", f"{facts.width:,} × {facts.height:,} pixels")
        per = "per pixel" if self.grey.values is not None else "per channel"
        self._add_fact("Bit depth", f"{facts.bits} bits {per}")
        self._add_fact("Colour", _photometric(facts))
        self._add_fact("Format", facts.format + (f", modality {facts.modality}" if facts.modality else ""))
        if self.grey.value_range is not None:
            lo, hi = self.grey.value_range
            self._add_fact("Values", f"{_num(lo)} to {_num(hi)}" + (" HU" if facts.units else ""),
                           "The stored values after the file's rescale (Hounsfield units for CT)")
        known = self.known
        for name, value, tip in (("Class", known.label, "The label this image has in your data"),
                                 ("Part", PARTS.get(known.split or "", known.split), "Where the split put it"),
                                 ("Group", known.group, "A keyed hash of the patient/group value used for the "
                                                        "split: the value itself is never stored or shown"),
                                 ("Model said", known.answer, "")):
            if value:
                self._add_fact(name, value, tip)
        self._add_fact("SHA-256", facts.sha256[:16] + "…", "The first digits of the file's SHA-256 checksum; "
                                                             "identical files have identical checksums")
        self.facts.addRow(self.pixel_value)

    # --- window/level -------------------------------------------------------------------------------
    def _fill_presets(self) -> None:
        lo, hi = self.grey.value_range or (0.0, 1.0)
        self.span = max(hi - lo, 1.0)
        integral = self.windower.step == 1.0
        for spin in (self.centre_spin, self.width_spin):
            spin.setDecimals(0 if integral else 3)
        self.width_spin.setMinimum(1.0 if integral else self.span / 1000)
        middle = (lo + hi) / 2
        full = (float(round(middle)) if integral else middle, max(hi - lo, 1.0))
        self.default_window = self.grey.window or full
        unit = " HU" if self.grey.facts.units else ""
        if self.grey.window is not None:
            self._add_preset("From the file", self.grey.window, unit)
        self._add_preset("Full range", full, unit)
        if self.grey.facts.units == "HU":
            for name, c, w in CT_PRESETS:
                self._add_preset(name, (c, w), unit)

    def _add_preset(self, name: str, window: tuple[float, float], unit: str) -> None:
        self.presets.addItem(f"{name} (C {_num(window[0])} / W {_num(window[1])}{unit})", window)

    def _on_preset(self, index: int) -> None:
        window = self.presets.itemData(index)
        if window is not None:
            self.set_window(*window)

    def reset_window(self) -> None:
        if self.default_window is not None:
            self.set_window(*self.default_window)

    def set_window(self, centre: float, width: float) -> None:
        """Show the image windowed at ``centre`` / ``width`` (in the file's values, e.g. HU)."""
        if self.windower is None:
            return
        self.window = (float(centre), max(float(width), self.width_spin.minimum()))
        for spin, value in ((self.centre_spin, self.window[0]), (self.width_spin, self.window[1])):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        match = next((i for i in range(self.presets.count()) if self.presets.itemData(i) == self.window), -1)
        self.presets.setCurrentIndex(match)
        self._render_timer.start()

    def _on_spin(self, _value: float) -> None:
        self.set_window(self.centre_spin.value(), self.width_spin.value())

    def _on_drag(self, dx: float, dy: float) -> None:
        if self.window is None:
            return
        self._dragging = True
        step = self.span / DRAG_STEPS
        self.set_window(self.window[0] + dy * step, self.window[1] + dx * step)

    def _on_drag_ended(self) -> None:
        self._dragging = False
        self._render_timer.start()

    def _render(self) -> None:
        """Window the image; during a drag of a large image a reduced preview keeps the drag smooth."""
        if self.windower is None or self.window is None:
            return
        large = self.windower.index.size > PREVIEW_PIXELS
        stride = max(1, int(1 / max(self.canvas.zoom(), 1e-6))) if self._dragging and large else 1
        pixels = self.windower.render(*self.window, self.grey.facts.inverted, stride)
        if stride == 1:
            self.shown = pixels
        self._show(np.ascontiguousarray(pixels), QImage.Format.Format_Grayscale8, stride)

    def _show(self, pixels: np.ndarray, fmt: QImage.Format, scale: float = 1.0) -> None:
        height, width = pixels.shape[:2]
        line = width * (3 if fmt == QImage.Format.Format_RGB888 else 1)
        image = QImage(pixels.data, width, height, line, fmt).copy()
        self.canvas.set_pixmap(QPixmap.fromImage(image), scale)

    def _on_hover(self, x: int, y: int) -> None:
        if self.grey is None or x < 0:
            self.pixel_value.setText("")
            return
        if self.grey.values is not None:
            value = f"{_num(float(self.grey.values[y, x]))}{' HU' if self.grey.facts.units else ''}"
        else:
            value = "red {}, green {}, blue {}".format(*self.grey.rgb[y, x])
        self.pixel_value.setText(f"Under the mouse: column {x}, row {y}: {value}")


def _photometric(facts: Any) -> str:
    words = {"MONOCHROME2": "greyscale (MONOCHROME2)", "MONOCHROME1": "greyscale, shown inverted (MONOCHROME1)"}
    return words.get(facts.photometric, facts.photometric)


def _num(value: float) -> str:
    return f"{value:,.0f}".replace("-", "−") if float(value).is_integer() or abs(value) >= 100 else (
        f"{value:,.3g}".replace("-", "−"))


def _bytes(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"
