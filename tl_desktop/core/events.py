"""Typed training events, the callback protocol and cooperative cancellation.

The engine emits past-tense events to plain callables; the GUI's worker turns them into Qt signals and
the CLI prints them. Cancellation is a token plus a typed exception, never a text match.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


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
    """Progress of a phase without epochs (scanning, embedding extraction, evaluation)."""

    phase: str
    done: int
    total: int


@dataclass(frozen=True)
class FitEnded:
    run_dir: str
    best_epoch: int
    cancelled: bool
    test_metrics: dict[str, Any] | None = field(default=None)


Event = FitStarted | BatchEnded | EpochEnded | Notice | Progress | FitEnded
Callback = Callable[[Event], None]


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict with the event's type name under "event"."""
    return {"event": type(event).__name__, **asdict(event)}
