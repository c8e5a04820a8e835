"""The picture of the image viewer: zoom with the wheel, pan by dragging, window/level by right- or Ctrl-drag.

The canvas only shows a pixmap and reports gestures; what a drag means for the window is the viewer's
business (``window_dragged(dx, dy)`` in screen pixels, ``window_drag_ended`` on release).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QMouseEvent, QPainter, QPixmap, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget

ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.02, 40.0


class ImageCanvas(QGraphicsView):
    """One image in a scene; ``zoom_changed(factor)`` after every zoom (1.0 = one image pixel per screen pixel)."""

    window_dragged = Signal(float, float)
    window_drag_ended = Signal()
    zoom_changed = Signal(float)
    hovered = Signal(int, int)  # image pixel under the mouse (column, row); (-1, -1) outside the image

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self.item)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setBackgroundBrush(Qt.GlobalColor.black)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setMouseTracking(True)
        self.windowing_enabled = False
        self.fitted = True  # follow the window size until the user zooms
        self._drag_from: QPointF | None = None

    # --- content ------------------------------------------------------------------------------------
    def set_pixmap(self, pixmap: QPixmap, scale: float = 1.0) -> None:
        """Show ``pixmap`` drawn ``scale`` times larger (a reduced preview during a drag keeps its place)."""
        first = self.item.pixmap().isNull()
        self.item.setPixmap(pixmap)
        self.item.setScale(scale)
        self.scene().setSceneRect(self.item.sceneBoundingRect())
        if first:
            self.fit()

    def image_size(self) -> tuple[int, int]:
        rect = self.item.sceneBoundingRect()
        return round(rect.width()), round(rect.height())

    # --- zoom ---------------------------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        """The whole image in the window."""
        if not self.item.pixmap().isNull():
            self.fitInView(self.item, Qt.AspectRatioMode.KeepAspectRatio)
        self.fitted = True
        self.zoom_changed.emit(self.zoom())

    def actual_size(self) -> None:
        """One image pixel per screen pixel (100 %), centred where the view is now."""
        self.set_zoom(1.0)

    def zoom_by(self, factor: float) -> None:
        self.set_zoom(self.zoom() * factor)

    def set_zoom(self, value: float) -> None:
        value = min(MAX_ZOOM, max(MIN_ZOOM, value))
        current = self.zoom() or 1.0
        self.scale(value / current, value / current)
        self.fitted = False
        self.zoom_changed.emit(self.zoom())

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt API
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(ZOOM_STEP ** steps)
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if self.fitted:
            self.fit()

    # --- window/level drag --------------------------------------------------------------------------
    def _is_window_drag(self, event: QMouseEvent) -> bool:
        ctrl_left = (event.button() == Qt.MouseButton.LeftButton
                     and bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier))
        return self.windowing_enabled and (event.button() == Qt.MouseButton.RightButton or ctrl_left)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._is_window_drag(event):
            self._drag_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.SizeAllCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._drag_from is not None:
            delta = event.position() - self._drag_from
            self._drag_from = event.position()
            self.window_dragged.emit(delta.x(), delta.y())
            event.accept()
        else:
            super().mouseMoveEvent(event)
        self._report_hover(event.position())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._drag_from is not None:
            self._drag_from = None
            self.viewport().unsetCursor()
            self.window_drag_ended.emit()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def _report_hover(self, position: QPointF) -> None:
        point = self.mapToScene(position.toPoint())
        width, height = self.image_size()
        x, y = int(point.x()), int(point.y())
        inside = 0 <= point.x() < width and 0 <= point.y() < height
        self.hovered.emit(x if inside else -1, y if inside else -1)
