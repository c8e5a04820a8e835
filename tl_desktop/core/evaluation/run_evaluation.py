"""The clinical evaluation of a run folder, stored as ``RUN_DIR/clinical.json``.

``evaluate_clinical(run_dir)`` runs the best model on the validation and test splits (evaluation transform,
CPU), fits the temperature and chooses the decision threshold (and optionally the abstain threshold) on the
validation split, and reports every figure on the test split. ``set_decision`` changes the positive class and
thresholds afterwards (the GUI slider), and ``decision_metadata`` is what the ONNX export carries, so the
exported model decides exactly as evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tl_desktop.core.config import RunConfig
from tl_desktop.core.errors import ClinicalError
from tl_desktop.core.evaluation import statistics as clinical
from tl_desktop.core.events import CancelToken, Notice, Progress
from tl_desktop.core.fsutil import atomic_write_json, read_json
from tl_desktop.core.models import run_model

CLINICAL_FILE = "clinical.json"
FORMAT = 1
NEGATIVE_WORDS = frozenset({"normal", "negative", "healthy", "benign", "control", "background", "no", "none",
                            "non", "other", "rest"})


def clinical_path(run_dir: Path | str) -> Path:
    return Path(run_dir) / CLINICAL_FILE


def load_clinical(run_dir: Path | str) -> dict[str, Any] | None:
    """The stored clinical evaluation, or None when the run has none yet."""
    path = clinical_path(run_dir)
    return read_json(path) if path.is_file() else None


# --- logits ----------------------------------------------------------------------------------------------

def run_logits(loaded: run_model.LoadedRun, subsets: tuple[str, ...] = ("val", "test"),
               callback: Callable | None = None, cancel: CancelToken | None = None) -> dict[str, dict[str, Any]]:
    """Logits of the run's model on its subsets: ``{subset: {"paths" (relative), "labels", "logits"}}``."""
    import torch

    from tl_desktop.core.data.datasets import ImageFiles
    from tl_desktop.core.evaluation.predict import predict_logits as _predict
    from tl_desktop.core.models.catalog import eval_transform

    emit = callback or (lambda event: None)
    cancel = cancel or CancelToken()
    index = {name: i for i, name in enumerate(loaded.class_names)}
    out = {}
    for subset in subsets:
        rows = [f for f in loaded.manifest["files"] if f["subset"] == subset]
        emit(Progress(f"predicting {subset}", 0, len(rows)))
        dataset = ImageFiles([loaded.root / f["path"] for f in rows], [index[f["label"]] for f in rows],
                             eval_transform(loaded.data_config))
        logits, labels = _predict(loaded.model, dataset, 32, torch.device("cpu"), None, 0, cancel)
        emit(Progress(f"predicting {subset}", len(rows), len(rows)))
        out[subset] = {"paths": [f["path"] for f in rows], "labels": labels.astype(int).tolist(),
                       "logits": np.round(logits.astype(np.float64), 6).tolist()}
    return out


# --- choosing the positive class -------------------------------------------------------------------------

def default_positive(class_names: list[str], train_counts: dict[str, int] | None = None) -> tuple[str, str]:
    """(class, reason): the class that is not called normal/negative/..., else the rarest in training."""
    normal = [n for n in class_names if NEGATIVE_WORDS & set(re.split(r"[^a-z0-9]+", n.lower()))]
    if len(class_names) == 2 and len(normal) == 1:
        other = next(n for n in class_names if n != normal[0])
        return other, f"'{normal[0]}' reads as the negative finding"
    counts = train_counts or {}
    rarest = min(class_names, key=lambda n: (counts.get(n, 0), -class_names.index(n)))
    return rarest, "the rarest class in training (change it if another class is the finding to detect)"


# --- the evaluation --------------------------------------------------------------------------------------

def _probs(preds: dict[str, Any], temperature: float) -> tuple[np.ndarray, np.ndarray]:
    logits = np.asarray(preds["logits"], dtype=np.float64).reshape(len(preds["labels"]), -1)
    return np.asarray(preds["labels"], dtype=int), clinical.softmax(logits, temperature) if len(logits) else logits


def _test_groups(loaded, predictions: dict[str, Any]) -> np.ndarray | None:
    """The patient (group) of each test image when the run's split was grouped; None otherwise."""
    return clinical.case_groups(predictions["paths"], (loaded.manifest.get("split") or {}).get("groups"))


