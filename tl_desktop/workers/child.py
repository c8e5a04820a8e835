"""Run a core function in a child process, as if it ran in the calling thread.

Training in the window's own process competes with the window for the GIL: every time the event loop wants to
paint, it waits for the training thread's Python code. ``run_in_child`` runs the function in a fresh process
(the ``spawn`` context, which the frozen build supports through ``multiprocessing.freeze_support`` in
``main.py``) and drives it from the calling thread, so the Worker's signals, cancel and errors stay as they are:

- each event the function emits is sent back and passed to ``callback`` in the calling thread; the child waits
  for that call to return before it goes on, so a callback that cancels sees the same point in the run as it
  would in-thread;
- ``cancel`` (the caller's ``CancelToken``) is mirrored onto a ``multiprocessing.Event`` that the child's token
  reads, so the function raises ``Cancelled`` at its next check; when the calling process dies the child cancels
  itself, leaving a run that can be continued;
- an exception is re-raised here as the same type (``UserFacingError`` subclasses pickle with their attributes),
  with the child's traceback text as its ``__cause__`` (``RemoteTraceback``, what ``Failure.details`` shows);
- the function's log records are handled by this process's loggers (the app's log file).

No Qt here: the child imports only this module and the function's own.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import pickle
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from tl_desktop.core.errors import TrainingError
from tl_desktop.core.events import Cancelled, CancelToken

log = logging.getLogger(__name__)

POLL_S = 0.05  # how often the calling thread looks at its cancel token while the child is busy
ACK = b"k"


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in the child; set as that exception's ``__cause__``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


@dataclass
class _Child:
    """A started child process, its end of the pipe, its cancel flag, and the environment it was started in."""

    process: Any
    conn: Connection
    stop: Any
    started_in: tuple[dict[str, str], list[str], str] = field(default_factory=lambda: _environment())

    loaded: bool = False

    def ready(self) -> bool:
        """True once the child has imported its ``preload`` modules (its first message says so)."""
        if not self.loaded and self.conn.poll():
            self.loaded = pickle.loads(self.conn.recv_bytes())[0] == "loaded"
        return self.loaded

    def fits(self) -> bool:
        """Alive, and started with this process's environment, path and folder (a test may change them)."""
        return self.process.is_alive() and self.started_in == _environment()

    def close(self, wait_s: float = 30) -> None:
        self.stop.set()  # a child that has not answered stops at its next check
        self.conn.close()  # a child waiting for its job ends
        self.process.join(wait_s)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


_spare: _Child | None = None
_spare_preload: tuple[str, ...] | None = None
_spare_lock = threading.Lock()


def prepare_spare(preload: tuple[str, ...]) -> None:
    """Start a child that imports the ``preload`` modules now and waits for its job, so that the next
    ``run_in_child`` does not wait for torch to load; after each run a new one is prepared the same way."""
    global _spare, _spare_preload
    with _spare_lock:
        _spare_preload = preload
        if _spare is not None and _spare.fits():
            return
        old, _spare = _spare, _spawn(preload)
    if old is not None:
        old.close(5)


def spare_ready() -> bool:
    """True when a spare child has loaded the engine (``prepare_spare``); for benchmarks and status."""
    with _spare_lock:
        return _spare is not None and _spare.fits() and _spare.ready()


def _take_child(module: str) -> _Child:
    global _spare
    with _spare_lock:
        spare, _spare = _spare, None
    if spare is not None and spare.fits():
        return spare
    if spare is not None:
        log.info("the spare engine process was started in another environment or has ended: starting one now")
        spare.close(5)
    return _spawn((module,))


def _spawn(preload: tuple[str, ...]) -> _Child:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe(duplex=True)
    stop = context.Event()
    process = context.Process(target=_child_main, name="tl-engine", daemon=True, args=(preload, theirs, stop))
    process.start()
    theirs.close()
    return _Child(process, ours, stop)


def _environment() -> tuple[dict[str, str], list[str], str]:
    return dict(os.environ), list(sys.path), os.getcwd()


def run_in_child(target: str, *args: Any, callback: Callable[[Any], None], cancel: CancelToken,
                 on_idle: Callable[[], None] | None = None, **kwargs: Any) -> Any:
    """``target(*args, callback=, cancel=, **kwargs)`` in a child process; returns what it returned.

    Args:
        target: ``"package.module:function"``, imported in the child only (so the caller need not load torch).
        on_idle: called in this thread every ``POLL_S`` or so while no message comes (e.g. ``Throttled.tick``).

    Raises:
        Cancelled: the function stopped at a cancel check.
        Exception: what the function raised, the same type, with ``RemoteTraceback`` as its cause.
        TrainingError: the child process ended without an answer (crashed, killed, out of memory).
    """
    child = _take_child(target.split(":")[0])
    try:
        child.conn.send_bytes(pickle.dumps((target, args, kwargs, logging.getLogger().getEffectiveLevel())))
        return _drive(child.process, child.conn, child.stop, callback, cancel, on_idle or (lambda: None))
    finally:
        child.close()
        if _spare_preload is not None:
            prepare_spare(_spare_preload)


