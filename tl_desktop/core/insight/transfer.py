"""Did transfer help? The transfer check and the model comparison.

``transfer_check`` trains, on one split and one epoch budget, (a) a linear probe on the frozen pretrained
features, (b) a fine-tune from the pretrained weights and (c) the same network from random weights, and
fits (d) a linear classifier on raw 32x32 thumbnails (a no-network baseline). It reports the three indicators
of transfer and a verdict:

1. what the pretrained features alone reach: the linear probe's test score;
2. how much faster transfer learns: epochs and seconds for (b) and (c) to reach a target validation score;
3. whether the final score with transfer matches or beats learning without it: test balanced accuracy with
   95% bootstrap intervals, and the paired interval of the difference on the same test images (resampling
   whole patients when the split was grouped).

On a multi-label set (several findings per image) every arm is judged by its mean AUC over findings instead,
and the baseline is a logistic regression per finding: ``transfer_multilabel``.

``compare_models`` runs one strategy for several backbones on the same split, for a table of accuracy, time
and size. Both write JSON (atomically) next to the runs. Nothing here imports Qt; torch only inside functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tl_desktop.core import runs
from tl_desktop.core.config import DataSource, TrainConfig
from tl_desktop.core.errors import TransferError
from tl_desktop.core.evaluation.statistics import bootstrap, case_groups
from tl_desktop.core.events import Cancelled, CancelToken, Notice
from tl_desktop.core.fsutil import atomic_write_json, atomic_write_text
from tl_desktop.core.insight import transfer_multilabel as tml
from tl_desktop.core.insight.results import CHECK_FILE, CHECK_TEXT, COMPARE_FILE, score_text
from tl_desktop.core.models import run_model

TRANSFER_ARMS = ("linear-probe", "fine-tune")   # start from the pretrained weights
NO_TRANSFER_ARMS = ("scratch", "thumbnail")      # no pretrained knowledge at all
TARGET_FRACTION = 0.9   # indicator 2: target = 90% of the best validation balanced accuracy of any network
MARGIN = 0.02           # verdict: a difference under 2 points of balanced accuracy is not worth a claim
N_BOOT = 2000
THUMBNAIL_SIDE = 32
VERDICT_RULE = (
    "Positive: the better transfer model (linear probe or fine-tune, chosen on the validation images) beats the "
    "better model without transfer (the same network from scratch, or a linear classifier on 32x32 thumbnails, "
    "chosen on the validation images) by at least 2 points of test balanced accuracy, and the 95% interval of "
    "that difference, on the same test images, lies above 0. Negative: it is worse by at least 2 points and the "
    "interval lies below 0. Neutral: anything else (no clear difference either way).")


@dataclass(frozen=True)
class TransferProgress:
    """An engine event of one arm: ``arm`` is "linear-probe", "fine-tune", "scratch", "thumbnail" or a model
    name (``compare_models``); ``event`` is the engine's own event (EpochEnded, Progress, Notice, ...)."""

    arm: str
    event: Any


@dataclass
class ArmResult:
    arm: str
    run_dir: str | None
    test_balanced_accuracy: dict[str, float]    # value, low, high (95% bootstrap interval)
    test_accuracy: dict[str, float]
    best_val_balanced_accuracy: float
    epochs_run: int
    wall_seconds: float                          # the whole arm, embeddings and evaluation included
    epoch_seconds: float                         # sum of the epochs' own seconds (history.csv)
    epochs_to_target: int | None = None
    seconds_to_target: float | None = None
    curve: list[dict[str, float]] = field(default_factory=list)   # epoch, val_balanced_acc, seconds (cumulative)
    # multi-label: test mean AUC over findings (value, low, high) and the validation one, which picks the arms
    # compared; test_balanced_accuracy is then the mean over findings at p >= 0.5, test_accuracy 1 - Hamming loss
    test_macro_auc: dict[str, float] | None = None
    val_macro_auc: float | None = None

    def selection_score(self) -> float:
        """What picks the best arm of each side on the validation images (mean AUC for multi-label)."""
        return self.best_val_balanced_accuracy if self.val_macro_auc is None else self.val_macro_auc


