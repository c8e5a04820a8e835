"""Small widget helpers shared by the step views (labels with roles, icons, progress text)."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QFrame, QLabel, QWidget

from tl_desktop import paths


@cache
def icon(name: str) -> QIcon:
    return QIcon(str(paths.resource("icons", f"{name}.svg")))


def label(text: str, role: str | None = None, *, wrap: bool = False, parent: QWidget | None = None) -> QLabel:
    """A QLabel with a style role from resources/style.qss (title, hint, figure, badge-ok, badge-warn)."""
    widget = QLabel(text, parent)
    if role:
        widget.setProperty("role", role)
    widget.setWordWrap(wrap)
    return widget


def title(text: str) -> QLabel:
    return label(text, "title")


def hint(text: str) -> QLabel:
    widget = label(text, "hint", wrap=True)
    widget.setOpenExternalLinks(False)
    return widget


def separator() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.HLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    return line


def duration(seconds: float) -> str:
    """3 s, 2 min 05 s, 1 h 04 min: how people say durations."""
    if seconds < 10:
        return f"{max(0.0, seconds):.1f} s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"