def _drive(process, conn: Connection, stop, callback: Callable[[Any], None], cancel: CancelToken,
           on_idle: Callable[[], None]) -> Any:
    """Relay the child's messages until its answer; mirror ``cancel`` onto ``stop`` meanwhile."""
    while True:
        if cancel.cancelled:
            stop.set()
        ready = wait([conn, process.sentinel], POLL_S)
        if conn not in ready:
            if process.sentinel in ready:  # ended without an answer (a closed pipe is readable: not here)
                raise _crashed(process)
            on_idle()
            continue
        try:
            kind, payload = pickle.loads(conn.recv_bytes())
        except EOFError:
            raise _crashed(process) from None
        if kind == "event":
            try:
                callback(payload)
            finally:
                if cancel.cancelled:
                    stop.set()  # before the child goes on, as an in-thread callback that cancels would
                conn.send_bytes(ACK)
        elif kind == "loaded":
            continue
        elif kind == "log":
            logging.getLogger(payload.name).handle(payload)
        elif kind == "finished":
            return payload
        elif kind == "aborted":
            raise Cancelled("cancelled by the user")
        else:
            error, text = payload
            raise error from RemoteTraceback(text)


def _crashed(process) -> TrainingError:
    process.join(5)
    code = process.exitcode
    log.error("the %s process ended without an answer (exit code %s)", process.name, code)
    return TrainingError(f"the training process stopped unexpectedly (exit code {code}); the computer may have run "
                         "out of memory. Select the run and press “Continue run”, or use smaller images")


# --- in the child ------------------------------------------------------------------------------------

class SharedToken(CancelToken):
    """A CancelToken whose flag is a ``multiprocessing.Event`` set by the parent process."""

    def __init__(self, event) -> None:
        super().__init__()
        self._shared = event

    def cancel(self) -> None:
        self._shared.set()

    @property
    def cancelled(self) -> bool:
        return self._shared.is_set()

    def raise_if_cancelled(self) -> None:
        if self._shared.is_set():
            raise Cancelled("cancelled by the user")


class _Channel:
    """The child's end of the pipe: messages are pickled here (an unpicklable one fails in the sender)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, kind: str, payload: Any, *, wait_ack: bool = False) -> None:
        data = pickle.dumps((kind, payload))
        with self._lock:
            self._conn.send_bytes(data)
            if wait_ack:
                self._conn.recv_bytes()


class _LogRelay(logging.Handler):
    """Sends the child's log records to the parent, formatted like ``QueueHandler.prepare``."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg, record.args = record.getMessage(), None
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            self._channel.send("log", record)
        except Exception:  # noqa: BLE001 - a log line must never break the run
            self.handleError(record)


def _child_main(preload: tuple[str, ...], conn: Connection, stop) -> None:
    """The child process: import ``preload``, wait for the job, run it and send back its events, then its
    answer. A parent that closes the pipe before sending a job ends it."""
    channel = _Channel(conn)
    token = SharedToken(stop)
    _watch_parent(token)
    _leave_a_core_to_the_window()
    started = time.perf_counter()
    for module in preload:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001, S112 - the job's own import reports it, typed
            continue
    loaded = time.perf_counter() - started
    channel.send("loaded", None)
    try:
        target, args, kwargs, log_level = pickle.loads(conn.recv_bytes())
    except (EOFError, OSError):
        return
    root = logging.getLogger()
    root.handlers[:] = [_LogRelay(channel)]
    root.setLevel(log_level)
    log.info("engine process %d: %s loaded in %.1f s, job after %.1f s", os.getpid(), ", ".join(preload), loaded,
             time.perf_counter() - started)
    try:
        module, name = target.split(":")
        fn = getattr(importlib.import_module(module), name)
        result = fn(*args, callback=lambda event: channel.send("event", event, wait_ack=True), cancel=token,
                    **kwargs)
        channel.send("finished", result)
    except Cancelled:
        channel.send("aborted", None)
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the parent, typed
        text = "".join(traceback.format_exception(exc))  # before _portable drops the traceback
        channel.send("errored", (_portable(exc), text))
    finally:
        conn.close()


def _portable(exc: Exception) -> Exception:
    """``exc`` when it survives pickling as itself, else a RuntimeError naming it (the parent still shows it)."""
    try:
        copy = pickle.loads(pickle.dumps(exc))
        if type(copy) is type(exc) and str(copy) == str(exc):
            exc.__traceback__ = exc.__cause__ = exc.__context__ = None
            return exc
    except Exception:  # noqa: BLE001, S110 - any pickling failure: fall back below
        pass
    return RuntimeError(f"{type(exc).__name__}: {exc}")


def _watch_parent(token: SharedToken) -> None:
    """Cancel the run when the window's process ends (killed, crashed), so the run folder is left resumable."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        token.cancel()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _leave_a_core_to_the_window() -> None:
    """As the window's warm-up did for in-process training: torch may use every core but one."""
    cores = os.cpu_count() or 1
    if cores > 1:
        import torch

        torch.set_num_threads(min(torch.get_num_threads(), cores - 1))
