"""A generic worker running a plain core function in a QThread, speaking in past-tense signals.

The function is called as ``fn(*args, callback=<emit>, cancel=<CancelToken>, **kwargs)``. Each event it
passes to ``callback`` is re-emitted as ``progressed(event)`` (queued to the GUI thread). ``stop()`` only
sets the token; the function raises ``Cancelled`` at its next check and the worker emits ``aborted``.
Exactly one of ``finished``, ``errored`` or ``aborted`` is emitted, after the thread has ended, so a
receiver may drop the worker right away. Modelled on superqt's ``WorkerBaseSignals``.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from tl_desktop.core.events import Cancelled, CancelToken

log = logging.getLogger(__name__)


class _Thread(QThread):
    def __init__(self, job: Callable[[], None], name: str) -> None:
        super().__init__()
        self._job = job
        self.setObjectName(name)

    def run(self) -> None:  # runs in the new thread
        self._job()


class Worker(QObject):
    """Runs ``fn`` once in its own QThread. Create a new Worker for each run."""

    started = Signal()
    progressed = Signal(object)
    errored = Signal(str, str)  # one readable line, technical details (traceback)
    finished = Signal(object)  # the function's return value
    aborted = Signal()
    ended = Signal()  # after any of finished / errored / aborted

    # Strong references to running workers: a running QThread must never be garbage-collected, and the
    # tests check this set is empty at the end of each test (no dangling threads).
    live: set[Worker] = set()

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str | None = None, **kwargs: Any) -> None:
        super().__init__()
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self.name = name or getattr(fn, "__name__", "task")
        self.token = CancelToken()
        self._outcome: tuple[str, Any] | None = None
        self._thread: _Thread | None = None
        self._ended = False

    # --- controls (GUI thread) ----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a Worker runs once; create a new one")
        self._thread = _Thread(self._work, self.name)
        self._thread.finished.connect(self._on_thread_finished)
        Worker.live.add(self)
        self._thread.start()
        self.started.emit()

    def stop(self) -> None:
        """Ask the function to stop at its next check; never blocks."""
        self.token.cancel()

    def is_running(self) -> bool:
        return self._thread is not None and not self._ended

    def wait(self, ms: int = 30_000) -> bool:
        """Block until the thread ended (for shutdown only; the GUI never waits on a running worker)."""
        return self._thread.wait(ms) if self._thread is not None else True

    # --- worker thread ------------------------------------------------------------------------------
    def _emit(self, event: Any) -> None:
        self.progressed.emit(event)

    def _work(self) -> None:
        try:
            result = self._fn(*self._args, callback=self._emit, cancel=self.token, **self._kwargs)
            self._outcome = ("finished", result)
        except Cancelled:
            self._outcome = ("aborted", None)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a readable dialog, never a crash
            log.exception("%s failed", self.name)
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self._outcome = ("errored", (message, traceback.format_exc()))

    # --- back in the GUI thread ---------------------------------------------------------------------
    def _on_thread_finished(self) -> None:
        assert self._thread is not None
        self._thread.wait()
        self._ended = True
        kind, value = self._outcome or ("errored", ("the task ended without a result", ""))
        if kind == "finished":
            self.finished.emit(value)
        elif kind == "aborted":
            self.aborted.emit()
        else:
            self.errored.emit(*value)
        self.ended.emit()
        Worker.live.discard(self)
