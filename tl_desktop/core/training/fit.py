"""One fit of a resolved run config: model, strategy, data, loop, then the run's evaluation.

The test figures of ``metrics.json`` are those of the run's evaluation artefact (``clinical.json``, computed
from the best checkpoint when the fit ends), so the fit's summary can never disagree with what the window,
the report and the export show.

Split from ``training.py`` so that this module, which imports torch at module level, is only loaded once
training actually starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tl_desktop.core import runs
from tl_desktop.core.config import ContinuedFrom, RunConfig
from tl_desktop.core.data.datasets import (
    EpochBatches,
    PreparedImages,
    class_weights,
    default_workers,
    make_loader,
)
from tl_desktop.core.data.scan import WEIGHTING_RATIO as IMBALANCE_RATIO  # noqa: E402 - one rule with the scan
from tl_desktop.core.evaluation.metrics import classification_metrics, misclassified
from tl_desktop.core.evaluation.predict import predict_files, predict_logits
from tl_desktop.core.events import CancelToken, FitStarted, Notice, Progress
from tl_desktop.core.fsutil import atomic_write_json
from tl_desktop.core.models import run_model
from tl_desktop.core.models.catalog import create_model
from tl_desktop.core.training import distributed, losses
from tl_desktop.core.training.devices import amp_dtype
from tl_desktop.core.training.loop import Feed, Loop, LoopOptions, LoopState, seed_all
from tl_desktop.core.training.strategies import freeze_bn_of_frozen, optimizer, set_trainable


class _Files:
    """Paths, label indices (multi-label: 0/1 rows) and hashes of one subset of the manifest."""

    def __init__(self, manifest: dict[str, Any], subset: str, class_names: list[str], multi: bool = False):
        root = Path(manifest["root"])
        rows = [f for f in manifest["files"] if f["subset"] == subset]
        self.multi = multi
        self.rel = [f["path"] for f in rows]
        self.paths = [root / f["path"] for f in rows]
        self.labels = losses.label_targets(rows, class_names, multi)
        self.shas = [f["sha256"] for f in rows]
        self.sizes = [(int(f.get("width", 0)), int(f.get("height", 0))) for f in rows]

    def __len__(self) -> int:
        return len(self.paths)


def _balance(config: RunConfig, labels: Any, n_classes: int, emit) -> tuple[Any, Any]:
    """(loss class weights, sampler weights) following the config's balance mode; for multi-label targets
    (loss positive weights per label, None): ``_positive_weights``."""
    if isinstance(labels, torch.Tensor):
        return losses.positive_weights(config, labels, emit), None
    counts = np.bincount(labels, minlength=n_classes)
    ratio = counts.max() / max(counts.min(), 1)
    mode = config.balance
    if mode == "auto":
        mode = "weighted-loss" if ratio > IMBALANCE_RATIO else "off"
        if mode != "off":
            emit(Notice(f"Classes are imbalanced ({ratio:.1f}:1): the loss is weighted by class frequency"))
    weights = class_weights(labels, n_classes)
    if mode == "weighted-loss":
        return weights, None
    if mode == "sampler":
        return None, weights[torch.tensor(labels)]
    return None, None


def fit(run_dir: Path, config: RunConfig, emit: Callable, cancel: CancelToken) -> tuple[int, dict]:
    """Train per ``config`` (resuming from ``last`` when present), evaluate on test; (best epoch, metrics)."""
    from tl_desktop.core.training.devices import device_description, resolve_device

    seed_all(config.seed)
    manifest = runs.load_manifest(run_dir)
    names = config.class_names
    subsets = {s: _Files(manifest, s, names, config.task == "multi-label") for s in ("train", "val", "test")}
    d = distributed.current()
    device = resolve_device(config.device)
    if config.strategy == "linear-probe" and not d.enabled:
        device = torch.device("cpu")  # a linear head trains fastest where the embeddings are
    if device.type == "cuda" and d.enabled:
        device = torch.device("cuda", d.local_rank)
    weights_file = Path(config.weights_file) if config.weights_file else None
    model = create_model(config.model, len(names), weights=config.weights, weights_file=weights_file)
    if config.init_from:
        _load_earlier(model, config.init_from)
    set_trainable(model, config.strategy, config.fine_tune_stages)
    state = LoopState(batch_size=config.batch_size)
    last = run_dir / "checkpoints" / "last.json"
    optimizer_state = None
    if last.is_file():
        model_state, optimizer_state, info = runs.load_checkpoint(run_dir, "last")
        model.load_state_dict(model_state, strict=True)
        state = LoopState(**{k: v for k, v in info["loop"].items() if k in LoopState.__dataclass_fields__})
        emit(Notice(f"Resuming after epoch {state.epoch} of {config.epochs}"))
    if config.strategy == "linear-probe":
        loop = _probe_loop(run_dir, config, model, subsets, device, emit, cancel)
    else:
        loop = _network_loop(run_dir, config, model, subsets, device, emit, cancel)
    if optimizer_state is not None:
        loop.optimizer.load_state_dict(optimizer_state)
    if d.is_main:
        extraction = getattr(loop, "feature_extraction", None)  # the linear probe's fp32 / int8 features
        atomic_write_json(run_dir / "hardware.json",
                          {**_hardware(device, d.world), **({"features": extraction} if extraction else {})})
    emit(FitStarted(str(run_dir), config.strategy, device_description(device), config.epochs,
                    loop.steps_per_epoch(state.batch_size), state.batch_size, state.epoch))
    if not (last.is_file() and runs.read_json(last)["loop"].get("stopped_early")):
        state = loop.run(state)
    distributed.barrier()
    if not d.is_main:
        return state.best_epoch, {}
    metrics = _test_metrics(run_dir, names, bool(len(subsets["test"])), emit, cancel)
    if config.init_from and config.task == "multi-label":
        metrics["continued"] = {"earlier_run": Path(config.init_from.run_dir).name,
                                "forgetting": None, "note": "forgetting is measured for single-label runs only"}
    elif config.init_from:
        best_state, _, _ = runs.load_checkpoint(run_dir, "best")
        model.load_state_dict(best_state, strict=True)
        metrics["continued"] = _forgetting(config.init_from, model, config, emit, cancel)
    metrics["best_epoch"] = state.best_epoch
    metrics["epochs_run"] = state.epoch
    atomic_write_json(run_dir / "metrics.json", metrics)
    return state.best_epoch, metrics


def _test_metrics(run_dir: Path, names: list[str], has_test: bool, emit, cancel) -> dict[str, Any]:
    """The test figures of the run's evaluation of its best checkpoint (``stored_result.summary``), computed now;
    ``test_predictions.csv`` is written from the same per-image predictions."""
    from tl_desktop.core.evaluation.run_evaluation import evaluate_clinical
    from tl_desktop.core.evaluation.stored_result import ClinicalResult

    if not has_test:
        return {"n": 0, "misclassified": []}
    result = ClinicalResult(evaluate_clinical(run_dir, callback=emit, cancel=cancel))
    y, probs = result.probs("test")
    paths = result.data["predictions"]["test"]["paths"]
    if result.multilabel:
        true = [";".join(n for n, on in zip(names, row, strict=True) if on) for row in y]
        runs.write_predictions(run_dir, paths, true, probs, names, result.findings_text("test"))
    else:
        runs.write_predictions(run_dir, paths, [names[i] for i in y], probs, names)
    return result.summary("test")


def _load_earlier(model: torch.nn.Module, earlier: ContinuedFrom) -> None:
    """Start from an earlier run's best weights; its classes keep their head rows, new classes get fresh ones."""
    state, _, _ = runs.load_checkpoint(Path(earlier.run_dir), "best")
    n_old = len(earlier.class_names)
    fresh = model.state_dict()
    for name in (f"{model.default_cfg['classifier']}.weight", f"{model.default_cfg['classifier']}.bias"):
        grown = fresh[name].clone()
        grown[:n_old] = state[name]
        state[name] = grown
    model.load_state_dict(state, strict=True)


