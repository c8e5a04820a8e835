"""Thin adapters giving core functions the ``fn(..., callback=, cancel=)`` shape the Worker runs.

No logic of their own beyond translating arguments and progress; core modules are imported inside each
function, so importing this module (at GUI start-up) loads neither torch nor the data scanners.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tl_desktop.core.config import TrainConfig
from tl_desktop.core.events import BatchEnded, CancelToken, Progress
from tl_desktop.workers.child import prepare_spare, run_in_child

BATCH_INTERVAL_S = 0.1  # the window is told about batches at most 10 times a second
TRAINING = "tl_desktop.core.training.run"  # where train / resume live, imported in the child process only
# What a run imports on its way (lazily, so the command line starts fast): loaded by the spare child beforehand.
TRAINING_MODULES = (TRAINING, "tl_desktop.core.training.fit", "tl_desktop.core.evaluation.run_evaluation",
                    "tl_desktop.core.data.scan", "tl_desktop.core.data.split", "tl_desktop.core.models.catalog",
                    "sklearn.metrics", "torchvision.transforms")


def _progress(callback, phase: str):
    return lambda done, total: callback(Progress(phase, int(done), int(total)))


def scan_task(source: str, csv: str | None = None, labels: dict[str, Any] | None = None, *, callback,
              cancel: CancelToken):
    """``data.scan`` with progress as Progress("scan", done, total) events; ``labels``: the project's labels
    given in the app (``Labels.to_dict()``), applied by the scan."""
    from tl_desktop.core.data import scan as data

    return data.scan(source, csv=csv, progress=_progress(callback, "scan"), cancel=cancel, labels=labels)


def split_task(report, review: dict[str, Any] | None = None, stored: dict[str, Any] | None = None, *,
               val_fraction: float, test_fraction: float, seed: int, group_by: str | None, callback,
               cancel: CancelToken) -> tuple[Any, Any, bool]:
    """``split.divide`` as training divides (the review decisions applied; by the ``stored`` split while it
    still covers every kept file, else a new one), then the leakage check; returns (Divided, its
    LeakageCheck, whether the stored split was used)."""
    from tl_desktop.core.data import split as splits

    settings = {"val_fraction": val_fraction, "test_fraction": test_fraction, "seed": seed, "group_by": group_by}
    divided = splits.divide(report, review, stored=stored, **settings)
    used = stored is not None and splits.covers(divided.stored, divided.report)
    if stored is not None and not used:
        divided = splits.divide(report, review, **settings)
    cancel.raise_if_cancelled()
    return divided, splits.leakage_check(divided.report, divided.split), used


def devices_task(*, callback, cancel: CancelToken) -> list[tuple[str, str]]:
    """Load the engine and list the devices training can use, as (value, label).

    This is the GUI's warm-up, run in a worker soon after the window is shown, so the one-off cost of
    importing torch and timm is paid before the user presses Start. It also leaves one CPU core to the
    window (torch would otherwise spin every core and starve the event loop) and moves the objects created
    by the imports out of the garbage collector's reach (``gc.freeze``), so no full collection pauses every
    thread for a tenth of a second. Training itself runs in a child process (``train_task``): one is started
    here and loads the engine too (``child.prepare_spare``), so Start does not wait for it.
    """
    import gc
    import os

    import timm  # noqa: F401 - imported here so that training does not pay for it
    import torch

    import tl_desktop.core.training.run  # noqa: F401

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
    prepare_spare(TRAINING_MODULES)  # training runs in a child process: have one loaded before Start is pressed
    return found


class Throttled:
    """Passes events on, but ``BatchEnded`` at most once per ``interval_s``: one that comes sooner is held (a
    newer one replaces it) until the interval has passed (``tick``) or another kind of event comes, which is
    passed on after it, so the order stays and the last batch before an epoch's end is always shown."""

    def __init__(self, callback: Callable[[Any], None], interval_s: float = BATCH_INTERVAL_S) -> None:
        self._callback, self._interval = callback, interval_s
        self._held: BatchEnded | None = None
        self._sent = float("-inf")

    def __call__(self, event: Any) -> None:
        if isinstance(event, BatchEnded):
            self._held = event
            self.tick()
            return
        self.flush()
        self._callback(event)

    def tick(self) -> None:
        """Pass on the held batch when the interval has passed."""
        if self._held is not None and time.monotonic() - self._sent >= self._interval:
            self.flush()

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._sent = time.monotonic()
            self._callback(held)


def train_task(config: TrainConfig, *, callback, cancel: CancelToken):
    """``training.train`` of a training request (``Project.train_config``), in a child process
    (``child.run_in_child``: the window's event loop never waits for the training's Python code), with batches
    reported at most 10 times a second (``Throttled``)."""
    return _train_in_child(f"{TRAINING}:train", config, callback, cancel)


