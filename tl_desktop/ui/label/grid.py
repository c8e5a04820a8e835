"""The Label step's grid mode: the next images of the queue as thumbnails; select several, press a class key.

Thumbnails load lazily in a pool thread (``workers.thumbnails.ThumbnailCache``, as the Data step's grid);
each caption shows the proposed label while the probe has one.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QSize, Qt
from PySide6.QtWidgets import QAbstractItemView, QListView, QVBoxLayout, QWidget

from tl_desktop.ui.widgets.common import hint
from tl_desktop.ui.widgets.thumbnail_grid import ThumbnailModel, Tile
from tl_desktop.workers.thumbnails import ThumbnailCache

GRID_IMAGES = 20  # images of the queue shown at a time
TILE = 112  # px


class LabelGrid(QWidget):
    """The next ``GRID_IMAGES`` open images; ``selected_paths()`` are those to label with the next key."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cache = ThumbnailCache(TILE, parent=self)
        self.model = ThumbnailModel(self.cache, self)
        self.view = QListView(self)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(True)
        self.view.setIconSize(QSize(TILE, TILE))
        self.view.setGridSize(QSize(TILE + 24, TILE + 40))
        self.view.setWordWrap(True)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setToolTip("Click, Ctrl+click or Shift+click to select; Ctrl+A selects all")
        self.view.setModel(self.model)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(hint("Select the images that belong together (click, Ctrl+click, Shift+click, Ctrl+A), "
                           "then press the class key: all of them get that label. Enter accepts the proposed "
                           "label of each selected image."))
        box.addWidget(self.view, 1)
        self.paths: list[str] = []  # relative paths of the tiles, in order

    def set_tiles(self, tiles: list[tuple[str, Tile]]) -> None:
        """Show ``(relative path, tile)`` pairs; the selection is cleared."""
        self.paths = [rel for rel, _ in tiles]
        self.model.set_tiles([tile for _, tile in tiles])

    def selected_paths(self) -> list[str]:
        rows = sorted(i.row() for i in self.view.selectionModel().selectedIndexes())
        return [self.paths[r] for r in rows if r < len(self.paths)]

    def select(self, paths: list[str]) -> None:
        """Select the tiles of ``paths`` (what a user's clicks do; used by tests and after undo)."""
        selection = self.view.selectionModel()
        selection.clearSelection()
        for row, path in enumerate(self.paths):
            if path in paths:
                selection.select(self.model.index(row), QItemSelectionModel.SelectionFlag.Select)

    def shutdown(self) -> None:
        self.cache.shutdown()
