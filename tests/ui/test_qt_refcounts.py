"""Guard against a Qt binding that drops references to None/True on every call.

PySide6/shiboken6 6.12.0 returns None and booleans without a new reference, which is only safe where they are
immortal (Python 3.12+). On Python 3.11 every ``widget.setText(...)``, ``signal.emit(...)`` ... then takes one
reference away, and the app aborts with "Fatal Python error: none_dealloc/bool_dealloc" after a few minutes of
use (first seen here scrolling 10,000 thumbnails). pyproject.toml keeps such versions out on Python 3.11.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    fired = Signal(str)


def test_calls_returning_none_or_bool_keep_their_references():
    obj, emitter = QObject(), _Emitter()
    emitter.fired.connect(lambda _text: None)
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(50):
        obj.setObjectName("x")  # returns None
        emitter.fired.emit("x")  # returns True
    assert sys.getrefcount(None) - none_before > -25, (
        "this PySide6 drops a reference to None on each call: the app would crash; use PySide6 < 6.12 on "
        "Python 3.11")
    assert sys.getrefcount(True) - true_before > -25, "this PySide6 drops a reference to True on each emit"
