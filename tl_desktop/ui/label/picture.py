"""The Label step's picture: one image large (zoom, pan, DICOM window/level), the next few decoded ahead.

``Preloader`` decodes files in a private thread pool (``core.data.grey_levels``, as the image viewer does) and
keeps the last few as ready QImages (safe to build off the GUI thread), so the next image of the queue is on
screen as soon as the current one is decided. ``LabelPicture`` shows one of them; a right- or Ctrl-drag on a
DICOM or 16-bit image changes the window, which then stays for the next images until "Reset window".
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QStackedWidget, QVBoxLayout, QWidget

from tl_desktop.ui.widgets.common import label
from tl_desktop.ui.widgets.image_canvas import ImageCanvas
from tl_desktop.ui.widgets.image_viewer import DRAG_STEPS

log = logging.getLogger(__name__)

CAPACITY = 12  # decoded images kept (the current one, a few behind for undo, the next ones)


@dataclass(frozen=True)
class Decoded:
    """One file ready to show: ``image`` at the file's own window, or the ``error`` line why it cannot be."""

    path: str
    image: QImage | None
    windower: Any = None  # grey_levels.Windower for DICOM / 16-bit images, else None
    inverted: bool = False
    default_window: tuple[float, float] | None = None
    span: float = 1.0
    size: tuple[int, int] = (0, 0)
    error: str | None = None


def decode(path: str) -> Decoded:
    """Decode ``path`` for the picture (runs in a pool thread); a refused file carries its reason."""
    from tl_desktop.core.data.grey_levels import Windower, load_grey_levels
    from tl_desktop.core.errors import ImageDecodeError

    try:
        grey = load_grey_levels(path)
    except ImageDecodeError as exc:
        return Decoded(path, None, error=str(exc))
    if grey.values is None:
        return Decoded(path, to_qimage(grey.rgb), size=(grey.facts.width, grey.facts.height))
    lo, hi = grey.value_range or (0.0, 1.0)
    window = grey.window or ((lo + hi) / 2, max(hi - lo, 1.0))
    windower = Windower(grey.values, grey.value_range)
    pixels = windower.render(*window, grey.facts.inverted)
    return Decoded(path, to_qimage(pixels), windower, grey.facts.inverted, window, max(hi - lo, 1.0),
                   (grey.facts.width, grey.facts.height))


def to_qimage(pixels: np.ndarray) -> QImage:
    """A QImage owning a copy of uint8 (H, W) grey or (H, W, 3) RGB pixels."""
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    if pixels.ndim == 2:
        return QImage(pixels.data, width, height, width, QImage.Format.Format_Grayscale8).copy()
    return QImage(pixels.data, width, height, width * 3, QImage.Format.Format_RGB888).copy()


class _Signals(QObject):
    done = Signal(object)  # Decoded


class _Decode(QRunnable):
    def __init__(self, path: str, signals: _Signals) -> None:
        super().__init__()
        self.path, self.signals = path, signals

    def run(self) -> None:
        try:
            found = decode(self.path)
        except Exception as exc:  # noqa: BLE001 - an unexpected failure shows as a line, never a crash
            log.exception("decoding %s for labelling failed", self.path)
            found = Decoded(self.path, None, error=f"unexpected error: {exc}")
        self.signals.done.emit(found)


class Preloader(QObject):
    """Decodes files ahead of need (``want``) and keeps the last ``CAPACITY``; ``loaded(path)`` when one is ready."""

    loaded = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: OrderedDict[str, Decoded] = OrderedDict()
        self._pending: set[str] = set()
        self._signals = _Signals()
        self._signals.done.connect(self._store)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)

    def want(self, paths: list[str]) -> None:
        """Decode ``paths`` (absolute) in the background, in that order, unless ready or on their way."""
        for path in paths:
            if path not in self._items and path not in self._pending:
                self._pending.add(path)
                self.pool.start(_Decode(path, self._signals))

    def get(self, path: str) -> Decoded | None:
        found = self._items.get(path)
        if found is not None:
            self._items.move_to_end(path)
        return found

    def _store(self, found: Decoded) -> None:
        self._pending.discard(found.path)
        self._items[found.path] = found
        while len(self._items) > CAPACITY:
            self._items.popitem(last=False)
        self.loaded.emit(found.path)

    def clear(self) -> None:
        self.pool.clear()
        self._items.clear()

    def shutdown(self) -> None:
        self.pool.clear()
        self.pool.waitForDone(10_000)
        self._pending.clear()