@dataclass
class TransferReport:
    model: str
    data: str
    out_dir: str
    budget_epochs: int
    image_size: int | None
    seed: int
    test_images: int
    classes: list[str]
    target_val_balanced_accuracy: float
    arms: dict[str, ArmResult]
    best_transfer: str
    best_no_transfer: str
    difference: dict[str, float]                 # best transfer - best no transfer: value, low, high
    verdict: str                                 # positive | neutral | negative
    rule: str
    summary: str
    task: str = "single-label"                   # or "multi-label": ``classes`` are then the findings
    metric: str = "balanced accuracy"            # what the verdict compares: "mean AUC over findings"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- statistics ------------------------------------------------------------------------------------------

def _score_rows(codes: np.ndarray, correct: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Balanced accuracy and accuracy of each resample (row of case indices), shape (b, 2).

    ``codes`` are the class indices (0..k-1) of the cases; every resample holds every class.
    """
    labels, hits = codes[index], correct[index]
    recalls = np.stack([hits.sum(axis=1, where=labels == c) / (labels == c).sum(axis=1)
                        for c in range(int(codes.max()) + 1)])
    return np.stack([recalls.mean(axis=0), hits.mean(axis=1)], axis=1)


def _interval(value: float, samples: np.ndarray) -> dict[str, float]:
    low, high = np.percentile(samples, [2.5, 97.5])
    return {"value": float(value), "low": float(low), "high": float(high)}


def _balanced(y: np.ndarray, pred: np.ndarray) -> float:
    correct = np.asarray(pred) == np.asarray(y)
    return float(np.mean([correct[y == c].mean() for c in np.unique(y)]))


def bootstrap_scores(y: np.ndarray, pred: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0,
                     groups: np.ndarray | None = None) -> dict[str, Any]:
    """Balanced accuracy and accuracy with percentile-bootstrap 95% intervals (``statistics.bootstrap``).

    Resamples keep every class's count (or, with ``groups`` of a grouped split, draw whole patients and redraw
    those lacking a class), so balanced accuracy stays defined.
    """
    y = np.asarray(y)
    correct = (np.asarray(pred) == y).astype(float)
    codes = np.unique(y, return_inverse=True)[1]
    values, _ = bootstrap(lambda index: _score_rows(codes, correct, index), y, n_boot=n_boot, seed=seed,
                          groups=groups)
    return {"balanced_accuracy": _interval(_balanced(y, pred), values[:, 0]),
            "accuracy": _interval(float(correct.mean()), values[:, 1])}


def paired_difference(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, *, n_boot: int = N_BOOT,
                      seed: int = 0, groups: np.ndarray | None = None) -> dict[str, float]:
    """Balanced accuracy of A minus B with a paired bootstrap 95% interval (the same resamples for both;
    whole patients with ``groups``)."""
    y = np.asarray(y)
    codes = np.unique(y, return_inverse=True)[1]
    a, b = ((np.asarray(pred) == y).astype(float) for pred in (pred_a, pred_b))
    values, _ = bootstrap(lambda index: _score_rows(codes, a, index)[:, 0] - _score_rows(codes, b, index)[:, 0],
                          y, n_boot=n_boot, seed=seed, groups=groups)
    return _interval(_balanced(y, pred_a) - _balanced(y, pred_b), values)


def verdict_of(difference: dict[str, float], margin: float = MARGIN) -> str:
    if difference["value"] >= margin and difference["low"] > 0:
        return "positive"
    if difference["value"] <= -margin and difference["high"] < 0:
        return "negative"
    return "neutral"


def reach(history: list[dict[str, float]], target: float) -> tuple[int | None, float | None]:
    """First epoch whose validation balanced accuracy is >= ``target`` and the epoch seconds spent until then."""
    total = 0.0
    for row in history:
        total += row["seconds"]
        if row["val_balanced_acc"] >= target - 1e-9:
            return int(row["epoch"]), total
    return None, None


# --- per-image test predictions of a run -----------------------------------------------------------------

def _test_files(run_dir: Path) -> tuple[list[str], list[str]]:
    manifest = runs.load_manifest(Path(run_dir))
    rows = [f for f in manifest["files"] if f["subset"] == "test"]
    return [f["path"] for f in rows], [f["label"] for f in rows]


def predictions_on_test(run_dir: Path | str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(test paths, true labels, predicted labels) of a finished run's best model, as class-name arrays.

    Read from the run's ``test_predictions.csv``; runs trained before it existed are re-run on the test images.
    """
    run_dir = Path(run_dir)
    stored = runs.read_predictions(run_dir)
    if stored is not None:
        return stored["paths"], np.array(stored["true"]), np.array(stored["predicted"])
    paths, labels = _test_files(run_dir)
    return paths, np.array(labels), _predict_again(run_dir)


