"""Thin adapters giving core functions the ``fn(..., callback=, cancel=)`` shape the Worker runs.

No logic of their own beyond translating arguments and progress; core modules are imported inside each
function, so importing this module (at GUI start-up) loads neither torch nor the data scanners.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tl_desktop.core.events import CancelToken, Progress


def _progress(callback, phase: str):
    return lambda done, total: callback(Progress(phase, int(done), int(total)))


def scan_task(source: str, csv: str | None = None, *, callback, cancel: CancelToken):
    """``data.scan`` with progress as Progress("scan", done, total) events."""
    from tl_desktop.core import data

    return data.scan(source, csv=csv, progress=_progress(callback, "scan"), cancel=cancel)


def split_task(report, *, val_fraction: float, test_fraction: float, seed: int, group_by: str | None,
               callback, cancel: CancelToken) -> tuple[Any, list[str]]:
    """``data.make_split`` followed by the leakage check; returns (split, problems)."""
    from tl_desktop.core import data

    split = data.make_split(report, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
                            group_by=group_by)
    cancel.raise_if_cancelled()
    return split, data.leakage(report, split)


def devices_task(*, callback, cancel: CancelToken) -> list[tuple[str, str]]:
    """Load the engine and list the devices training can use, as (value, label).

    This is the GUI's warm-up, run in a worker soon after the window is shown, so the one-off cost of
    importing torch and timm is paid before the user presses Start. It also leaves one CPU core to the
    window (torch would otherwise spin every core and starve the event loop) and moves the objects created
    by the imports out of the garbage collector's reach (``gc.freeze``), so no full collection pauses every
    thread for a tenth of a second during training.
    """
    import gc
    import os

    import timm  # noqa: F401 - imported here so that training does not pay for it
    import torch

    import tl_desktop.core.training  # noqa: F401

    cores = os.cpu_count() or 1
    if cores > 1:
        torch.set_num_threads(min(torch.get_num_threads(), cores - 1))
    gc.collect()
    gc.freeze()
    found = [("auto", "Automatic"), ("cpu", "CPU")]
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        found += [("cuda", f"GPU: {name}")]
        found[0] = ("auto", f"Automatic (GPU: {name})")
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append(("mps", "Apple GPU (MPS)"))
    return found


def train_task(config: dict[str, Any], *, callback, cancel: CancelToken):
    """``training.train`` on a TrainConfig built from a plain dict."""
    from tl_desktop.core import training

    return training.train(training.TrainConfig(**config), callback=callback, cancel=cancel)


def resume_task(run_dir: str, *, callback, cancel: CancelToken):
    """``training.resume``: continue a cancelled or interrupted run from its last epoch."""
    from tl_desktop.core import training

    return training.resume(run_dir, callback=callback, cancel=cancel)


def evaluate_task(run_dir: str, *, callback, cancel: CancelToken) -> tuple[dict[str, Any], str]:
    """(test metrics, data root of the run): metrics.json when the run wrote it, else evaluate now."""
    from tl_desktop.core import training
    from tl_desktop.core.fsutil import read_json

    run = Path(run_dir)
    root = str(read_json(run / "manifest.json")["root"])
    metrics = run / "metrics.json"
    if metrics.is_file():
        return read_json(metrics), root
    return training.evaluate_run(run_dir, callback=callback, cancel=cancel), root


def export_task(run_dir: str, out: str, *, fp16: bool, int8: bool, callback, cancel: CancelToken):
    """``export.export_onnx``: export, verify, write the verification figures."""
    from tl_desktop.core import export

    return export.export_onnx(run_dir, out, fp16=fp16, int8=int8, callback=callback, cancel=cancel)


def predict_task(model_path: str, files: list[str], *, top_k: int = 3, callback,
                 cancel: CancelToken) -> tuple[list[str], list[Any]]:
    """(class names, predictions) of an exported model on files and folders (folders are expanded)."""
    from tl_desktop.core.inference import OnnxPredictor

    predictor = OnnxPredictor(model_path)
    return predictor.class_names, predictor.predict(files, top_k=top_k, callback=callback, cancel=cancel)


def sample_task(*, callback, cancel: CancelToken) -> Path:
    from tl_desktop.sample import build_sample_project

    return build_sample_project(callback=callback, cancel=cancel)


def check_weights_task(model: str, weights_file: str, *, callback, cancel: CancelToken) -> str:
    """Load an imported weights file into the chosen architecture; returns a one-line confirmation."""
    from tl_desktop.core import models

    models.create_model(model, weights_file=Path(weights_file))
    return f"{Path(weights_file).name} fits {models.get_info(model).label}"
