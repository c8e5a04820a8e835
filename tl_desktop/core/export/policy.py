"""Evaluate clinically, then export: the one export of a run that the CLI, the window and jobs call.

``export_run`` makes the evaluation of the exported checkpoint current (``evaluation.current.current_clinical``:
computed when missing or when the checkpoint file's SHA-256 is not the evaluated one) and exports with ``onnx_export.export_onnx``, all under the
run's clinical lock, so the file carries the evaluated temperature and decision and never reads a
``clinical.json`` being written meanwhile. The same run exported from any front end therefore carries the same
metadata, apart from ``onnx_export.TIMESTAMP_KEYS``. A multi-label run's file carries the per-finding thresholds
of that evaluation instead of a temperature and a decision rule (``multilabel``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tl_desktop.core.errors import ClinicalError, ExportError
from tl_desktop.core.evaluation.current import clinical_lock, current_clinical
from tl_desktop.core.events import CancelToken, Notice
from tl_desktop.core.export.model_checks import UNFAMILIAR_ACTIONS
from tl_desktop.core.export.onnx_export import ExportResult, export_onnx, output_path
from tl_desktop.core.runlock import locking


@locking("exporting")
def export_run(run_dir: Path | str, out: Path | str, *, fp16: bool = False, int8: bool = False,
               which: str = "best", callback: Callable | None = None, cancel: CancelToken | None = None,
               providers: list[str] | None = None, unfamiliar_action: str = "flagged") -> ExportResult:
    """Export a run to ``out`` (.onnx) with its evaluated decision and its unfamiliar-image reference
    (``unfamiliar_action``: "flagged" or "not sure"); see ``onnx_export.export_onnx``.

    A run that cannot be evaluated clinically (no test split) is exported without a decision (temperature from
    the run config, else 1.0), and a ``Notice`` says so through ``callback``.

    Raises:
        ExportError: bad output name, or the export is refused (see ``export_onnx``).
        RunError: the run folder is missing or damaged.
        Cancelled: ``cancel`` was set during the evaluation or the export.
    """
    output_path(out)  # refuse a wrong name or action before minutes of evaluation
    if unfamiliar_action not in UNFAMILIAR_ACTIONS:
        raise ExportError(f"unfamiliar images can be {' or '.join(UNFAMILIAR_ACTIONS)}, not {unfamiliar_action!r}")
    with clinical_lock(run_dir):
        try:
            current_clinical(run_dir, which=which, callback=callback, cancel=cancel)
        except ClinicalError as exc:
            if callback is not None:
                callback(Notice(f"exported without a clinical evaluation: {exc}"))
        return export_onnx(run_dir, out, fp16=fp16, int8=int8, which=which, callback=callback, cancel=cancel,
                           providers=providers, unfamiliar_action=unfamiliar_action)
