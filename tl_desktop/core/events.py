"""Typed training events, the callback protocol, cooperative cancellation and typed findings.

The engine emits past-tense events to plain callables; the GUI's worker turns them into Qt signals and
the CLI prints them. Cancellation is a token plus a typed exception, never a text match. Findings (what the
scan or the leakage check noticed) are not errors: they carry a ``kind`` that callers branch on and a message
the user reads. The errors themselves live in ``errors.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


class Cancelled(Exception):
    """Raised inside long work when its CancelToken was set; the caller sees a consistent state."""


class CancelToken:
    """A thread-safe flag that long-running core functions check between units of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


@dataclass(frozen=True)
class FitStarted:
    run_dir: str
    strategy: str
    device: str
    epochs: int
    steps_per_epoch: int
    batch_size: int
    start_epoch: int = 0


@dataclass(frozen=True)
class BatchEnded:
    epoch: int
    step: int
    global_step: int
    loss: float
    lr: float
    images_per_s: float
    eta_s: float


@dataclass(frozen=True)
class EpochEnded:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    images_per_s: float
    eta_s: float
    best_epoch: int
    is_best: bool
    seconds: float
    val_balanced_acc: float = 0.0


@dataclass(frozen=True)
class Notice:
    """Something the user should know that is not an error (e.g. batch size halved after CUDA OOM)."""

    message: str


@dataclass(frozen=True)
class Progress:
    """Progress of a phase without epochs (scanning, preparing images, embedding extraction, evaluation)."""

    phase: str
    done: int
    total: int
    eta_s: float | None = None  # seconds left, where the phase can tell


@dataclass(frozen=True)
class FitEnded:
    run_dir: str
    best_epoch: int
    cancelled: bool
    test_metrics: dict[str, Any] | None = field(default=None)


# --- findings ----------------------------------------------------------------------------------------------

LeakageKind = Literal["identical-files-cross-splits", "identical-pixels-cross-splits", "group-crosses-splits",
                      "no-group-value"]
ScanKind = Literal["empty-class", "few-images", "imbalanced", "outside-data-folder", "other"]
SplitKind = Literal["small-test-class"]


@dataclass(frozen=True)
class Finding:
    """Something a check found that the user should see: a stable ``kind`` and one readable ``message``."""

    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class LeakageFinding(Finding):
    """A leakage-check result. ``count`` is the number of files involved; ``key`` the group value, the shared
    SHA-256 of identical files (or of their pixels), or the ``group_by`` setting that gave no value."""

    kind: LeakageKind
    count: int = 0
    key: str = ""

    @property
    def leaks(self) -> bool:
        """True when one patient's or one image's files are in two subsets; "no-group-value" is only a caution."""
        return self.kind != "no-group-value"


@dataclass(frozen=True)
class SplitFinding(Finding):
    """A caution about a split that is not leakage; ``label`` is the class concerned, ``count`` its test images."""

    kind: SplitKind
    label: str = ""
    count: int = 0


@dataclass(frozen=True)
class LeakageCheck:
    """The leakage check of one split: what was compared, what crossed parts, and cautions about the split.

    ``checked`` names each comparison made, in words every front end shows as they are (e.g. "identical
    files", "identical pixels", "groups by PatientID" or "no patient grouping chosen").
    """

    checked: tuple[str, ...]
    findings: tuple[LeakageFinding, ...] = ()
    warnings: tuple[SplitFinding, ...] = ()

    @property
    def leaks(self) -> bool:
        return any(f.leaks for f in self.findings)

    def checked_text(self) -> str:
        return "Checked: " + ", ".join(self.checked) + "."

    def verdict(self) -> str:
        """One line: leakage found or not, and what was checked."""
        if self.leaks:
            return f"Leakage found. {self.checked_text()}"
        caution = " (with a caution below)" if self.findings else ""
        return f"No leakage found{caution}. {self.checked_text()}"

    def lines(self) -> list[str]:
        """The verdict, then every finding and warning, one sentence each."""
        return [self.verdict(), *(f.message for f in self.findings), *(w.message for w in self.warnings)]


@dataclass(frozen=True)
class ScanFinding(Finding):
    """A scan warning; ``label`` is the class concerned (the largest one for "imbalanced")."""

    kind: ScanKind
    label: str = ""

    @classmethod
    def from_json(cls, value: str | dict[str, Any]) -> ScanFinding:
        """From ``asdict`` output, or from a plain sentence of a report stored before findings had kinds."""
        return cls("other", value) if isinstance(value, str) else cls(**value)


Event = FitStarted | BatchEnded | EpochEnded | Notice | Progress | FitEnded
Callback = Callable[[Event], None]


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict with the event's type name under "event"."""
    return {"event": type(event).__name__, **asdict(event)}
