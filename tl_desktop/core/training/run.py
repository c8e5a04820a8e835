"""The training engine: from a scanned data set and a pretrained backbone to a run folder with test metrics.

``train(config)`` starts a run, ``resume(run_dir)`` continues one from its last checkpoint, and
``evaluate_run(run_dir)`` re-evaluates one. All three take a callback for events and a CancelToken.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tl_desktop.core import runs
from tl_desktop.core.config import ContinuedFrom, RunConfig, TrainConfig, check_options, check_output_folder
from tl_desktop.core.errors import DataError, TrainingError, WeightsUnavailable
from tl_desktop.core.events import Cancelled, CancelToken, FitEnded, FitStarted, Notice
from tl_desktop.core.fsutil import atomic_write_json
from tl_desktop.core.models import run_model
from tl_desktop.core.runlock import LOCK_NAME, run_lock
from tl_desktop.core.training.devices import library_versions, resolve_device
from tl_desktop.core.training.strategies import DEFAULT_LR, STRATEGIES, STRATEGY_HELP, resolve_strategy


@dataclass
class RunResult:
    run_dir: str
    best_epoch: int
    cancelled: bool
    test_metrics: dict[str, Any] | None


def validate_config(config: TrainConfig) -> None:
    """Refuse options that cannot work, before anything is written (the CLI, the window and jobs alike).

    Raises:
        TrainingError: an option outside its range (``config.OPTION_BOUNDS``: NaN, 5 for label smoothing...),
            an unknown choice, or no validation split.
        DataError: the output folder is inside the image folder.
    """
    from tl_desktop.core.models.catalog import AUGMENTATIONS, get_info

    checks = [
        (config.strategy in STRATEGIES, f"unknown strategy '{config.strategy}'; choose one of {', '.join(STRATEGIES)}"),
        (config.augmentation in AUGMENTATIONS, f"augmentation must be one of {', '.join(AUGMENTATIONS)}"),
        (config.balance in ("auto", "weighted-loss", "sampler", "off"), "balance: auto, weighted-loss, sampler or off"),
        (config.device in ("auto", "cpu", "cuda", "mps"), "device must be auto, cpu, cuda or mps"),
    ]
    for ok, message in checks:
        if not ok:
            raise TrainingError(message)
    check_options(config)
    if config.val_fraction + config.test_fraction >= 0.9:
        raise TrainingError("validation + test fractions must stay under 0.9")
    if config.val_fraction <= 0:
        raise TrainingError("a validation split is needed (val fraction > 0)")
    check_output_folder(config.out, config)
    try:
        get_info(config.model)
    except KeyError as exc:
        raise TrainingError(str(exc.args[0])) from exc
    _check_weights_file(config.weights_file)


def _check_weights_file(name: str | None) -> None:
    """An imported weights file is read before the run folder exists: a ``.safetensors`` file's header
    (``runs.check_safetensors``: length, dtypes, shapes, offsets), any other file through the catalog's loader.

    Raises:
        WeightsUnavailable: the file is missing or not a usable weights file (one line naming it).
    """
    from tl_desktop.core.models.catalog import _load_state_file

    if not name:
        return
    path = Path(name)
    if not path.is_file():
        raise WeightsUnavailable(f"weights file {path} not found; check the path given to --weights-file")
    if path.suffix.lower() != ".safetensors":
        _load_state_file(path)
        return
    try:
        runs.check_safetensors(path)
    except (OSError, ValueError) as exc:
        raise WeightsUnavailable(f"{path.name}: not a usable weights file ({exc})") from exc


# --- starting a run --------------------------------------------------------------------------------------

def _prepare_out(out: Path) -> None:
    """Refuse an output path that is a file or a non-empty folder (the run lock made the folder, and removes it
    again when a later check refuses the run, so a refusal leaves nothing behind)."""
    if out.exists() and not out.is_dir():
        raise TrainingError(f"{out} exists and is not a folder")
    if out.is_dir() and any(p.name != LOCK_NAME for p in out.iterdir()):
        raise TrainingError(f"{out} is not empty; choose a new folder (or use 'resume' for an earlier run)")


def _manifest(report, split, earlier: tuple[RunConfig, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The training manifest; when continuing a run, its classes come first in their old order and the groups
    and identical files it already used keep their old subset (its test patients never become training ones).

    Raises:
        TrainingError: the final assignment lets a group or identical files cross subsets.
    """
    from tl_desktop.core.data.split import keep_earlier_subsets, leakage

    if earlier:
        split = keep_earlier_subsets(report, split, {f["sha256"]: f["subset"] for f in earlier[1]["files"]})
    crossing = [finding for finding in leakage(report, split) if finding.leaks]
    if crossing:
        raise TrainingError(f"the split would leak: {crossing[0].message}")
    files = [{"path": s.path, "label": s.label, "sha256": s.sha256, "subset": split.assignment[s.path],
              "width": s.width, "height": s.height, **({} if s.findings is None else {"findings": s.findings})}
             for s in report.samples if s.path in split.assignment]
    old_classes = list(earlier[0].class_names) if earlier else []
    present = report.classes if report.is_multilabel else {f["label"] for f in files}
    new_classes = sorted(set(present) - set(old_classes))
    return {"root": str(Path(report.root).resolve()), "classes": old_classes + new_classes,
            "split": split.to_dict(), "files": files}