def resume_task(run_dir: str, *, callback, cancel: CancelToken):
    """``training.resume``: continue a cancelled or interrupted run from its last epoch (as ``train_task``)."""
    return _train_in_child(f"{TRAINING}:resume", str(run_dir), callback, cancel)


def _train_in_child(target: str, argument: Any, callback, cancel: CancelToken):
    relay = Throttled(callback)
    try:
        return run_in_child(target, argument, callback=relay, cancel=cancel, on_idle=relay.tick)
    finally:
        relay.flush()


def evaluation_task(run_dir: str, *, callback, cancel: CancelToken) -> tuple[Any, str]:
    """(``current.evaluation_state``, data root of the run): the run's one evaluation artefact, computed when
    stale; while the run trains, the last finished one as it is."""
    from tl_desktop.core import runs
    from tl_desktop.core.evaluation.current import evaluation_state

    root = str(runs.load_manifest(Path(run_dir))["root"])  # IncompleteRunError when the folder is not (yet) a run
    return evaluation_state(run_dir, callback=callback, cancel=cancel), root


def export_task(run_dir: str, out: str, *, fp16: bool, int8: bool, unfamiliar_action: str = "flagged", callback,
                cancel: CancelToken):
    """``policy.export_run``: evaluate clinically when needed, then export (the CLI's export too);
    ``unfamiliar_action`` ("flagged" or "not sure") is what the file does with images unlike the training ones."""
    from tl_desktop.core.export.policy import export_run

    return export_run(run_dir, out, fp16=fp16, int8=int8, callback=callback, cancel=cancel,
                      unfamiliar_action=unfamiliar_action)


def model_task(model_path: str, *, callback, cancel: CancelToken) -> Any:
    """The class names, task and (multi-label) thresholds of an exported model (``predictor.ModelSummary``),
    opened as Predict will use it (``PredictorError`` when it cannot be used: missing, damaged, or not exported
    by tl-desktop)."""
    from tl_desktop.core.export.predictor import OnnxPredictor

    return OnnxPredictor(model_path).summary()


def predict_task(model_path: str, files: list[str], *, top_k: int = 3, callback,
                 cancel: CancelToken) -> tuple[list[str], list[Any], str | None]:
    """(class names, predictions, training-manifest hash) of an exported model on files and folders (folders
    are expanded). The hash identifies the run the model came from, for heatmaps."""
    from tl_desktop.core.export.predictor import OnnxPredictor

    predictor = OnnxPredictor(model_path)
    found = predictor.predict(files, top_k=top_k, callback=callback, cancel=cancel)
    return predictor.class_names, found, predictor.metadata.get("training_manifest_sha256")


def run_of_model(run_dirs: list[str], manifest_sha256: str | None) -> str | None:
    """The run among ``run_dirs`` whose training manifest an exported model carries, or None."""
    from tl_desktop.core import runs

    for run_dir in run_dirs:
        try:
            if manifest_sha256 and runs.manifest_hash(Path(run_dir)) == manifest_sha256:
                return run_dir
        except (OSError, KeyError, ValueError):
            continue
    return None


def sample_task(folder: str | Path | None = None, *, callback, cancel: CancelToken) -> Path:
    from tl_desktop.sample import build_sample_project

    return build_sample_project(folder, callback=callback, cancel=cancel)


def check_weights_task(model: str, weights_file: str, *, callback, cancel: CancelToken) -> str:
    """Load an imported weights file into the chosen architecture; returns a one-line confirmation."""
    from tl_desktop.core.models import catalog as models

    models.create_model(model, weights_file=Path(weights_file))
    return f"{Path(weights_file).name} fits {models.get_info(model).label}"


# --- clinical evaluation, heatmaps, report -------------------------------------------------------------

def set_decision_task(run_dir: str, *, threshold: float | None = None, positive_class: str | None = None,
                      abstain_threshold: float | None = None, clear: bool = False, callback,
                      cancel: CancelToken) -> dict[str, Any]:
    """``run_evaluation.set_decision``: record the operating point the user chose or accepted (the one the ONNX
    export carries), or with ``clear`` remove it; ``abstain_threshold`` None removes "not sure"."""
    from tl_desktop.core.evaluation import run_evaluation as clinical_run
    from tl_desktop.core.evaluation.current import clinical_lock

    with clinical_lock(run_dir):
        return clinical_run.set_decision(run_dir, threshold=threshold, positive_class=positive_class,
                                         abstain_threshold=abstain_threshold, clear=clear)


_LOADED: dict[tuple[str, str], Any] = {}
_LOADED_LOCK = threading.Lock()


