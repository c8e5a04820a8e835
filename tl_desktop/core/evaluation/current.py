"""The run's evaluation as it should be read now: computed once per checkpoint, again when the checkpoint changed.

An evaluation (``clinical.json``, see ``run_evaluation``) is current while the SHA-256 of the checkpoint it
evaluated equals that of the checkpoint file now, and its test-manifest hash equals that of the run's
``manifest.json``; file times play no part (a copied or restored run folder stays current, a continued one does
not). ``current_clinical`` is what every reader that may compute it calls (the export, the report, the CLI):
it returns the stored evaluation while current and runs ``evaluate_clinical`` otherwise. ``evaluation_state`` is
what the Evaluate step calls: while the run trains (its checkpoint changes every epoch) it returns the last
finished evaluation with the reason it is out of date instead of computing one.
``clinical_lock`` is one lock per run folder, held while the evaluation is computed or its decision changed and
for a whole export, so no export reads a ``clinical.json`` that is being written (within one process).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tl_desktop.core import runs
from tl_desktop.core.evaluation import run_evaluation
from tl_desktop.core.events import CancelToken, Notice

_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def clinical_lock(run_dir: Path | str) -> threading.RLock:
    """The lock of one run folder's clinical evaluation (re-entrant: an export holds it while it evaluates)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(Path(run_dir).resolve()), threading.RLock())


def stale_reason(run_dir: Path | str, stored: dict[str, Any] | None, which: str = "best") -> str | None:
    """Why the stored evaluation of checkpoint ``which`` must be computed again, or None while it is current.

    Stale when missing, without test predictions, without the checkpoint's SHA-256 (an earlier version wrote
    it), when the checkpoint file's SHA-256 differs from the evaluated one (continued, resumed or retrained), or
    when the test files of the manifest differ from the evaluated ones.
    """
    if stored is None:
        return "the run has no evaluation yet"
    if (stored.get("predictions") or {}).get("test") is None:
        return "the stored evaluation has no test predictions"
    evaluated = (stored.get("checkpoint") or {}).get("sha256")
    if not evaluated:
        return "the stored evaluation does not record which checkpoint it belongs to"
    now = runs.checkpoint_sha256(run_dir, which)
    if now is None:
        return f"the run has no {which} checkpoint"
    if now != evaluated:
        return (f"the {which} checkpoint changed since this evaluation "
                f"({run_evaluation.checkpoint_label(stored)} was evaluated; the file now has sha256 {now[:8]})")
    manifest = runs.load_manifest(Path(run_dir))
    if stored.get("test_manifest_sha256") != run_evaluation.test_manifest_hash(manifest):
        return "the test images in the run's manifest differ from the evaluated ones"
    return None


def is_training(run_dir: Path | str) -> bool:
    """True while the run's status says it is training (its checkpoints may change at every epoch)."""
    return runs.read_status(Path(run_dir))["state"] == "running"


def current_clinical(run_dir: Path | str, *, which: str = "best", callback: Callable | None = None,
                     cancel: CancelToken | None = None, allow_changed: bool = False) -> dict[str, Any]:
    """The evaluation of checkpoint ``which``; computed when missing or stale (no decision rule the user chose:
    an operating point chosen for another checkpoint is not carried over, and the notice says so).

    The validation and test images are first checked against the run's manifest (``data.integrity``). With
    ``allow_changed`` a run whose images changed is evaluated on the files as they are now, and the evaluation
    says so (``changed_files`` and its first warning); such an evaluation is never reused as current.

    Raises:
        RunIntegrityError: an image changed or is missing (without ``allow_changed``), or the checkpoint was
            modified after training. ClinicalError: the run cannot be evaluated clinically (no test split).
            RunError: damaged run folder.
    """
    from tl_desktop.core.data.integrity import EVALUATED, check_run_images

    with clinical_lock(run_dir):
        changed = check_run_images(run_dir, EVALUATED, allow_changed=allow_changed)
        runs.verify_checkpoint(run_dir, which)  # refused before any note that it is evaluated again
        stored = run_evaluation.load_clinical(run_dir, which)
        reason = stale_reason(run_dir, stored, which)
        if reason is None and stored.get("changed_files"):
            reason = "the stored evaluation was made on changed images"
        if reason is None and not changed:
            return stored
        if changed:
            return _on_current_files(run_dir, which, changed, callback, cancel)
        keep = subgroup_attributes(stored)  # the breakdown the user chose is carried over to the new checkpoint
        if stored is not None and callback is not None:
            chosen = stored.get("decision_source") == "user"
            callback(Notice(f"{reason}: evaluating it again" + (
                "; the operating point you chose was for the earlier checkpoint and is not carried over: choose "
                "it again in Evaluate" if chosen else "")))
        return run_evaluation.evaluate_clinical(run_dir, which=which, subgroups=keep, callback=callback,
                                                cancel=cancel)