def _predict_again(run_dir: Path) -> np.ndarray:
    from tl_desktop.core.evaluation.predict import predict_files

    loaded = run_model.load_run(run_dir)
    files = loaded.files("test")
    logits, _ = predict_files(loaded.model, loaded.data_config, [p for p, _ in files], [0] * len(files))
    return np.array([loaded.class_names[i] for i in logits.argmax(1)])


def _test_answers(run_dir: str | None, multi: bool) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(test paths, truth, answers) of a network arm: predicted classes, or (multi-label) the 0/1 findings and
    their sigmoid probabilities."""
    if multi:
        return tml.run_probabilities(Path(run_dir or ""), "test")
    return predictions_on_test(Path(run_dir or ""))


# --- the arms --------------------------------------------------------------------------------------------

def _tagged(callback: Callable | None, arm: str) -> Callable:
    return (lambda event: callback(TransferProgress(arm, event))) if callback else (lambda event: None)


def _prepare(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise TransferError(f"{out_dir} is not an empty folder; choose a new one")
    out_dir.mkdir(parents=True, exist_ok=True)


def _split(source: DataSource):
    """The scan and the split: the source's stored split when given, else a new seeded one."""
    from tl_desktop.core.data.split import check_minimum_per_class, split_source

    report, split = split_source(source)
    if not split.counts().get("test"):
        raise TransferError("the split has no test images; a transfer check needs some")
    check_minimum_per_class(report, split)
    return report, split


def _network_arm(arm: str, config, callback, cancel, groups: dict[str, str] | None,
                 multi: bool = False) -> ArmResult:
    """Train one arm; its test intervals resample whole patients when the split's ``groups`` are given.

    ``multi``: a multi-label set, scored from the run's stored evaluation (``transfer_multilabel``)."""
    from tl_desktop.core.training.run import train

    start = time.perf_counter()
    result = train(config, _tagged(callback, arm), cancel)
    if result.cancelled:
        raise Cancelled("cancelled by the user")
    history = runs.read_history(Path(result.run_dir))
    cumulative, curve = 0.0, []
    for row in history:
        cumulative += row["seconds"]
        curve.append({"epoch": int(row["epoch"]), "val_balanced_acc": row["val_balanced_acc"],
                      "seconds": cumulative})
    best_val = max((r["val_balanced_acc"] for r in history), default=0.0)
    if multi:
        paths, y, probs = tml.run_probabilities(result.run_dir, "test")
        scores = tml.bootstrap_scores(y, probs, n_boot=N_BOOT, seed=config.seed, groups=case_groups(paths, groups))
        _, y_val, p_val = tml.run_probabilities(result.run_dir, "val")
        return ArmResult(arm, result.run_dir, scores["balanced_accuracy"], scores["accuracy"], best_val,
                         len(history), time.perf_counter() - start, cumulative, curve=curve,
                         test_macro_auc=scores["macro_auc"], val_macro_auc=tml.macro_auc(y_val, p_val))
    paths, y, pred = predictions_on_test(result.run_dir)
    scores = bootstrap_scores(y, pred, seed=config.seed, groups=case_groups(paths, groups))
    return ArmResult(arm, result.run_dir, scores["balanced_accuracy"], scores["accuracy"], best_val, len(history),
                     time.perf_counter() - start, cumulative, curve=curve)


