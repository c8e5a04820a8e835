"""Ownership of a run folder across processes: ``RUN_DIR/.lock`` names the one process that writes it.

Training, resuming, the clinical evaluation and export take the lock (``run_lock``) for as long as they write,
so a second writer (another window, another terminal) is refused with one line naming the owner instead of
mixing its files into the first one's. The lock file is made with ``O_CREAT | O_EXCL`` (atomic on local
and network drives) and holds the owner's pid, host, boot id, start time and purpose.

A lock left by a process that died (killed, power cut) is recognised on the same host (the pid no longer runs,
or the machine was restarted since) and taken over; a lock of another host cannot be checked from here and is
reported with the way out (delete the file when that process is gone). Within one process the lock is
re-entrant (export inside a training window, an evaluation inside an export); threads are kept apart by
their own locks (``evaluation.current.clinical_lock``).

Taking a lock also removes the hidden ``.NAME.*.tmp`` files that killed atomic writers (``fsutil``) left in
the run folder and its ``checkpoints/``.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tl_desktop.core.errors import RunBusyError, RunError
from tl_desktop.core.fsutil import remove_stale_temps

F = TypeVar("F", bound=Callable[..., Any])

LOCK_NAME = ".lock"
_UNWRITTEN_GRACE_S = 30.0  # an empty lock file this old is a writer killed between create and write
_MAX_LOCK_BYTES = 4096

_held: dict[str, tuple[int, str]] = {}  # real path -> (re-entry count, token of our lock file)
_guard = threading.Lock()


@dataclass(frozen=True)
class LockOwner:
    """Who holds a run folder: read from its lock file."""

    pid: int
    host: str
    started: float
    purpose: str
    boot_id: str = ""
    token: str = ""

    def describe(self) -> str:
        stamp = time.localtime(self.started)
        when = time.strftime("%H:%M" if stamp[:3] == time.localtime()[:3] else "%Y-%m-%d %H:%M", stamp)
        return f"process {self.pid} on host {self.host} since {when} ({self.purpose})"


@contextmanager
def run_lock(run_dir: Path | str, purpose: str, *, create: bool = False) -> Iterator[None]:
    """Hold ``run_dir``'s lock while the block writes to it; re-entrant within this process.

    With ``create`` (a new run) a missing folder is made, and removed again on release when the block left it
    empty, so a refused training leaves nothing behind; without it a missing folder is not locked (the block
    reports it). A folder this process cannot write to (read-only drive) is not locked either: nothing can be
    written there anyway, and readers such as export still work.

    Raises:
        RunBusyError: another live process holds the lock (its pid, host and start time in the message).
        OSError: the folder cannot be made.
    """
    folder = Path(run_dir)
    created = create and not folder.exists()
    if created:
        folder.mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir():
        yield
        return
    key = os.path.realpath(folder)
    with _guard:
        count, token = _held.get(key, (0, ""))
        if count == 0:
            token = _acquire(folder, purpose)
        _held[key] = (count + 1, token)
    try:
        yield
    finally:
        with _guard:
            count, token = _held.pop(key)
            if count > 1:
                _held[key] = (count - 1, token)
            else:
                _release(folder, token, created)


def locking(purpose: str) -> Callable[[F], F]:
    """Decorator: hold the lock of the run folder passed as the first argument for the whole call."""
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(run_dir, *args, **kwargs):
            with run_lock(run_dir, purpose):
                return fn(run_dir, *args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorate


def lock_owner(run_dir: Path | str) -> LockOwner | None:
    """The process named in ``run_dir``'s lock file, or None when there is none (or it cannot be read)."""
    path = Path(run_dir) / LOCK_NAME
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read(_MAX_LOCK_BYTES))
        return LockOwner(pid=int(data["pid"]), host=str(data["host"]), started=float(data["started"]),
                         purpose=str(data.get("purpose", "writing")), boot_id=str(data.get("boot_id", "")),
                         token=str(data.get("token", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _acquire(folder: Path, purpose: str) -> str:
    """Create the lock file (taking over a stale one); returns its token, or "" when the folder is read-only."""
    path = folder / LOCK_NAME
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = lock_owner(folder)
            if not _is_stale(owner, path):
                raise RunBusyError(_busy_line(folder, owner)) from None
            _break(path, owner)
            continue
        except FileNotFoundError:
            raise RunError(f"{folder} was removed while it was being opened; check the path") from None
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):  # read-only: nothing to own there
                return ""
            raise
        token = uuid.uuid4().hex
        record = {"pid": os.getpid(), "host": socket.gethostname(), "boot_id": _boot_id(),
                  "started": time.time(), "purpose": purpose, "token": token}
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
            handle.flush()
            os.fsync(handle.fileno())
        remove_stale_temps(folder)
        remove_stale_temps(folder / "checkpoints")
        return token
    raise RunBusyError(_busy_line(folder, lock_owner(folder)))


def _release(folder: Path, token: str, created: bool) -> None:
    """Remove our lock file (never one that another process took over meanwhile); an empty new folder too."""
    if token:
        owner = lock_owner(folder)
        if owner is not None and owner.token == token:
            (folder / LOCK_NAME).unlink(missing_ok=True)
    if created:
        try:
            folder.rmdir()  # only succeeds when the block wrote nothing
        except OSError:
            pass


def _busy_line(folder: Path, owner: LockOwner | None) -> str:
    if owner is None:
        return (f"{folder} is being set up by another process; wait a moment and try again "
                f"(if none runs, delete {folder / LOCK_NAME})")
    line = f"{folder} is being written by {owner.describe()}; wait for it or stop it"
    if owner.host != socket.gethostname():
        line += f" (if it no longer runs, delete {folder / LOCK_NAME})"
    return line


def _is_stale(owner: LockOwner | None, path: Path) -> bool:
    """Whether the lock's process is certainly gone: same host and its pid dead or the machine restarted."""
    if owner is None:
        try:
            return time.time() - path.stat().st_mtime > _UNWRITTEN_GRACE_S
        except OSError:
            return True  # removed meanwhile: try again
    if owner.host != socket.gethostname():
        return False
    if owner.boot_id and _boot_id() and owner.boot_id != _boot_id():
        return True
    if owner.pid == os.getpid():
        return True  # not in _held, so a leftover of an earlier process that had our pid
    return not _pid_alive(owner.pid)


def _break(path: Path, owner: LockOwner | None) -> None:
    """Remove a stale lock, unless another process replaced it meanwhile (then the next create fails again)."""
    if lock_owner(path.parent) == owner:
        path.unlink(missing_ok=True)


def _boot_id() -> str:
    """Linux's id of this boot (a pid from before a restart means nothing); "" elsewhere."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":
        return _pid_alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # runs, under another user
    return True


def _pid_alive_windows(pid: int) -> bool:
    """OpenProcess + GetExitCodeProcess (``os.kill(pid, 0)`` would terminate the process on Windows)."""
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: it exists
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


__all__ = ["LOCK_NAME", "LockOwner", "run_lock", "locking", "lock_owner"]