def _earlier_run(config: TrainConfig) -> tuple[RunConfig, dict[str, Any]] | None:
    """Config and manifest of the run to continue from, after checking it can be continued."""
    if not config.init_from:
        return None
    run_dir = Path(config.init_from)
    earlier = runs.load_config(run_dir)
    if earlier.model != config.model:
        raise TrainingError(f"{run_dir.name} used {earlier.model}; continue it with --model {earlier.model}")
    if runs.read_status(run_dir)["state"] != "finished" or not (run_dir / "checkpoints" / "best.json").is_file():
        raise TrainingError(f"{run_dir.name} has not finished; resume it before continuing from it")
    return earlier, runs.load_manifest(run_dir)


def train(config: TrainConfig, callback: Callable | None = None, cancel: CancelToken | None = None) -> RunResult:
    """Scan, split, write the run folder and fit. Raises TrainingError / DataError for unusable input.

    Nothing that already exists is overwritten: the output folder must be new or empty. Under ``torchrun``
    rank 0 prepares the run folder and every rank then trains its share of each batch.
    """
    from tl_desktop.core.training import distributed

    validate_config(config)
    d = distributed.init(resolve_device(config.device).type)
    with _owned(Path(config.out), "training", d.is_main, create=True):
        return _train(config, d, callback, cancel)


def _owned(run_dir: Path, purpose: str, main: bool, *, create: bool = False):
    """The run folder's lock (``runlock.run_lock``), held by rank 0 alone under ``torchrun``."""
    return run_lock(run_dir, purpose, create=create) if main else nullcontext()


def _train(config: TrainConfig, d, callback: Callable | None, cancel: CancelToken | None) -> RunResult:
    from tl_desktop.core.training import distributed

    if not d.enabled:
        _start(config, callback)
        return _fit(Path(config.out), callback, cancel)
    problem = None
    if d.is_main:
        try:
            _start(config, callback)
        except Exception as exc:  # noqa: BLE001 - re-raised below after telling the other ranks
            problem = exc
    message = distributed.broadcast(None if problem is None else f"{problem}")
    if problem is not None:
        raise problem
    if message is not None:
        raise TrainingError(f"rank 0 could not start the run: {message}")
    try:
        return _fit(Path(config.out), callback, cancel)
    finally:
        distributed.shutdown()


def _start(config: TrainConfig, callback: Callable | None = None) -> None:
    """Check the data, split it and write the run folder's config and manifest; the leakage check's verdict
    and its warnings go to ``callback`` as Notices."""
    from tl_desktop.core.data.split import (
        Split,
        check_minimum_per_class,
        leakage_check,
        split_source_reviewed,
    )

    earlier = _earlier_run(config)
    out = Path(config.out)
    _prepare_out(out)
    report, split, review = split_source_reviewed(config)  # a TrainConfig is a DataSource
    if earlier and (earlier[0].task == "multi-label") != report.is_multilabel:
        raise TrainingError(f"{Path(config.init_from or '').name} was trained for a {earlier[0].task} task and these "
                            f"images are a {report.task} set: start a new run instead of continuing it")
    manifest = _manifest(report, split, earlier)
    if review is not None:
        manifest["review"] = review  # the decisions applied (the report's audit folder lists them)
    if config.labels is not None:  # labels given in the app (data/labels.py): how many of the files took one
        given = config.labels.get("assigned") or {}
        manifest["labels_in_app"] = {"layout": config.labels.get("layout"),
                                     "files": sum(s.path in given for s in report.samples),
                                     "unlabelled_left_out": len(report.unlabelled)}
    check_minimum_per_class(report, Split.from_dict(manifest["split"]))
    if callback is not None:
        for line in leakage_check(report, Split.from_dict(manifest["split"])).lines():
            callback(Notice(line))
    train_counts: dict[str, int] = {}
    for f in manifest["files"]:
        for label in f.get("findings", [f["label"]]) if f["subset"] == "train" else ():
            train_counts[label] = train_counts.get(label, 0) + 1
    strategy = resolve_strategy(config.strategy, train_counts)
    resolved = _resolved(config, strategy, manifest["classes"], earlier)
    atomic_write_json(out / "manifest.json", manifest)
    runs.write_config(out, RunConfig(**resolved, train_counts=train_counts, skipped_files=len(report.skipped),
                                     task=report.task))
    runs.write_status(out, "created")


