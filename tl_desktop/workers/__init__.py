"""Qt adapters around plain core functions: core events become Qt signals, stop() sets the CancelToken.

``Worker`` and ``Failure`` load Qt on first use only, so ``workers.child`` (no Qt) can be imported by the frozen
self-test and by the training child process without loading PySide6.
"""

from typing import Any

__all__ = ["Failure", "Worker"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tl_desktop.workers import worker

        return getattr(worker, name)
    raise AttributeError(f"module 'tl_desktop.workers' has no attribute {name!r}")
