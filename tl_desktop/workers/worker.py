"""A generic worker running a plain core function in a QThread, speaking in past-tense signals.

The function is called as ``fn(*args, callback=<emit>, cancel=<CancelToken>, **kwargs)``. Each event it
passes to ``callback`` is re-emitted as ``progressed(event)`` (queued to the GUI thread). ``stop()`` only
sets the token; the function raises ``Cancelled`` at its next check and the worker emits ``aborted``.
Exactly one of ``finished``, ``errored`` or ``aborted`` is emitted, after the thread has ended, so a
receiver may drop the worker right away. Modelled on superqt's ``WorkerBaseSignals``.

``errored`` carries a ``Failure``: the exception object itself (receivers branch on its type, never on its
text), its one-line message and the formatted traceback for "Show Details...".
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from tl_desktop.core.events import Cancelled, CancelToken
from tl_desktop.workers.child import RemoteTraceback

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """What ``Worker.errored`` carries: the exception the function raised and its formatted traceback.

    The exception's own traceback is dropped once formatted (``details`` keeps the text), so a failed run's
    frames, and the model or tensors they reference, are not kept alive by a view that holds on to it.
    """

    error: Exception
    details: str

    @property
    def message(self) -> str:
        """One readable line: the first line of the error's ``summary`` (the line without command-line advice,
        e.g. ``RunIntegrityError``) or of ``str(error)``, or the exception's type name when it has none."""
        text = str(getattr(self.error, "summary", None) or self.error).strip()
        return text.splitlines()[0] if text else type(self.error).__name__

    @classmethod
    def of(cls, error: Exception) -> Failure:
        """The failure of ``error`` with its traceback formatted now, then released (also along its chain).

        An error raised in a child process (``child.run_in_child``) carries the child's traceback as its
        cause: that text is the details, as it would have been had the function run in this process."""
        remote = error.__cause__
        details = remote.text if isinstance(remote, RemoteTraceback) else "".join(traceback.format_exception(error))
        seen: BaseException | None = error
        while seen is not None and seen.__traceback__ is not None:
            seen.__traceback__ = None
            seen = seen.__cause__ or seen.__context__
        return cls(error, details)


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
    errored = Signal(object)  # a Failure: the exception object and its formatted traceback
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
            self._outcome = ("errored", Failure.of(exc))

    # --- back in the GUI thread ---------------------------------------------------------------------
    def _on_thread_finished(self) -> None:
        assert self._thread is not None
        self._thread.wait()
        self._ended = True
        kind, value = self._outcome or ("errored", Failure(RuntimeError("the task ended without a result"), ""))
        if kind == "finished":
            self.finished.emit(value)
        elif kind == "aborted":
            self.aborted.emit()
        else:
            self.errored.emit(value)
        self.ended.emit()
        Worker.live.discard(self)