def _loaded_run(run_dir: str):
    """``run_model.load_run`` cached per run folder and best checkpoint (by its SHA-256), so a second heatmap is
    quick and a changed checkpoint is never explained with the old weights."""
    from tl_desktop.core import runs
    from tl_desktop.core.models import run_model

    key = (str(Path(run_dir).resolve()), runs.checkpoint_sha256(run_dir, "best") or "")
    with _LOADED_LOCK:
        if key not in _LOADED:
            _LOADED.clear()  # one model in memory at a time
            _LOADED[key] = run_model.load_run(run_dir)
        return _LOADED[key]


def heatmap_task(run_dir: str, image: str, target: str | None = None, *, callback,
                 cancel: CancelToken) -> dict[str, Any]:
    """Grad-CAM of one image (``explain.explain_run``) as PNG bytes: the image as the model saw it and the
    heatmap overlay, with the class explained and the model's probabilities."""
    import io

    from tl_desktop.core.evaluation.explain import explain_run

    run = _loaded_run(run_dir)
    cancel.raise_if_cancelled()
    found = explain_run(run, [Path(image)], target)[0]

    def png(picture) -> bytes:
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        return buffer.getvalue()

    return {"image": image, "target": target, "class_name": found.class_name, "probability": found.probability,
            "predicted": found.predicted, "predicted_probability": found.predicted_probability,
            "seen_png": png(found.image.convert("RGB").resize((256, 256))), "overlay_png": png(found.overlay())}


def report_task(run_dir: str, parent: str | None = None, *, callback, cancel: CancelToken):
    """``report.write_report``: report.pdf, report.html and the audit folder of a finished run, in a new dated
    folder under ``parent`` (default the project's ``reports/``; ``report.folders``), never over an earlier one.

    File names are replaced by their SHA-256 when the split was grouped by a file-name pattern: then the names
    carry patient IDs by construction.
    """
    from tl_desktop.core.runs import load_config
    from tl_desktop.report import write_report
    from tl_desktop.report.folders import default_parent, new_report_folder

    hide = str(load_config(Path(run_dir)).group_by or "").startswith("regex:")
    out = new_report_folder(parent or default_parent(run_dir), run_dir)
    return write_report(run_dir, out, hide_file_names=hide, callback=callback, cancel=cancel)


# --- server jobs ---------------------------------------------------------------------------------------

def create_job_task(project_path: str, out: str, *, gpus: int, nodes: int, epochs: int | None, callback,
                    cancel: CancelToken) -> dict[str, Any]:
    """``jobs.create_job`` and what to tell the user: the folder, a summary and its run.sh/sbatch files."""
    from tl_desktop.core.project import jobs

    folder = jobs.create_job(project_path, out, gpus=gpus, nodes=nodes, epochs=epochs)
    return {"folder": str(folder), "summary": jobs.summary(jobs.load_job(folder))}


def import_job_task(job_dir: str, project_path: str, *, callback, cancel: CancelToken) -> str:
    """``jobs.import_job``: the new run folder inside the project."""
    from tl_desktop.core.project import jobs

    return str(jobs.import_job(job_dir, project_path))


# --- labelling in the app (the Label step) ---------------------------------------------------------------

def label_features_task(paths: list[str], shas: list[str], image_size: int | None = None, *, callback,
                        cancel: CancelToken):
    """``labelling_simulation.embed_images``: the pretrained embeddings the labelling probe learns on."""
    from tl_desktop.core.insight.labelling_simulation import embed_images

    return embed_images(paths, shas, image_size=image_size, callback=callback, cancel=cancel)


def label_fit_task(x, rows: list[int], y: list[str], curve: list[tuple[int, float]], seed: int, *, callback,
                   cancel: CancelToken):
    """``active.fit``: the probe refitted on the labels so far, with its cross-validated estimate."""
    from tl_desktop.core.insight.active import fit

    return fit(x, rows, y, curve, seed)


def label_order_task(x, rows: list[int], k: int, proba, seed: int, *, callback, cancel: CancelToken) -> list[int]:
    """``active.choose``: the next ``k`` of ``rows`` in the uncertainty order (k-means: too slow for the GUI)."""
    from tl_desktop.core.insight.active import choose

    return choose(x, rows, k, proba=proba, seed=seed)


def export_labels_task(source: str, csv: str | None, labels: dict[str, Any], target: str, *, callback,
                       cancel: CancelToken) -> int:
    """Scan with the labels applied and write every labelled image as a ``path,label`` CSV; returns its rows."""
    from tl_desktop.core.data import scan as data
    from tl_desktop.core.data.labels import write_csv

    report = data.scan(source, csv=csv, labels=labels, cancel=cancel)
    return write_csv(report, target)
