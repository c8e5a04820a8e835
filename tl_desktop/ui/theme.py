"""Light, dark or the system's theme: a palette for the whole window, applied at start and when changed.

Dark is Qt's Fusion style with a dark ``QPalette`` (native Windows and macOS styles ignore palettes). Light is
the palette and style the application started with, as before, unless that was dark (a dark desktop), then a
light Fusion palette. "system" follows ``QStyleHints.colorScheme()`` and its changes while the app runs.
Widgets re-colour themselves on ``QEvent.PaletteChange`` (plots in ``widgets/themed_plot.py``, the confusion
matrix), so a change needs no restart; pyqtgraph's defaults follow for plots made later.
"""

from __future__ import annotations

import logging

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

log = logging.getLogger(__name__)

Role, Group = QPalette.ColorRole, QPalette.ColorGroup

# (role, active colour, disabled colour or None for the same)
_DARK: list[tuple[QPalette.ColorRole, str, str | None]] = [
    (Role.Window, "#2d2d30", None), (Role.WindowText, "#e8e8e8", "#7f7f7f"),
    (Role.Base, "#1f1f22", "#2a2a2d"), (Role.AlternateBase, "#2a2a2e", None),
    (Role.ToolTipBase, "#3a3a3e", None), (Role.ToolTipText, "#f0f0f0", None),
    (Role.Text, "#e8e8e8", "#7f7f7f"), (Role.PlaceholderText, "#a0a0a0", "#6a6a6a"),
    (Role.Button, "#3a3a3e", "#333336"), (Role.ButtonText, "#e8e8e8", "#7f7f7f"),
    (Role.BrightText, "#ff6b6b", None), (Role.Link, "#6cb4ff", None), (Role.LinkVisited, "#b69cff", None),
    (Role.Highlight, "#2f6fb5", "#4a4a4e"), (Role.HighlightedText, "#ffffff", "#b0b0b0"),
    (Role.Light, "#55555a", None), (Role.Midlight, "#444448", None), (Role.Mid, "#2a2a2d", None),
    (Role.Dark, "#1a1a1c", None), (Role.Shadow, "#0d0d0e", None),
]
_LIGHT: list[tuple[QPalette.ColorRole, str, str | None]] = [
    (Role.Window, "#efefef", None), (Role.WindowText, "#000000", "#8c8c8c"),
    (Role.Base, "#ffffff", "#efefef"), (Role.AlternateBase, "#f7f7f7", None),
    (Role.ToolTipBase, "#ffffdc", None), (Role.ToolTipText, "#000000", None),
    (Role.Text, "#000000", "#8c8c8c"), (Role.PlaceholderText, "#6e6e6e", "#a0a0a0"),
    (Role.Button, "#efefef", None), (Role.ButtonText, "#000000", "#8c8c8c"),
    (Role.BrightText, "#ffffff", None), (Role.Link, "#0057ae", None), (Role.LinkVisited, "#6a2ea6", None),
    (Role.Highlight, "#308cc6", "#c0c0c0"), (Role.HighlightedText, "#ffffff", None),
    (Role.Light, "#ffffff", None), (Role.Midlight, "#cacaca", None), (Role.Mid, "#b8b8b8", None),
    (Role.Dark, "#9f9f9f", None), (Role.Shadow, "#767676", None),
]
# Colours of resources/style.qss that are too dark to read on a dark window, lightened there.
DARK_SHEET = """
QLabel[role="badge-ok"] { color: #5fd08a; }
QLabel[role="badge-warn"] { color: #ff8a70; }
"""


class _Started:
    """What the application looked like before any theme was applied (restored by "light")."""

    palette: QPalette | None = None
    style: str = ""
    sheet: str = ""
    current: str = ""  # the theme setting now applied ("light", "dark", "system")
    listening = False


def _palette(colours: list[tuple[QPalette.ColorRole, str, str | None]]) -> QPalette:
    palette = QPalette()
    for role, active, disabled in colours:
        for group in (Group.Active, Group.Inactive):
            palette.setColor(group, role, QColor(active))
        palette.setColor(Group.Disabled, role, QColor(disabled or active))
    return palette


def dark_palette() -> QPalette:
    return _palette(_DARK)


def light_palette() -> QPalette:
    return _palette(_LIGHT)


def is_dark(palette: QPalette | None = None) -> bool:
    """Whether ``palette`` (the application's by default) draws light text on a dark window."""
    palette = palette or QApplication.palette()
    return palette.color(Role.Window).lightness() < 128


def system_is_dark() -> bool:
    """The desktop's colour scheme (Qt 6.5+); unknown (e.g. offscreen) counts as light."""
    app = QApplication.instance()
    return app is not None and app.styleHints().colorScheme() == Qt.ColorScheme.Dark


def resolve(name: str) -> str:
    """"light" or "dark" for a theme setting ("system" follows the desktop)."""
    if name == "system":
        return "dark" if system_is_dark() else "light"
    return "dark" if name == "dark" else "light"


def apply_theme(name: str) -> str:
    """Apply the theme setting ``name`` to the running application; returns "light" or "dark" as applied."""
    app = QApplication.instance()
    if app is None:
        raise RuntimeError("apply_theme needs a QApplication")
    _remember_start(app)
    _Started.current = name
    resolved = resolve(name)
    style = "fusion" if resolved == "dark" else _Started.style or "fusion"
    if app.style().name().lower() != style.lower():
        app.setStyle(style)
    if resolved == "dark":
        palette, extra = dark_palette(), DARK_SHEET
    else:
        started = _Started.palette
        palette = started if started is not None and not is_dark(started) else light_palette()
        extra = ""
    app.setPalette(palette)
    app.setStyleSheet(_Started.sheet + extra)  # re-resolves the sheet's palette(...) colours as well
    _theme_plots(palette)
    _follow_system(app)
    log.info("theme %s applied (%s)", name, resolved)
    return resolved


def _remember_start(app: QApplication) -> None:
    if _Started.palette is None:
        _Started.palette = QPalette(app.palette())
        _Started.style = app.style().name()
        _Started.sheet = app.styleSheet()


def _theme_plots(palette: QPalette) -> None:
    """pyqtgraph's defaults, for plot items made later that take no colour from ``themed_plot.make_plot``."""
    pg.setConfigOptions(background=palette.color(Role.Base), foreground=palette.color(Role.Text))


def _follow_system(app: QApplication) -> None:
    """Once: re-apply "system" when the desktop switches between light and dark."""
    if _Started.listening:
        return
    _Started.listening = True
    app.styleHints().colorSchemeChanged.connect(_on_system_change)


def _on_system_change(*_args: object) -> None:
    if _Started.current == "system":
        apply_theme("system")