def subgroup_attributes(stored: dict[str, Any] | None) -> list[str]:
    """The subgroup attributes of a stored evaluation, carried over when it is computed again."""
    from tl_desktop.core.evaluation.subgroups import stored_attributes

    return stored_attributes(stored)


def set_subgroups(run_dir: Path | str, attributes: list[str], *, which: str = "best",
                  callback: Callable | None = None, cancel: CancelToken | None = None) -> dict[str, Any]:
    """``run_evaluation.set_subgroups`` on the current evaluation (computed first when stale), under the lock.

    Raises:
        ClinicalError, RunIntegrityError, RunError: as ``current_clinical`` and ``set_subgroups``.
    """
    with clinical_lock(run_dir):
        current_clinical(run_dir, which=which, callback=callback, cancel=cancel)
        return run_evaluation.set_subgroups(run_dir, attributes, which=which)


def _on_current_files(run_dir: Path | str, which: str, changed: list, callback: Callable | None,
                      cancel: CancelToken | None) -> dict[str, Any]:
    """Evaluate on the images as they are now, and mark the evaluation (stored and returned) as such."""
    from tl_desktop.core.data.integrity import describe
    from tl_desktop.core.fsutil import atomic_write_json

    result = run_evaluation.evaluate_clinical(run_dir, which=which, callback=callback, cancel=cancel,
                                              subgroups=subgroup_attributes(run_evaluation.load_clinical(run_dir, which)))
    mark = f"{describe(changed)}: evaluated on the images as they are now, not those it was tested with"
    result["changed_files"] = [{"path": p.path, "kind": p.kind} for p in changed]
    result["warnings"] = [mark, *result.get("warnings", [])]
    atomic_write_json(run_evaluation.clinical_path(run_dir, which), result)
    if callback is not None:
        callback(Notice(mark))
    return result


@dataclass(frozen=True)
class EvaluationState:
    """What the Evaluate step shows: an evaluation, and why it is out of date (None: it is current).

    ``data`` is None only while the run trains and has never been evaluated.
    """

    data: dict[str, Any] | None
    stale: str | None
    training: bool

    @property
    def label(self) -> str:
        """The checkpoint the shown figures belong to, in words."""
        return run_evaluation.checkpoint_label(self.data)


def evaluation_state(run_dir: Path | str, *, which: str = "best", callback: Callable | None = None,
                     cancel: CancelToken | None = None) -> EvaluationState:
    """The current evaluation, computed when stale; while the run trains, the last stored one as it is.

    Raises:
        ClinicalError, RunError: as ``current_clinical``.
    """
    if is_training(run_dir):
        with clinical_lock(run_dir):
            stored = run_evaluation.load_clinical(run_dir, which)
            return EvaluationState(stored, stale_reason(run_dir, stored, which), True)
    return EvaluationState(current_clinical(run_dir, which=which, callback=callback, cancel=cancel), None, False)