class LabelPicture(QWidget):
    """The current image, large. ``show_path(path)`` shows it at once when preloaded, else when it arrives."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.preloader = Preloader(self)
        self.preloader.loaded.connect(self._on_loaded)
        self.path: str | None = None  # the file asked for
        self.shown: str | None = None  # the file on screen
        self.decoded: Decoded | None = None
        self.window: tuple[float, float] | None = None  # the user's window (kept for the next images)
        self.canvas = ImageCanvas()
        self.canvas.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.canvas.window_dragged.connect(self._on_drag)
        self.message = label("", "hint", wrap=True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.message)
        self.stack.addWidget(self.canvas)
        self.caption = label("", "hint")
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.window_text = label("", "hint")
        fit = QPushButton("Fit", toolTip="The whole image in the window (the mouse wheel zooms, dragging pans)",
                          focusPolicy=Qt.FocusPolicy.NoFocus)
        fit.clicked.connect(self.canvas.fit)
        self.reset = QPushButton("Reset window", toolTip="Back to each file's own brightness and contrast",
                                 focusPolicy=Qt.FocusPolicy.NoFocus, visible=False)
        self.reset.clicked.connect(self.reset_window)
        bar = QHBoxLayout()
        bar.addWidget(self.caption, 1)
        bar.addWidget(fit)
        windowing = QHBoxLayout()  # its own line (DICOM / 16-bit only): beside the caption it was cut at 1024 px
        windowing.addWidget(self.window_text, 1)
        windowing.addWidget(self.reset)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.stack, 1)
        box.addLayout(bar)
        box.addLayout(windowing)

    def show_path(self, path: str | None, caption: str = "") -> None:
        """Show ``path`` (absolute; None: nothing left to show, ``caption`` says why)."""
        self.path = path
        self.caption.setText(caption)
        if path is None:
            self._message(caption or "Nothing to show.")
            self.shown = None
            return
        if path == self.shown:
            return  # already on screen: keep the user's zoom
        found = self.preloader.get(path)
        if found is None:
            self._message("Opening the image…")
            self.preloader.want([path])
            return
        self._display(found)

    def _on_loaded(self, path: str) -> None:
        if path == self.path and self.shown != path:
            self._display(self.preloader.get(path))

    def _display(self, found: Decoded | None) -> None:
        if found is None:
            return
        self.decoded, self.shown = found, found.path
        if found.error or found.image is None:
            self._message(f"This file cannot be shown: {found.error}. Skip it (S) or mark it not sure (N).")
            return
        image = found.image
        if found.windower is not None and self.window is not None:
            image = to_qimage(found.windower.render(*self.window, found.inverted))
        self.canvas.windowing_enabled = found.windower is not None
        self.canvas.item.setPixmap(QPixmap.fromImage(image))
        self.canvas.scene().setSceneRect(self.canvas.item.sceneBoundingRect())
        self.stack.setCurrentWidget(self.canvas)
        self.canvas.fit()
        self._show_window()

    def _message(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)

    # --- window/level -------------------------------------------------------------------------------
    def _on_drag(self, dx: float, dy: float) -> None:
        found = self.decoded
        if found is None or found.windower is None:
            return
        centre, width = self.window or found.default_window or (0.0, 1.0)
        step = found.span / DRAG_STEPS
        self.window = (centre + dy * step, max(width + dx * step, found.span / 1000))
        self.canvas.item.setPixmap(QPixmap.fromImage(to_qimage(found.windower.render(*self.window,
                                                                                        found.inverted))))
        self._show_window()

    def reset_window(self) -> None:
        self.window = None
        if self.decoded is not None:
            self._display(self.decoded)

    def _show_window(self) -> None:
        found = self.decoded
        window = self.window or (found.default_window if found is not None else None)
        windowed = found is not None and found.windower is not None and window is not None
        self.window_text.setText(f"Window C {window[0]:,.0f} / W {window[1]:,.0f}  (right-drag or Ctrl+drag to change)"
                                 if windowed else "")
        self.window_text.setVisible(windowed)
        self.window_text.setToolTip("Brightness (centre) and contrast (width): drag on the image with the right "
                                    "mouse button, or Ctrl + left button" if windowed else "")
        self.reset.setVisible(windowed and self.window is not None)  # a PNG has no window to reset

    def shutdown(self) -> None:
        self.preloader.shutdown()


def caption_for(sample: Any) -> str:
    """The line under the picture: the file (relative to the data folder) and its size."""
    return f"{sample.path}  ·  {sample.width:,} × {sample.height:,} px" if sample is not None else ""


__all__ = ["CAPACITY", "Decoded", "LabelPicture", "Preloader", "caption_for", "decode", "to_qimage"]