def _forgetting(earlier: ContinuedFrom, model, config: RunConfig, emit, cancel) -> dict[str, Any]:
    """Accuracy on the earlier run's test split before and after continuing (old classes only)."""
    old_run = run_model.load_run(earlier.run_dir)
    files = old_run.files("test")
    before = evaluate_files(old_run.model, old_run.data_config, old_run.class_names, files, emit, cancel)
    after = evaluate_files(model.cpu(), config.data_config, config.class_names, files, emit, cancel)
    return {"earlier_run": Path(earlier.run_dir).name, "old_test_images": len(files),
            "old_test_accuracy_before": before.get("accuracy"), "old_test_accuracy_after": after.get("accuracy"),
            "forgetting": None if before.get("accuracy") is None else before["accuracy"] - after["accuracy"]}


def _hardware(device: torch.device, processes: int) -> dict[str, Any]:
    """What this fit actually ran on, for the report (not the requested setting)."""
    import os
    import platform

    from tl_desktop.core.training.devices import device_description

    info = {"device": device_description(device), "processes": processes, "cpu": platform.processor() or
            platform.machine(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "os": platform.platform()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, mixed_precision=str(amp_dtype(device)).removeprefix("torch."))
    return info


def _epoch_order(n: int, seed: int, epoch: int, sample_weights: torch.Tensor | None) -> torch.Tensor:
    """The global order of training items in an epoch: a pure function of (seed, epoch)."""
    gen = torch.Generator().manual_seed(seed * 1000 + epoch)
    if sample_weights is not None:
        return torch.multinomial(sample_weights, n, replacement=True, generator=gen)
    return torch.randperm(n, generator=gen)


def _steps(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last and n > batch_size else -(-n // batch_size)


def _wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel under torchrun, the module itself otherwise."""
    if not distributed.current().enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def _probe_loop(run_dir, config: RunConfig, model, subsets, device, emit, cancel):
    """Embeddings once (cached on disk), then only the classifier trains on them."""
    subsets = {k: v for k, v in subsets.items() if k != "test"}  # the run's evaluation predicts the test images
    features, extraction = _probe_features(config, model, subsets, emit, cancel)
    head = model.get_classifier().to(device)
    features = {k: v.to(device) for k, v in features.items()}
    labels = {k: (v.labels.to(device) if v.multi else torch.tensor(v.labels, dtype=torch.long, device=device))
              for k, v in subsets.items()}
    loss_weights, sample_weights = _balance(config, subsets["train"].labels, len(config.class_names), emit)
    loss_fn = losses.loss_for(config, None if loss_weights is None else loss_weights.to(device))
    n_train = len(subsets["train"])
    forward = _wrap(head, device)

    def batches(epoch: int, batch_size: int):
        order = _epoch_order(n_train, config.seed, epoch, sample_weights)
        for idx in distributed.shard(order, batch_size, drop_last=False):
            yield features["train"][idx.to(device)], labels["train"][idx.to(device)]

    def validate() -> tuple[float, float, float]:
        return _scores(head(features["val"]).detach().cpu(), labels["val"].cpu(), loss_fn.cpu())

    feed = Feed(lambda bs: _steps(n_train, bs, False), batches, forward, _no_grad(validate), lambda: head.train())
    options = LoopOptions(config.epochs, config.patience, config.seed, warmup_fraction=0.0)
    loop = Loop(run_dir, model, optimizer(head, "linear-probe", config.lr), loss_fn, feed, options, device, emit,
                cancel)
    loop.feature_extraction = extraction  # which backbone computed the training features, for hardware.json
    return loop


def _probe_features(config: RunConfig, model, subsets, emit, cancel) -> tuple[dict[str, torch.Tensor], dict]:
    """Frozen-backbone features of every subset and which backbone computed the training ones.

    Validation features are always fp32 (what the exported backbone computes, so the best epoch is chosen on
    the exported model); the training features may come from the int8 backbone (``_int8_train_features``).
    Under torchrun rank 0 fills the disk cache first.
    """
    from tl_desktop.core.models.embeddings import extract

    d = distributed.current()
    if d.enabled and not d.is_main:
        distributed.barrier()  # wait for rank 0 to fill the cache, then read it
    features: dict[str, torch.Tensor] = {}
    extraction: dict[str, Any] = {"backend": "fp32"}
    for name in sorted(subsets, key=lambda n: n == "train"):  # val first: the int8 gate compares with it
        files = subsets[name]
        if not len(files):
            features[name] = torch.zeros((0, model.num_features))
            continue
        if name == "train" and "val" in features:
            int8, extraction = _int8_train_features(config, model, subsets, features["val"].numpy(), emit, cancel)
            if int8 is not None:
                features[name] = int8
                continue
        emit(Progress(f"embedding {name}", 0, len(files)))
        start = time.perf_counter()
        vectors, info = extract(model, config.data_config, files.paths, files.shas, callback=emit, cancel=cancel)
        features[name] = torch.from_numpy(vectors)
        emit(Notice(f"Image features ready for {len(files)} {name} images in {time.perf_counter() - start:.1f} s: "
                    f"{info['computed']} computed by the pretrained network, {info['cached']} reused from the "
                    f"cache (feature extraction, {info['backend']})"))
    if d.enabled and d.is_main:
        distributed.barrier()
    return features, extraction


def _int8_train_features(config: RunConfig, model, subsets, val_fp32: np.ndarray, emit,
                         cancel) -> tuple[torch.Tensor | None, dict[str, Any]]:
    """Training features from the int8 backbone when enough are to compute and the gate passes; else None.

    The gate (``quantise.int8_gate``) fits a head on the int8 training features and compares its predictions
    on the fp32 and the int8 validation features: the run's validation, evaluation and export all use the fp32
    backbone, so int8 only speeds up extraction, and only when the head it yields behaves alike on fp32 features.
    """
    from tl_desktop.core.models import embeddings, quantise

    train, val = subsets["train"], subsets["val"]
    if config.task == "multi-label":  # the int8 gate compares single-label answers
        return None, {"backend": "fp32"}
    if distributed.current().enabled or not len(val) or \
            embeddings.uncached(model, config.data_config, train.shas) < quantise.MIN_IMAGES:
        return None, {"backend": "fp32"}
    calibration = embeddings.Calibration.sample(train.paths, train.shas, quantise.CALIBRATION_IMAGES)
    emit(Progress("embedding train", 0, len(train)))
    start = time.perf_counter()
    try:
        q_train, info = embeddings.extract(model, config.data_config, train.paths, train.shas, callback=emit,
                                           cancel=cancel, int8=calibration)
        q_val, _ = embeddings.extract(model, config.data_config, val.paths, val.shas, cancel=cancel, int8=calibration)
    except embeddings.Int8Unavailable as exc:
        emit(Notice(f"The faster 8-bit feature extraction was not used ({exc}): full precision used (int8 "
                    "refused, fp32)"))
        return None, {"backend": "fp32", "int8_refused": str(exc)}
    gate = quantise.int8_gate(q_train, np.asarray(train.labels), val_fp32, q_val, np.asarray(val.labels),
                              len(config.class_names))
    emit(Notice(f"Image features ready for {len(train)} train images in {time.perf_counter() - start:.1f} s: "
                f"{info['computed']} computed by the pretrained network in 8-bit (int8), {info['cached']} reused "
                f"from the cache; {gate.sentence()}"))
    return (torch.from_numpy(q_train) if gate.use_int8 else None), gate.record()


def _no_grad(fn):
    def wrapper():
        with torch.no_grad():
            return fn()
    return wrapper


def _scores(logits: torch.Tensor, labels: torch.Tensor, loss_fn) -> tuple[float, float, float]:
    """(loss, accuracy, balanced accuracy) of logits; zeros for an empty set.

    Multi-label (0/1 rows): binary cross-entropy, the share of right image-finding decisions (1 - Hamming
    loss) and the mean over findings of their balanced accuracy, each finding called present at p >= 0.5.
    """
    if not len(labels):
        return 0.0, 0.0, 0.0
    from sklearn.metrics import balanced_accuracy_score

    if labels.ndim == 2:
        truth, called = labels.numpy() > 0.5, (logits.float() >= 0).numpy()
        loss = float(torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float()))
        balanced = [balanced_accuracy_score(truth[:, j], called[:, j]) for j in range(truth.shape[1])
                    if 0 < truth[:, j].sum() < len(truth)]
        return loss, float((truth == called).mean()), float(np.mean(balanced)) if balanced else 0.0

    pred = logits.argmax(1)
    loss = float(torch.nn.functional.cross_entropy(logits.float(), labels))
    return loss, float((pred == labels).float().mean()), float(balanced_accuracy_score(labels.numpy(), pred.numpy()))


def _prepared(config: RunConfig, subsets, emit, cancel) -> dict[str, list[Path]]:
    """Every image of the run decoded once into the prepared cache (train, val and test: the run's evaluation
    reads the same entries); under torchrun rank 0 builds the entries while the other ranks wait."""
    from tl_desktop.core.data.prepared import Spec, prepare

    d = distributed.current()
    spec = Spec.from_data_config(config.data_config)
    names = list(subsets)
    paths = [p for name in names for p in subsets[name].paths]
    if d.enabled and not d.is_main:
        distributed.barrier()
    start = time.perf_counter()
    entries = prepare(paths, spec, callback=emit, cancel=cancel)
    if d.enabled and d.is_main:
        distributed.barrier()
    emit(Notice(f"{len(paths)} images ready at {spec.resize_size} px in {time.perf_counter() - start:.1f} s "
                "(each file is decoded once; later epochs and runs read the prepared copies)"))
    out, i = {}, 0
    for name in names:
        out[name], i = entries[i:i + len(subsets[name])], i + len(subsets[name])
    return out


def _network_loop(run_dir, config: RunConfig, model, subsets, device, emit, cancel):
    """Images through the (partly) trainable network, with augmentation, on the chosen device.

    Loader workers (persistent, pinned for CUDA) cut uint8 crops from the prepared images; flips, rotations and
    normalisation run per batch on the training device."""
    from tl_desktop.core.models.catalog import eval_pipeline, train_pipeline

    cfg = config.data_config
    model = model.to(device, memory_format=torch.channels_last)
    entries = _prepared(config, subsets, emit, cancel)
    train_files, val_files = subsets["train"], subsets["val"]
    pipe = train_pipeline(cfg, config.augmentation, allow_flip=config.allow_flip, allow_rotate=config.allow_rotate)
    evaluation = eval_pipeline(cfg)
    workers = config.workers if config.workers is not None else default_workers(device, len(train_files))
    pin = device.type == "cuda"
    loss_weights, sample_weights = _balance(config, train_files.labels, len(config.class_names), emit)
    loss_fn = losses.loss_for(config, None if loss_weights is None else loss_weights.to(device))
    amp = amp_dtype(device)
    n_train = len(train_files)
    ddp = _wrap(model, device)

    def order(epoch: int, batch_size: int) -> list[list[int]]:
        ranked = _epoch_order(n_train, config.seed, epoch, sample_weights)
        return [p.tolist() for p in distributed.shard(ranked, batch_size, drop_last=n_train > batch_size)]

    sampler = EpochBatches(order, config.seed)
    train_set = PreparedImages(entries["train"], train_files.paths, train_files.labels, pipe.spec, pipe.crop)
    train_loader = make_loader(train_set, workers=workers, pin=pin, batch_sampler=sampler)
    d = distributed.current()
    mine = list(range(d.rank, len(val_files), d.world)) if d.enabled else list(range(len(val_files)))
    val_labels = val_files.labels[mine] if val_files.multi else [val_files.labels[i] for i in mine]
    val_set = PreparedImages([entries["val"][i] for i in mine], [val_files.paths[i] for i in mine],
                             val_labels, evaluation.spec, evaluation.crop)
    val_loader = make_loader(val_set, workers=min(workers, 2) if pin else 0, pin=pin, batch_size=config.batch_size)

    def batches(epoch: int, batch_size: int):
        sampler.epoch, sampler.batch_size = epoch, batch_size
        for x, y in train_loader:
            x = x.to(device, non_blocking=True)
            if pipe.augment.active:
                x = pipe.augment(x)
            yield pipe.normalise(x).contiguous(memory_format=torch.channels_last), y

    def validate() -> tuple[float, float, float]:
        empty = np.zeros((0, len(config.class_names)) if val_files.multi else (0,), np.int64)
        part = predict_logits(model, val_loader, device, amp, cancel, evaluation.normalise) if len(val_set) else \
            (np.zeros((0, len(config.class_names)), np.float32), empty)
        if d.enabled:
            pieces = distributed.gather(part)
            part = np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces])
        return _scores(torch.from_numpy(part[0]), torch.from_numpy(part[1]), loss_fn.cpu())

    def train_mode() -> None:
        model.train()
        freeze_bn_of_frozen(model)

    feed = Feed(lambda bs: _steps(n_train, bs, n_train > bs), batches, ddp, validate, train_mode)
    options = LoopOptions(config.epochs, config.patience, config.seed, amp_dtype=amp)
    return Loop(run_dir, model, optimizer(model, config.strategy, config.lr), loss_fn, feed, options, device, emit,
                cancel)


def evaluate_files(model, data_config, class_names, files, emit, cancel) -> dict[str, Any]:
    """Metrics of ``model`` on (path, label) pairs, on the CPU, with the evaluation transform."""
    index = {n: i for i, n in enumerate(class_names)}
    paths, labels = [Path(p) for p, _ in files], [index[lbl] for _, lbl in files]
    emit(Progress("evaluating", 0, len(paths)))
    logits, y = predict_files(model, data_config, paths, labels, callback=emit, cancel=cancel)
    probs = torch.softmax(torch.from_numpy(logits), 1).numpy() if len(y) else logits
    metrics = classification_metrics(y, probs, class_names)
    metrics["misclassified"] = misclassified([str(p) for p, _ in files], y, probs, class_names)
    return metrics
