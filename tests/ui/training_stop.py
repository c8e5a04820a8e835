"""Stop a window's training the moment a given epoch ends (shared by the stop/continue tests)."""

from __future__ import annotations

from tl_desktop.core.events import EpochEnded
from tl_desktop.workers import tasks


def stopped_after_epoch(epoch: int):
    """``train_task`` as the window runs it, with Stop pressed the moment ``epoch`` ends (in the worker, so a
    fast epoch cannot slip past the click)."""
    original = tasks.train_task

    def train_task(config, *, callback, cancel):
        def relay(event):
            callback(event)
            if isinstance(event, EpochEnded) and event.epoch == epoch:
                cancel.cancel()
        return original(config, callback=relay, cancel=cancel)
    return train_task