def _resolved(config: TrainConfig, strategy: str, class_names: list[str],
              earlier: tuple[RunConfig, dict[str, Any]] | None) -> dict[str, Any]:
    """The request's options with "auto" decided: strategy, learning rate, weights and preprocessing."""
    from tl_desktop.core.models.catalog import data_config, weights_source

    weights = "none" if strategy == "scratch" or earlier else "pretrained"
    wfile = Path(config.weights_file) if config.weights_file else None
    source = weights_source(config.model, weights, wfile)
    continued = None
    image_size = config.image_size
    if earlier:
        run, folder = earlier[0], Path(config.init_from or "")
        source = f"continued from run {folder.name} ({run.weights_source})"
        continued = ContinuedFrom(str(folder.resolve()), list(run.class_names))
        image_size = image_size or run.input_size[-1]
    options = {f.name: getattr(config, f.name) for f in fields(TrainConfig) if f.name not in ("init_from", "split", "review", "labels")}
    return {**options, "strategy_requested": config.strategy, "strategy": strategy, "class_names": class_names,
            "weights": weights, "weights_source": source, "data_config": data_config(config.model, image_size),
            "init_from": continued, "lr": config.lr or DEFAULT_LR[strategy], "versions": library_versions()}


def resume(run_dir: Path | str, callback: Callable | None = None, cancel: CancelToken | None = None) -> RunResult:
    """Continue a run from its last checkpoint (or from the start when it stopped before one).

    Raises:
        RunIntegrityError: one of its images (all subsets: it trains, picks the best epoch and ends with the test
            metrics) changed or is missing, or its last checkpoint was modified after it was written.
    """
    from tl_desktop.core.data.integrity import RESUME_ADVICE, check_run_images
    from tl_desktop.core.training import distributed

    run_dir = Path(run_dir)
    config = runs.load_config(run_dir)
    if runs.read_status(run_dir)["state"] == "finished":
        raise TrainingError(f"{run_dir.name} already finished; start a new run to train further")
    d = distributed.init(resolve_device(config.device).type)
    try:
        with _owned(run_dir, "resuming training", d.is_main):
            if runs.read_status(run_dir)["state"] == "finished":  # again, now that no one else writes it
                raise TrainingError(f"{run_dir.name} already finished; start a new run to train further")
            check_run_images(run_dir, advice=RESUME_ADVICE)
            return _fit(run_dir, callback, cancel)
    finally:
        distributed.shutdown()


def _fit(run_dir: Path, callback: Callable | None, cancel: CancelToken | None) -> RunResult:
    from tl_desktop.core.training import distributed
    from tl_desktop.core.training.fit import fit

    main = distributed.current().is_main
    emit = callback if callback is not None and main else (lambda event: None)
    status = runs.write_status if main else (lambda *args: None)  # rank 0 alone writes run files
    cancel = cancel or CancelToken()
    config = runs.load_config(run_dir)
    status(run_dir, "running")
    try:
        best_epoch, metrics = fit(run_dir, config, emit, cancel)
    except Cancelled:
        status(run_dir, "cancelled", "stopped by the user; resume continues from the last epoch")
        emit(FitEnded(str(run_dir), -1, True, None))
        return RunResult(str(run_dir), -1, True, None)
    except BaseException as exc:
        status(run_dir, "failed", f"{type(exc).__name__}: {exc}".splitlines()[0])
        raise
    status(run_dir, "finished")
    emit(FitEnded(str(run_dir), best_epoch, False, metrics))
    return RunResult(str(run_dir), best_epoch, False, metrics or None)


