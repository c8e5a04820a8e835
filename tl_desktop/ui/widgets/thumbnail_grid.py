"""A grid of image thumbnails (model/view), loaded lazily: only the visible tiles are ever decoded.

Smooth with tens of thousands of images: uniform item sizes, batched layout, a placeholder until the pool
thread has decoded a tile, and queued loads dropped when the user scrolls on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPixmap, QPixmapCache
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QListView, QVBoxLayout, QWidget

from tl_desktop.workers.thumbnails import ThumbnailCache

QPixmapCache.setCacheLimit(96 * 1024)  # KiB


@dataclass(frozen=True)
class Tile:
    path: str  # absolute, what the loader reads
    caption: str  # one short line under the tile
    tooltip: str


class ThumbnailModel(QAbstractListModel):
    def __init__(self, cache: ThumbnailCache, parent: Any = None) -> None:
        super().__init__(parent)
        self._cache = cache
        self._tiles: list[Tile] = []
        self._rows: dict[str, int] = {}
        self._placeholder = QPixmap(cache.size, cache.size)
        self._placeholder.fill(QColor(128, 128, 128, 40))
        cache.loaded.connect(self._on_loaded)

    def set_tiles(self, tiles: list[Tile]) -> None:
        self.beginResetModel()
        self._tiles = tiles
        self._rows = {t.path: i for i, t in enumerate(tiles)}
        self.endResetModel()

    def tile(self, row: int) -> Tile:
        return self._tiles[row]

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._tiles)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        tile = self._tiles[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return tile.caption
        if role == Qt.ItemDataRole.ToolTipRole:
            return tile.tooltip
        if role == Qt.ItemDataRole.DecorationRole:
            return self._pixmap(tile.path)
        return None

    def _pixmap(self, path: str) -> QPixmap:
        pixmap = QPixmapCache.find(path)
        if pixmap is not None and not pixmap.isNull():
            return pixmap
        image = self._cache.get(path)
        if image is None or image.isNull():
            return self._placeholder
        pixmap = QPixmap.fromImage(image)
        QPixmapCache.insert(path, pixmap)
        return pixmap

    def _on_loaded(self, path: str) -> None:
        row = self._rows.get(path)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class ThumbnailGrid(QWidget):
    """Thumbnails with a class filter above them; ``selected_path`` when a tile becomes current (click or
    keys), ``activated_path`` when it is double-clicked."""

    activated_path = Signal(str)
    selected_path = Signal(str)

    def __init__(self, size: int = 96, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cache = ThumbnailCache(size, parent=self)
        self.model = ThumbnailModel(self.cache, self)
        self._groups: dict[str, list[Tile]] = {}
        self.filter = QComboBox(toolTip="Show the images of one class, or of all classes")
        self.filter.currentIndexChanged.connect(self._apply_filter)
        self.count = QLabel()
        self.view = self._make_view(size)
        top = QHBoxLayout()
        top.addWidget(QLabel("Show:"))
        top.addWidget(self.filter, 1)
        top.addWidget(self.count)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.view)

    def _make_view(self, size: int) -> QListView:
        view = QListView(self)
        view.setViewMode(QListView.ViewMode.IconMode)
        view.setResizeMode(QListView.ResizeMode.Adjust)
        view.setMovement(QListView.Movement.Static)
        view.setUniformItemSizes(True)
        view.setLayoutMode(QListView.LayoutMode.Batched)
        view.setBatchSize(200)
        view.setIconSize(QSize(size, size))
        view.setGridSize(QSize(size + 16, size + 28))
        view.setWordWrap(False)
        view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        view.setModel(self.model)
        view.verticalScrollBar().valueChanged.connect(lambda _v: self.cache.cancel_pending())
        view.doubleClicked.connect(lambda i: self.activated_path.emit(self.model.tile(i.row()).path))
        view.selectionModel().currentChanged.connect(
            lambda i, _old: i.isValid() and self.selected_path.emit(self.model.tile(i.row()).path))
        return view

    def set_groups(self, groups: dict[str, list[Tile]], all_label: str = "All images") -> None:
        """Replace the content: one entry per group (class) plus an "all" entry when there are several."""
        self.cache.clear()
        QPixmapCache.clear()
        self._groups = dict(groups)
        if len(groups) > 1:
            self._groups = {all_label: [t for tiles in groups.values() for t in tiles], **self._groups}
        self.filter.blockSignals(True)
        self.filter.clear()
        for name, tiles in self._groups.items():
            self.filter.addItem(f"{name} ({len(tiles):,})", name)
        self.filter.blockSignals(False)
        self._apply_filter()

    def _apply_filter(self) -> None:
        name = self.filter.currentData()
        tiles = self._groups.get(name, []) if name is not None else []
        self.cache.cancel_pending()
        self.model.set_tiles(tiles)
        self.count.setText(f"{len(tiles):,} image{'' if len(tiles) == 1 else 's'}")

    def shutdown(self) -> None:
        self.cache.shutdown()


def tiles_for_samples(report: Any, samples: list[Any] | None = None) -> dict[str, list[Tile]]:
    """Group a scan's samples by class into tiles (absolute paths, file name captions)."""
    groups: dict[str, list[Tile]] = {c: [] for c in report.classes}
    for sample in report.samples if samples is None else samples:
        path = str(report.abspath(sample))
        tip = f"{sample.path}\nclass: {sample.label}\n{sample.width} × {sample.height} px"
        groups.setdefault(sample.label, []).append(Tile(path, Path(sample.path).name, tip))
    return groups
