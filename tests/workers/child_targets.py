"""Functions that ``tests/workers/test_child.py`` runs in a child process (importable there by name)."""

from __future__ import annotations

import logging
import os
import time

from tl_desktop.core.errors import DataError, RunIntegrityError
from tl_desktop.core.events import Progress

log = logging.getLogger("tests.child")


def count(n: int, *, callback, cancel, pid_file: str | None = None) -> dict:
    """Emit Progress 1..n, checking the token before each; returns the child's pid."""
    for i in range(n):
        cancel.raise_if_cancelled()
        callback(Progress("count", i + 1, n))
    log.warning("counted to %d", n)
    return {"n": n, "pid": os.getpid()}


def until_cancelled(*, callback, cancel) -> str:
    """Emit one event, then wait (at most a minute) for the token to be set."""
    callback(Progress("waiting", 0, 1))
    end = time.monotonic() + 60
    while time.monotonic() < end:
        cancel.raise_if_cancelled()
        time.sleep(0.01)
    return "never cancelled"


def refuse_folder(*, callback, cancel) -> None:
    raise DataError("/no/such/folder does not exist: choose the folder of your images")


def refuse_changed_images(*, callback, cancel) -> None:
    raise RunIntegrityError("2 images changed; run with --allow-changed", summary="2 images changed",
                            problems=("a.png", "b.png"))


def die(code: int, *, callback, cancel) -> None:
    os._exit(code)
