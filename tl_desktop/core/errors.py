"""Typed errors of the engine, all in one place. Each one's ``str()`` is one readable line that a user can act on;
the CLI prints it and exits 2, the window shows it with the details underneath. Front ends branch on the type
(``isinstance``), never on the text.

Every class derives from ``UserFacingError``; a front end that catches that base knows the message is meant for
the user, while any other exception is a defect whose traceback matters more than its text.
"""

from __future__ import annotations


class UserFacingError(Exception):
    """Base of the engine's expected failures: ``str()`` is one readable line the user can act on."""


# --- data ------------------------------------------------------------------------------------------------

class DataError(UserFacingError):
    """The data set or CSV cannot be used at all (missing folder, bad header, bad group-by)."""


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


__all__ = ["UserFacingError", "DataError", "ImageDecodeError", "UnreadableImage", "WeightsUnavailable", "RunError",
           "IncompleteRunError", "TrainingError", "ClinicalError", "ExplainError", "ExportError", "PredictorError",
           "TransferError", "JobError", "ProjectError"]
