"""Typed errors of the engine, all in one place. Each one's ``str()`` is one readable line that a user can act on;
the CLI prints it and exits 2, the window shows it with the details underneath. Front ends branch on the type
(``isinstance``), never on the text.

Every class derives from ``UserFacingError``; a front end that catches that base knows the message is meant for
the user, while any other exception is a defect whose traceback matters more than its text.
"""

from __future__ import annotations

import errno
import os


class UserFacingError(Exception):
    """Base of the engine's expected failures: ``str()`` is one readable line the user can act on."""


# --- data ------------------------------------------------------------------------------------------------

class DataError(UserFacingError):
    """The data set or CSV cannot be used at all (missing folder, bad header, bad group-by)."""


class CacheLimitError(UserFacingError):
    """The prepared images of a data set would not fit under the user's cache limit."""


class ImageDecodeError(UserFacingError):
    """One file cannot be used (empty, not an image, corrupt, too large); the message is its reason."""


class UnreadableImage(UserFacingError):
    """A file that was readable at scan time can no longer be decoded (changed, removed, unplugged drive)."""


# --- models and runs -------------------------------------------------------------------------------------

class WeightsUnavailable(UserFacingError):
    """Pretrained weights cannot be had (offline, missing package, bad file)."""


class RunError(UserFacingError):
    """A run folder is missing, incomplete or damaged."""


class IncompleteRunError(RunError):
    """The folder is not (yet) a run: it lacks the config.json or manifest.json written before the first epoch.

    An expected state rather than a fault (a run being set up, an unrelated folder), so views show a line,
    not a dialog.
    """


class RunBusyError(RunError):
    """Another process is writing the run folder (its lock file names the pid, host and start time)."""


class DamagedFileError(UserFacingError, ValueError):
    """A file the app wrote earlier (JSON) is truncated, edited or not what its name says; the message names it.

    Also a ``ValueError``, so callers that caught the JSON decoder's error still catch it.
    """


class RunIntegrityError(RunError):
    """The run's images or checkpoint are not the ones it was trained with (changed, missing, modified after
    training). ``str()`` is the one line for the CLI; ``summary`` the same line without the command-line advice,
    ``problems`` the changed or missing images (``data.integrity.FileProblem``; empty for a checkpoint)."""

    def __init__(self, message: str, *, summary: str | None = None, problems: tuple = ()) -> None:
        super().__init__(message)
        self.summary = summary or message
        self.problems = tuple(problems)


class TrainingError(UserFacingError):
    """Training cannot start or continue (bad options, non-empty output folder, a leaking split)."""


# --- evaluation, export, insight, projects ---------------------------------------------------------------

class ClinicalError(UserFacingError):
    """The run cannot be evaluated clinically (no test or validation images, unknown positive class)."""


class ExplainError(UserFacingError):
    """No heatmap can be made for this model or class."""


class ExportError(UserFacingError):
    """Export refused (unverifiable or outside tolerance, unusable run)."""


class PredictorError(UserFacingError):
    """The model file cannot be used for prediction (missing, damaged, not exported by tl-desktop)."""


class TransferError(UserFacingError):
    """The transfer check cannot run (output folder not empty, no test images, ...)."""


class JobError(UserFacingError):
    """A server job bundle cannot be created, run or imported."""


class ProjectError(UserFacingError):
    """The project file cannot be read, is from a newer version of the app, or cannot be created there."""


# --- the one line of any failure ------------------------------------------------------------------------

_OS_REASONS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("the disk is full", "free some space or choose another folder"),
    getattr(errno, "EDQUOT", -1): ("the disk quota is used up", "free some space or choose another folder"),
    getattr(errno, "EFBIG", -1): ("the file is too large for this drive", "choose a folder on another drive"),
    errno.EROFS: ("the drive is read-only", "choose a folder you can write to"),
    errno.EACCES: ("permission denied", "choose a folder you can write to, or ask for access"),
    errno.EPERM: ("the operation is not permitted", "choose a folder you can write to, or ask for access"),
    errno.ENOENT: ("it does not exist", "check the path"),
    errno.ENOTDIR: ("a part of the path is not a folder", "check the path"),
    errno.EISDIR: ("it is a folder, not a file", "give the path of a file"),
    errno.EEXIST: ("it already exists", "choose a new name"),
    errno.ENAMETOOLONG: ("the name is too long", "choose a shorter name or folder"),
    errno.EIO: ("the drive reported an input/output error", "check that the drive is connected and healthy"),
    getattr(errno, "ENXIO", -1): ("the drive is not available", "reconnect the drive"),
    getattr(errno, "ENODEV", -1): ("the drive is not available", "reconnect the drive"),
    getattr(errno, "ESTALE", -1): ("the network drive went away", "reconnect the network drive"),
    getattr(errno, "EMFILE", -1): ("too many files are open", "close other programs and try again"),
}
_WRITE_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", -1), getattr(errno, "EFBIG", -1), errno.EROFS}


def user_line(exc: BaseException) -> str | None:
    """The one line to show for an expected failure (a ``UserFacingError`` or an ``OSError`` from the disk),
    naming the file and what to do; None for anything else (a defect: its traceback matters)."""
    if isinstance(exc, UserFacingError):
        return _first_line(str(exc)) or type(exc).__name__
    if isinstance(exc, OSError):
        return os_error_line(exc)
    return None


def os_error_line(exc: OSError) -> str:
    """``cannot write runs/x/config.json: the disk is full; free some space or choose another folder``."""
    reason, advice = _OS_REASONS.get(exc.errno if exc.errno is not None else -999, ("", ""))
    if not reason:
        reason = (exc.strerror or _first_line(str(exc)) or type(exc).__name__).rstrip(".").lower()
        advice = "check the drive and the path, then try again"
    name = exc.filename if exc.filename is not None else exc.filename2
    where = f" {os.fsdecode(name)}" if isinstance(name, str | bytes) and name else ""
    verb = "write" if exc.errno in _WRITE_ERRNOS else "use"
    return f"cannot {verb}{where}: {reason}; {advice}"


def _first_line(text: str) -> str:
    """The message itself, also of an error re-raised by a torch DataLoader worker (whose text is
    "Caught X in DataLoader worker process 0. Original Traceback ... module.X: message")."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if len(lines) > 1 and lines[1].startswith("Original Traceback"):
        head, sep, rest = lines[-1].partition(": ")
        return rest if sep and " " not in head else lines[-1]
    return lines[0]


__all__ = ["UserFacingError", "DataError", "CacheLimitError", "ImageDecodeError", "UnreadableImage", "WeightsUnavailable", "RunError",
           "IncompleteRunError", "RunBusyError", "DamagedFileError",
           "RunIntegrityError", "TrainingError", "ClinicalError", "ExplainError",
           "ExportError", "PredictorError", "TransferError", "JobError", "ProjectError", "user_line", "os_error_line"]
