"""Qt adapters around plain core functions: core events become Qt signals, stop() sets the CancelToken."""

from tl_desktop.workers.worker import Failure, Worker

__all__ = ["Failure", "Worker"]
