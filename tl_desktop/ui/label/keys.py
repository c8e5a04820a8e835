"""The Label step's keys (also written on its buttons; see docs/labelling.md)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent


def key_action(event: QKeyEvent) -> tuple[str, int] | None:
    """What a key press means in the Label step: ("class", index) | ("accept" | "skip" | "not_sure" | "undo" |
    "grid", 0), or None for keys it leaves alone."""
    key, mods = event.key(), event.modifiers()
    ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
    if ctrl:
        return ("undo", 0) if key == Qt.Key.Key_Z else None
    if Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
        return "class", key - Qt.Key.Key_1
    return {Qt.Key.Key_Return: ("accept", 0), Qt.Key.Key_Enter: ("accept", 0), Qt.Key.Key_S: ("skip", 0),
            Qt.Key.Key_Space: ("skip", 0), Qt.Key.Key_N: ("not_sure", 0), Qt.Key.Key_Backspace: ("undo", 0),
            Qt.Key.Key_G: ("grid", 0)}.get(key)