def evaluate_run(run_dir: Path | str, data: str | None = None, callback: Callable | None = None,
                 cancel: CancelToken | None = None, *, allow_changed: bool = False) -> dict[str, Any]:
    """Test metrics of a run's best model on its test split, or on all usable images of another data set.

    On the test split the figures are those of the run's evaluation artefact (``current.current_clinical``:
    the stored one while it belongs to the best checkpoint file, computed again otherwise), with
    ``evaluation``: the checkpoint they belong to. Its images are checked against the manifest first;
    ``allow_changed`` evaluates changed ones as they are now, and ``changed_files`` then lists them.

    Raises:
        RunIntegrityError: an image changed or is missing (without ``allow_changed``), or the checkpoint was
            modified after training.
    """
    from tl_desktop.core.training.fit import evaluate_files

    run_dir = Path(run_dir)
    if data is None:
        from tl_desktop.core.evaluation.current import current_clinical
        from tl_desktop.core.evaluation.stored_result import summary

        if not any(f["subset"] == "test" for f in runs.load_manifest(run_dir)["files"]):
            return {"n": 0, "misclassified": []}
        clinical = current_clinical(run_dir, callback=callback, cancel=cancel, allow_changed=allow_changed)
        return {**summary(clinical), **({"changed_files": clinical["changed_files"]}
                                        if clinical.get("changed_files") else {})}
    from tl_desktop.core.data.scan import scan

    loaded = run_model.load_run(run_dir)
    multi = loaded.config.task == "multi-label"
    report = scan(data, label_columns=loaded.config.label_columns if multi else None)
    if not report.usable:
        raise DataError(report.unusable)
    if multi != report.is_multilabel:
        raise TrainingError(f"this model answers a {loaded.config.task} task and {Path(data).name} is a "
                            f"{report.task} set: evaluate it on images labelled the same way")
    unknown = sorted(set(report.classes) - set(loaded.class_names))
    if unknown:
        raise TrainingError(f"{'findings' if multi else 'classes'} unknown to this model: {', '.join(unknown)}")
    seen = {f["sha256"] for f in loaded.manifest["files"] if f["subset"] in ("train", "val")}
    overlap = [s for s in report.samples if s.sha256 in seen]  # trained or tuned on: not a fair test
    fresh = [s for s in report.samples if s.sha256 not in seen]
    if not fresh:
        raise TrainingError("every image of that data set was used to train or tune this model")
    emit, cancel = callback or (lambda e: None), cancel or CancelToken()
    if multi:
        metrics = _multilabel_on(run_dir, loaded, report, fresh, emit, cancel)
    else:
        metrics = evaluate_files(loaded.model, loaded.data_config, loaded.class_names,
                                 [(report.abspath(s), s.label) for s in fresh], emit, cancel)
    metrics["excluded_seen_in_training"] = sorted(s.path for s in overlap)
    return metrics


def _multilabel_on(run_dir: Path, loaded, report, samples, emit, cancel) -> dict[str, Any]:
    """A multi-label model's figures on other images, at the per-finding thresholds of the run's evaluation."""
    import numpy as np

    from tl_desktop.core.evaluation import multilabel_run
    from tl_desktop.core.evaluation.current import current_clinical
    from tl_desktop.core.evaluation.predict import predict_files
    from tl_desktop.core.evaluation.run_evaluation import checkpoint_label

    clinical = current_clinical(run_dir, callback=emit, cancel=cancel)
    rows = [{"findings": s.findings} for s in samples]
    targets = multilabel_run.targets(rows, loaded.class_names)
    logits, y = predict_files(loaded.model, loaded.data_config, [report.abspath(s) for s in samples], targets,
                              callback=emit, cancel=cancel)
    preds = {"paths": [s.path for s in samples], "labels": np.asarray(y, dtype=int).tolist(),
             "logits": logits.astype(np.float64).tolist()}
    out = multilabel_run.summary({**clinical, "predictions": {"other": preds}}, "other")
    out["thresholds_from"] = f"the validation split of the run ({checkpoint_label(clinical)})"
    return out


__all__ = ["STRATEGIES", "STRATEGY_HELP", "TrainConfig", "RunResult", "TrainingError", "train", "resume",
           "evaluate_run", "Notice", "FitStarted"]
