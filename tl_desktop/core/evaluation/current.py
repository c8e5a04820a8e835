"""The run's clinical evaluation as it should be read now: computed once, again when the model changed.

``current_clinical`` is what every reader of ``clinical.json`` that may compute it calls (the Evaluate step, the
export): it returns the stored evaluation while it is current and runs ``evaluate_clinical`` otherwise.
``clinical_lock`` is one lock per run folder, held while the evaluation is computed or its decision changed and
for a whole export, so no export reads a ``clinical.json`` that is being written (within one process).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tl_desktop.core.evaluation import run_evaluation
from tl_desktop.core.events import CancelToken, Notice

_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def clinical_lock(run_dir: Path | str) -> threading.RLock:
    """The lock of one run folder's clinical evaluation (re-entrant: an export holds it while it evaluates)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(Path(run_dir).resolve()), threading.RLock())


def stale_reason(run_dir: Path | str, stored: dict[str, Any] | None) -> str | None:
    """Why the stored evaluation must be computed again, or None while it is current.

    It is stale when missing, when it holds no test predictions, or when ``clinical.json`` is older than the best
    checkpoint it evaluates (the run was continued after the evaluation).
    """
    if stored is None:
        return "the run has no clinical evaluation yet"
    if (stored.get("predictions") or {}).get("test") is None:
        return "the stored clinical evaluation has no test predictions"
    best = Path(run_dir) / "checkpoints" / "best.safetensors"
    written = run_evaluation.clinical_path(run_dir)
    if best.is_file() and written.stat().st_mtime_ns < best.stat().st_mtime_ns:
        return "the stored clinical evaluation is older than the model's best checkpoint"
    return None


def current_clinical(run_dir: Path | str, *, callback: Callable | None = None,
                     cancel: CancelToken | None = None) -> dict[str, Any]:
    """The run's ``clinical.json``; computed (default decision rule) when missing or stale.

    Raises:
        ClinicalError: the run cannot be evaluated clinically (no test split). RunError: damaged run folder.
    """
    with clinical_lock(run_dir):
        stored = run_evaluation.load_clinical(run_dir)
        reason = stale_reason(run_dir, stored)
        if reason is None:
            return stored
        if stored is not None and callback is not None:
            callback(Notice(f"{reason}: evaluating it again with the default decision rule"))
        return run_evaluation.evaluate_clinical(run_dir, callback=callback, cancel=cancel)