def evaluate_clinical(run_dir: Path | str, *, positive_class: str | None = None, threshold_method: str = "youden",
                      target: float | None = None, abstain_threshold: float | None = None,
                      abstain_accuracy: float | None = None, n_boot: int = 1000, seed: int = 0, n_bins: int = 10,
                      callback: Callable | None = None, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Compute the clinical evaluation of a finished run and write ``clinical.json``.

    Args:
        positive_class: the finding to detect; default from ``default_positive``.
        threshold_method, target: see ``clinical.pick_threshold``; applied to the validation split's
            temperature-scaled probability of the positive class.
        abstain_threshold: answer "not sure" below this top probability; or ``abstain_accuracy``: the lowest
            threshold whose answered validation cases reach that accuracy.
        n_boot, seed: bootstrap resamples and seed of the AUC intervals.

    Raises:
        ClinicalError: no test images, or an unknown positive class. RunError: damaged run folder.
    """
    emit = callback or (lambda event: None)
    loaded = run_model.load_run(run_dir)
    names = loaded.class_names
    if positive_class is not None and positive_class not in names:
        raise ClinicalError(f"unknown positive class '{positive_class}'; the classes are {', '.join(names)}")
    if not loaded.files("test"):
        raise ClinicalError("the run has no test images: a clinical evaluation needs a test split")
    preds = run_logits(loaded, ("val", "test"), emit, cancel)
    warnings: list[str] = []
    temperature = _temperature(preds["val"], warnings)
    if positive_class is None:
        positive_class, reason = default_positive(names, loaded.config.train_counts)
    else:
        reason = "chosen by the user"
    result = {
        "format": FORMAT, "class_names": names, "n": {s: len(p["labels"]) for s, p in preds.items()},
        "temperature": temperature, "temperature_fitted_on": "val",
        "bootstrap": {"n_boot": n_boot, "seed": seed, "level": 0.95, "method": "stratified percentile"},
        "n_bins": n_bins, "predictions": preds, "warnings": warnings,
        "calibration": _calibration(preds, temperature, n_bins),
    }
    y_test, p_test = _probs(preds["test"], temperature)
    result["curves"] = clinical.one_vs_rest(y_test, p_test, names, n_boot=n_boot, seed=seed,
                                            groups=_test_groups(loaded, preds["test"]))
    _decide(result, positive_class, reason, threshold_method, target, abstain_threshold, abstain_accuracy)
    _interval_warnings(result)
    atomic_write_json(clinical_path(run_dir), result)
    for message in result["warnings"]:
        emit(Notice(message))
    return result


def _temperature(val: dict[str, Any], warnings: list[str]) -> float:
    """T fitted on the validation logits; 1.0 (with a warning) where it cannot be estimated."""
    y = np.asarray(val["labels"], dtype=int)
    logits = np.asarray(val["logits"], dtype=np.float64).reshape(len(y), -1)
    if len(y) < 10:
        warnings.append(f"only {len(y)} validation images: probabilities not recalibrated (temperature 1.0)")
        return 1.0
    if (logits.argmax(1) == y).all():
        # every case right: the likelihood keeps rising as T -> 0, so no finite T is supported by the data
        warnings.append("every validation image is classified correctly, so the temperature cannot be "
                        "estimated: probabilities not recalibrated (temperature 1.0)")
        return 1.0
    if len(y) < 50:
        warnings.append(f"the temperature is fitted on only {len(y)} validation images: treat the calibrated "
                        "probabilities as approximate")
    return clinical.fit_temperature(logits, y)


def _interval_warnings(result: dict[str, Any]) -> None:
    for name, entry in result["curves"].items():
        if entry is not None and entry["auc"]["low"] == entry["auc"]["high"]:
            result["warnings"].append(
                f"AUC of {name} is {entry['auc']['auc']:.3f} on {entry['auc']['n_pos']} + {entry['auc']['n_neg']} "
                "test images: the bootstrap cannot show uncertainty beyond a perfect split; more test images "
                "are needed for a meaningful interval")


def _calibration(preds: dict[str, Any], temperature: float, n_bins: int) -> dict[str, Any]:
    out = {}
    for subset, p in preds.items():
        if not p["labels"]:
            continue
        y, before = _probs(p, 1.0)
        _, after = _probs(p, temperature)
        out[subset] = {"before": clinical.reliability(y, before, n_bins),
                       "after": clinical.reliability(y, after, n_bins),
                       "nll_before": clinical.nll(np.asarray(p["logits"]), y),
                       "nll_after": clinical.nll(np.asarray(p["logits"]), y, temperature)}
    return out


def _decide(result: dict[str, Any], positive_class: str, reason: str, method: str, target: float | None,
            abstain_threshold: float | None, abstain_accuracy: float | None) -> None:
    """Choose the decision threshold and the abstain threshold on val; store them with val and test figures."""
    names, temperature = result["class_names"], result["temperature"]
    positive = names.index(positive_class)
    y_val, p_val = _probs(result["predictions"]["val"], temperature)
    truth_val = (y_val == positive).astype(int)
    if truth_val.any() and not truth_val.all():
        threshold = clinical.pick_threshold(truth_val, p_val[:, positive], method, target)
    else:
        threshold = float(target) if method == "fixed" and target is not None else 0.5
        result["warnings"].append(f"the validation split lacks '{positive_class}' or other cases: threshold 0.5")
    if abstain_threshold is None and abstain_accuracy is not None and len(y_val):
        abstain_threshold = clinical.abstain_threshold_for(y_val, p_val, abstain_accuracy)
        if abstain_threshold is None:
            result["warnings"].append(f"no abstain threshold reaches accuracy {abstain_accuracy:.2f} on validation")
    result["positive_class"] = positive_class
    result["positive_reason"] = reason
    result["threshold_rule"] = {"method": method, "target": target, "chosen_on": "val"}
    refresh_figures(result, threshold, abstain_threshold)


def refresh_figures(result: dict[str, Any], threshold: float, abstain_threshold: float | None) -> dict[str, Any]:
    """Set the decision and abstain thresholds of a clinical dict and recompute the figures that depend on them."""
    result["decision_threshold"] = float(threshold)
    result["abstain_threshold"] = None if abstain_threshold is None else float(abstain_threshold)
    result["operating_point"], result["coverage"] = {}, {}
    for subset, preds in result["predictions"].items():
        if preds["labels"]:
            result["operating_point"][subset] = operating_point(result, threshold, abstain_threshold, subset)
            y, p = _probs(preds, result["temperature"])
            result["coverage"][subset] = clinical.coverage_curve(y, p)
    return result


def operating_point(result: dict[str, Any], threshold: float, abstain_threshold: float | None = None,
                    subset: str = "test", positive_class: str | None = None) -> dict[str, Any]:
    """Figures of a stored evaluation at another threshold (cheap: what a GUI slider calls on every move).

    Returns ``clinical.binary_stats`` for the positive class (on the cases not set aside as "not sure"), plus
    ``confusion`` (matrix of decided cases, ``not_sure`` per true class) and ``coverage``.
    """
    names = result["class_names"]
    positive = names.index(positive_class or result["positive_class"])
    y, p = _probs(result["predictions"][subset], result["temperature"])
    decided = clinical.decide(p, positive, threshold, abstain_threshold)
    kept = decided >= 0
    stats = clinical.binary_stats((y[kept] == positive).astype(int), p[kept, positive], threshold)
    stats["confusion"] = clinical.confusion(y, decided, len(names))
    stats["coverage"] = float(kept.mean()) if len(kept) else None
    stats["subset"] = subset
    stats["positive_class"] = names[positive]
    return stats


def set_decision(run_dir: Path | str, *, threshold: float | None = None, positive_class: str | None = None,
                 abstain_threshold: float | None | str = "keep") -> dict[str, Any]:
    """Change the positive class, decision threshold and/or abstain threshold of a stored evaluation.

    ``abstain_threshold=None`` removes the abstain option; ``"keep"`` leaves it. Rewrites ``clinical.json``,
    which the next ONNX export carries. Raises ClinicalError when the run has no clinical evaluation.
    """
    result = load_clinical(run_dir)
    if result is None:
        raise ClinicalError("run the clinical evaluation first")
    if positive_class is not None:
        if positive_class not in result["class_names"]:
            raise ClinicalError(f"unknown positive class '{positive_class}'")
        result["positive_class"], result["positive_reason"] = positive_class, "chosen by the user"
    if threshold is not None:
        result["threshold_rule"] = {"method": "fixed", "target": float(threshold), "chosen_on": "user"}
    abstain = result.get("abstain_threshold") if abstain_threshold == "keep" else abstain_threshold
    refresh_figures(result, result["decision_threshold"] if threshold is None else threshold, abstain)
    atomic_write_json(clinical_path(run_dir), result)
    return result


def decision_metadata(run_dir: Path | str, config: RunConfig | None = None) -> dict[str, str]:
    """ONNX metadata of the evaluated decision: ``temperature`` always; ``positive_class``,
    ``decision_threshold`` and ``abstain_threshold`` when a clinical evaluation chose them.

    The temperature comes from ``clinical.json``, else from the run config, else 1.0.
    """
    result = load_clinical(run_dir) or {}
    temperature = result.get("temperature") or (config.temperature if config else None) or 1.0
    meta = {"temperature": repr(float(temperature))}
    if result.get("positive_class") is not None and result.get("decision_threshold") is not None:
        meta["positive_class"] = str(result["positive_class"])
        meta["decision_threshold"] = repr(float(result["decision_threshold"]))
    if result.get("abstain_threshold") is not None:
        meta["abstain_threshold"] = repr(float(result["abstain_threshold"]))
    if len(meta) > 1:
        meta["decision_rule"] = (
            "label = positive_class when its probability >= decision_threshold, else the most probable other "
            f"class; '{clinical.NOT_SURE}' when the top probability < abstain_threshold (keys present only when set)")
    return meta
