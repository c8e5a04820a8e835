"""Thumbnails loaded in a QThreadPool, only when a view asks for them, kept in a bounded LRU cache.

The GUI thread never decodes an image: ``get()`` returns the cached QImage or None and queues a load;
``loaded(path)`` tells the model to repaint that item. QImage (unlike QPixmap) is safe to build off the GUI
thread. Formats Qt cannot read (DICOM, 16-bit TIFF) go through the core's decoder.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader

log = logging.getLogger(__name__)


class _Signals(QObject):
    done = Signal(str, QImage, int)


class _Load(QRunnable):
    def __init__(self, path: str, size: int, signals: _Signals, generation: int) -> None:
        super().__init__()
        self.path, self.size, self.signals, self.generation = path, size, signals, generation

    def run(self) -> None:
        try:
            image = load_thumbnail(self.path, self.size)
        except Exception as exc:  # noqa: BLE001 - an unreadable file shows as an empty tile, never a crash
            log.debug("thumbnail of %s failed: %s", self.path, exc)
            image = QImage()
        self.signals.done.emit(self.path, image, self.generation)


def load_thumbnail(path: str, size: int) -> QImage:
    """A QImage at most ``size`` px on its longer side (runs in a pool thread)."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    if reader.canRead() and reader.imageFormat() not in (QImage.Format.Format_Grayscale16,
                                                         QImage.Format.Format_RGBA64):
        original = reader.size()
        if original.isValid() and max(original.width(), original.height()) > size:
            reader.setScaledSize(original.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio))
        image = reader.read()
        if not image.isNull():
            return image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                Qt.TransformationMode.SmoothTransformation) if _small(image, size) else image
    from tl_desktop.core.data.decode import (
        load_image,  # DICOM, 16-bit and anything else the core decodes
    )

    pil = load_image(path)
    pil.thumbnail((size, size))
    data = pil.convert("RGB").tobytes()
    return QImage(data, pil.width, pil.height, pil.width * 3, QImage.Format.Format_RGB888).copy()


def _small(image: QImage, size: int) -> bool:
    """Tiny images (8-64 px digits, patches) are scaled up so the grid stays readable."""
    return max(image.width(), image.height()) < size


class ThumbnailCache(QObject):
    """LRU cache of thumbnails; loads run in a private thread pool so they never wait behind training."""

    loaded = Signal(str)

    def __init__(self, size: int = 96, capacity: int = 3000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.size = size
        self._capacity = capacity
        self._images: OrderedDict[str, QImage] = OrderedDict()
        self._pending: set[str] = set()
        self._generation = 0
        self._signals = _Signals()
        self._signals.done.connect(self._store)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max(2, min(4, QThreadPool.globalInstance().maxThreadCount())))

    def get(self, path: str) -> QImage | None:
        image = self._images.get(path)
        if image is not None:
            self._images.move_to_end(path)
            return image
        if path not in self._pending:
            self._pending.add(path)
            self.pool.start(_Load(path, self.size, self._signals, self._generation))
        return None

    def cancel_pending(self) -> None:
        """Forget queued loads (the user scrolled on); visible items ask again when they repaint."""
        self.pool.clear()
        self._pending.clear()

    def clear(self) -> None:
        """Drop queued loads and cached images (a new scan)."""
        self.cancel_pending()
        self._images.clear()
        self._generation += 1

    def shutdown(self) -> None:
        self.pool.clear()
        self.pool.waitForDone(5000)

    def _store(self, path: str, image: QImage, generation: int) -> None:
        if generation != self._generation:
            return  # loaded for an earlier scan
        self._pending.discard(path)
        self._images[path] = image
        while len(self._images) > self._capacity:
            self._images.popitem(last=False)
        self.loaded.emit(path)