def thumbnails(paths: list[Path], side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """Raw pixels of each image shrunk to ``side`` x ``side`` RGB, in [0, 1], one row per image."""
    from PIL import Image

    from tl_desktop.core.data.decode import load_image

    rows = [np.asarray(load_image(p).resize((side, side), Image.BILINEAR), dtype=np.float32).reshape(-1) / 255
            for p in paths]
    return np.stack(rows)


def _thumbnail_arm(report, split, seed: int, callback, cancel: CancelToken) -> tuple[ArmResult, np.ndarray]:
    """A ridge linear classifier on standardised thumbnails; its regularisation picked on the validation images."""
    from sklearn.linear_model import RidgeClassifier
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    emit = _tagged(callback, "thumbnail")
    start = time.perf_counter()
    data = {}
    for subset in ("train", "val", "test"):
        cancel.raise_if_cancelled()
        samples = split.samples(report, subset)
        truth = tml.targets(samples, report.classes) if report.is_multilabel else np.array([s.label for s in samples])
        data[subset] = (thumbnails([report.abspath(s) for s in samples]), truth)
    groups = case_groups([s.path for s in split.samples(report, "test")], split.groups)
    if report.is_multilabel:
        return _thumbnail_multilabel(data, seed, groups, emit, start)
    best, best_val = None, -1.0
    for alpha in (1.0, 10.0, 100.0, 1000.0):
        clf = make_pipeline(StandardScaler(), RidgeClassifier(alpha=alpha)).fit(*data["train"])
        val = float(balanced_accuracy_score(data["val"][1], clf.predict(data["val"][0])))
        if val > best_val:
            best, best_val = clf, val
    pred = best.predict(data["test"][0])
    scores = bootstrap_scores(data["test"][1], pred, seed=seed, groups=groups)
    seconds = time.perf_counter() - start
    emit(Notice(f"Thumbnail baseline: validation balanced accuracy {best_val:.3f} in {seconds:.1f} s"))
    return ArmResult("thumbnail", None, scores["balanced_accuracy"], scores["accuracy"], best_val, 0, seconds,
                     seconds), pred


def _thumbnail_multilabel(data, seed: int, groups, emit, start: float) -> tuple[ArmResult, np.ndarray]:
    """The multi-label baseline: a logistic regression per finding (``transfer_multilabel.thumbnail_baseline``)."""
    val_auc, p_val, p_test = tml.thumbnail_baseline(data)
    scores = tml.bootstrap_scores(data["test"][1], p_test, n_boot=N_BOOT, seed=seed, groups=groups)
    seconds = time.perf_counter() - start
    emit(Notice(f"Thumbnail baseline: validation mean AUC over findings {val_auc:.3f} in {seconds:.1f} s"))
    return ArmResult("thumbnail", None, scores["balanced_accuracy"], scores["accuracy"],
                     tml.val_scores(data["val"][1], p_val)[1], 0, seconds, seconds,
                     test_macro_auc=scores["macro_auc"], val_macro_auc=val_auc), p_test


# --- the check -------------------------------------------------------------------------------------------

def transfer_check(source: DataSource, *, model: str, budget_epochs: int, out_dir: str | Path,
                   image_size: int | None = None, batch_size: int = 32, lr: dict[str, float] | None = None,
                   device: str = "auto", workers: int | None = None, callback: Callable | None = None,
                   cancel: CancelToken | None = None) -> TransferReport:
    """Train the arms on one split and budget, and answer "did transfer help?" (see the module docstring).

    Every network arm runs exactly ``budget_epochs`` epochs (early stopping off) into ``out_dir/<arm>``;
    ``lr`` may set a learning rate per arm. Every arm uses the same split of ``source`` (its stored split,
    else one made from its seed, fractions and grouping). Writes ``transfer.json`` and ``transfer.txt``.

    Raises:
        TransferError, DataError, TrainingError: unusable input (one-line message).
        Cancelled: the token was set (finished arms stay on disk).
    """
    cancel = cancel or CancelToken()
    out = Path(out_dir)
    report, split = _split(source)  # before the folder is made: a refusal leaves nothing behind
    _prepare(out)
    seed, fixed = source.seed, replace(source, split=split.to_dict())
    base = dict(model=model, epochs=budget_epochs, batch_size=batch_size, image_size=image_size, patience=0,
                device=device, workers=workers)
    arms: dict[str, ArmResult] = {}
    preds: dict[str, np.ndarray] = {}  # per arm: predicted classes, or (multi-label) test probabilities
    multi = report.is_multilabel
    for arm in ("linear-probe", "fine-tune", "scratch"):
        cancel.raise_if_cancelled()
        config = TrainConfig.of(fixed, str(out / arm), strategy=arm, lr=(lr or {}).get(arm), **base)
        arms[arm] = _network_arm(arm, config, callback, cancel, split.groups, multi)
        paths, y, preds[arm] = _test_answers(arms[arm].run_dir, multi)
    arms["thumbnail"], thumb_pred = _thumbnail_arm(report, split, seed, callback, cancel)
    order = {s.path: i for i, s in enumerate(split.samples(report, "test"))}
    preds["thumbnail"] = thumb_pred[[order[p] for p in paths]]
    networks = ("linear-probe", "fine-tune", "scratch")
    target = TARGET_FRACTION * max(arms[a].best_val_balanced_accuracy for a in networks)
    for arm in networks:
        history = runs.read_history(Path(arms[arm].run_dir))
        arms[arm].epochs_to_target, arms[arm].seconds_to_target = reach(history, target)
    best_t = max(TRANSFER_ARMS, key=lambda a: arms[a].selection_score())
    best_n = max(NO_TRANSFER_ARMS, key=lambda a: arms[a].selection_score())
    groups = case_groups(paths, split.groups)
    if multi:
        diff = tml.paired_difference(y, preds[best_t], preds[best_n], n_boot=N_BOOT, seed=seed, groups=groups)
    else:
        diff = paired_difference(y, preds[best_t], preds[best_n], seed=seed, groups=groups)
    verdict = verdict_of(diff, tml.MARGIN if multi else MARGIN)
    result = TransferReport(model, str(source.data), str(out), budget_epochs, image_size, seed, len(y),
                            list(report.classes) if multi else sorted(set(y.tolist())), target, arms, best_t,
                            best_n, diff, verdict, tml.VERDICT_RULE if multi else VERDICT_RULE, "", report.task,
                            tml.METRIC if multi else "balanced accuracy")
    result.summary = summary_text(result)
    atomic_write_json(out / CHECK_FILE, result.to_dict())
    atomic_write_text(out / CHECK_TEXT, result.summary + "\n")
    return result


ARM_LABELS = {"linear-probe": "linear probe (frozen pretrained features)", "fine-tune": "fine-tune (pretrained)",
              "scratch": "same network from scratch", "thumbnail": "linear classifier on 32x32 thumbnails"}


def _reach_text(arm: ArmResult, budget: int) -> str:
    if arm.epochs_to_target is None:
        return f"{arm.arm}: did not reach it within {budget} epoch(s)"
    return f"{arm.arm}: reached it after {arm.epochs_to_target} epoch(s), {arm.seconds_to_target:.1f} s of training"


def summary_text(r: TransferReport) -> str:
    if r.task == "multi-label":
        return tml.summary_text(r, TARGET_FRACTION)
    a = r.arms
    words = {"positive": "Transfer helped", "negative": "Transfer hurt", "neutral": "No clear effect of transfer"}
    lines = [
        f"{words[r.verdict]} (verdict: {r.verdict}). {r.model}, {r.budget_epochs} epoch(s) per model, "
        f"{r.test_images} test images, {len(r.classes)} classes.",
        f"1. Pretrained features alone (linear probe): test balanced accuracy {score_text(a['linear-probe'].test_balanced_accuracy)}.",
        f"2. Speed: target = {100 * TARGET_FRACTION:.0f}% of the best validation balanced accuracy of any network "
        f"= {100 * r.target_val_balanced_accuracy:.1f}%. " + "; ".join(
            _reach_text(a[k], r.budget_epochs) for k in ("linear-probe", "fine-tune", "scratch")) + ".",
        "3. Final test balanced accuracy: " + "; ".join(
            f"{ARM_LABELS[k]} {score_text(a[k].test_balanced_accuracy)}" for k in a) + ".",
        f"   {r.best_transfer} minus {r.best_no_transfer}: {100 * r.difference['value']:+.1f} points "
        f"(95% CI {100 * r.difference['low']:+.1f} to {100 * r.difference['high']:+.1f}).",
        f"Rule: {r.rule}",
    ]
    return "\n".join(lines)


# --- model comparison ------------------------------------------------------------------------------------

def offline_models() -> list[str]:
    from tl_desktop.core.models.catalog import catalog, offline_weights_available

    return [m.name for m in catalog() if offline_weights_available(m.name)]


def compare_models(source: DataSource, *, models: list[str] | None = None, budget_epochs: int = 5,
                   out_dir: str | Path, strategy: str = "linear-probe", image_size: int | None = None,
                   batch_size: int = 32, lr: float | None = None, device: str = "auto", workers: int | None = None,
                   callback: Callable | None = None, cancel: CancelToken | None = None) -> list[dict[str, Any]]:
    """One row per model, all trained with ``strategy`` on the same split into ``out_dir/<model>``.

    Row: model, label, params, test balanced accuracy and accuracy (95% CIs), wall and epoch seconds, size of
    the weights (parameters x 4 bytes) and of the best checkpoint file; on a multi-label set also
    ``test_macro_auc`` (mean AUC over findings, 95% CI; see ``ArmResult``). Writes ``compare_models.json``.
    """
    from tl_desktop.core.models.catalog import get_info

    cancel = cancel or CancelToken()
    models = list(models or offline_models())
    if not models:
        raise TransferError("no models to compare")
    out = Path(out_dir)
    report, split = _split(source)
    _prepare(out)
    fixed = replace(source, split=split.to_dict())
    rows = []
    for name in models:
        cancel.raise_if_cancelled()
        config = TrainConfig.of(fixed, str(out / name), model=name, strategy=strategy, epochs=budget_epochs,
                                batch_size=batch_size, lr=lr, image_size=image_size, patience=0, device=device,
                                workers=workers)
        arm = _network_arm(name, config, callback, cancel, split.groups, report.is_multilabel)
        state, _, _ = runs.load_checkpoint(Path(arm.run_dir), "best")
        params = int(sum(t.numel() for k, t in state.items() if t.is_floating_point() and "running_" not in k))
        rows.append({"model": name, "label": get_info(name).label, "strategy": strategy, "params": params,
                     "test_balanced_accuracy": arm.test_balanced_accuracy, "test_accuracy": arm.test_accuracy,
                     "best_val_balanced_accuracy": arm.best_val_balanced_accuracy,
                     "wall_seconds": arm.wall_seconds, "epoch_seconds": arm.epoch_seconds,
                     "weights_mb": params * 4 / 1e6,
                     "checkpoint_mb": (Path(arm.run_dir) / "checkpoints" / "best.safetensors").stat().st_size / 1e6,
                     "run_dir": arm.run_dir,
                     **({"test_macro_auc": arm.test_macro_auc} if arm.test_macro_auc is not None else {})})
    atomic_write_json(out / COMPARE_FILE, {"data": str(source.data), "budget_epochs": budget_epochs,
                                           "strategy": strategy, "seed": source.seed, "rows": rows})
    return rows


__all__ = ["TransferProgress", "ArmResult", "TransferReport", "transfer_check", "compare_models",
           "bootstrap_scores", "paired_difference", "verdict_of", "reach", "predictions_on_test", "VERDICT_RULE",
           "TARGET_FRACTION", "MARGIN", "offline_models", "summary_text"]
