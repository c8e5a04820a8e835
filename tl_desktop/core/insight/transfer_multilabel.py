"""The multi-label side of the transfer check: each arm judged by its mean AUC over findings.

A multi-label run answers one yes/no question per finding (sigmoid outputs), so "did transfer help?" compares
the mean over findings of their ROC-AUC (``macro_auc``) on the same test images, not an accuracy. Next to it
each arm reports the two figures the training curves show for such a run: the mean over findings of their
balanced accuracy with each finding called present at p >= 0.5, and the share of right image-finding decisions
(1 - Hamming loss). The network arms' probabilities come from their stored evaluation (``clinical.json``,
validation and test); the no-network baseline is a logistic regression per finding (one-vs-rest,
scikit-learn) on the same standardised 32x32 thumbnails, its regularisation picked on the validation macro AUC.

Intervals: the engine's one bootstrap (``statistics.bootstrap``), stratified by the combination of findings
of each image (every resample keeps every combination, so every finding keeps images with and without it),
or over whole patients when the split was grouped. Nothing here imports torch or Qt.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tl_desktop.core.errors import TransferError
from tl_desktop.core.evaluation import multilabel_run
from tl_desktop.core.evaluation.run_evaluation import load_clinical
from tl_desktop.core.evaluation.statistics import _auc_rows, bootstrap

METRIC = "mean AUC over findings"
MARGIN = 0.02  # verdict: a difference under 0.02 of mean AUC is not worth a claim
C_VALUES = (0.01, 0.1, 1.0, 10.0)  # inverse regularisation strengths tried for the thumbnail baseline
VERDICT_RULE = (
    "Positive: the better transfer model (linear probe or fine-tune, chosen on the validation images) beats the "
    "better model without transfer (the same network from scratch, or a logistic regression per finding on "
    "32x32 thumbnails, chosen on the validation images) by at least 0.02 of the mean AUC over findings on the "
    "test images, and the 95% interval of that difference, on the same test images, lies above 0. Negative: it "
    "is worse by at least 0.02 and the interval lies below 0. Neutral: anything else (no clear difference).")


def _defined_columns(y: np.ndarray) -> list[int]:
    """The findings with test images both with and without them (the only ones with an AUC)."""
    return [j for j in range(y.shape[1]) if 0 < int(y[:, j].sum()) < len(y)]


def _combinations(y: np.ndarray) -> np.ndarray:
    """Each image's combination of findings as one stratum code ("0110"), for the bootstrap."""
    return np.array(["".join(str(int(v)) for v in row) for row in y])


def macro_auc(y: np.ndarray, probs: np.ndarray) -> float:
    """Mean ROC-AUC over the findings that have images with and without them (TransferError when none has)."""
    y, probs = np.asarray(y, dtype=int), np.asarray(probs, dtype=np.float64)
    columns = _defined_columns(y)
    if not columns:
        raise TransferError("no finding has test images both with and without it, so no AUC can be computed; "
                            "add images or use a larger test part")
    every = np.arange(len(y))[None, :]
    return float(np.mean([_auc_rows(y[:, j], probs[:, j], every)[0] for j in columns]))


CHUNK_CELLS = 4_000_000  # resample x image x finding cells scored at once (bounds the memory of the bootstrap)


def _score_rows(y: np.ndarray, probs: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per resample (row of case indices): mean AUC, mean balanced accuracy at p >= 0.5, 1 - Hamming loss.

    The findings scored are those defined on all of ``y``; every resample of ``bootstrap_scores`` keeps them
    defined (it keeps every combination of findings). Resamples are scored in chunks of ``CHUNK_CELLS``.
    """
    step = max(1, CHUNK_CELLS // max(1, index.shape[1] * y.shape[1]))
    return np.concatenate([_score_chunk(y, probs, index[i:i + step]) for i in range(0, len(index), step)])


def _score_chunk(y: np.ndarray, probs: np.ndarray, index: np.ndarray) -> np.ndarray:
    columns = _defined_columns(y)
    aucs = np.mean([_auc_rows(y[:, j], probs[:, j], index) for j in columns], axis=0)
    truth, called = y[index] == 1, probs[index] >= 0.5          # (b, m, L)
    right = truth == called
    balanced = []
    for j in columns:
        positive = truth[:, :, j]
        sensitivity = (right[:, :, j] & positive).sum(1) / positive.sum(1)
        specificity = (right[:, :, j] & ~positive).sum(1) / (~positive).sum(1)
        balanced.append((sensitivity + specificity) / 2)
    return np.stack([aucs, np.mean(balanced, axis=0), right.mean(axis=(1, 2))], axis=1)


def _interval(value: float, samples: np.ndarray) -> dict[str, float]:
    low, high = np.percentile(samples, [2.5, 97.5])
    return {"value": float(value), "low": float(low), "high": float(high)}


def bootstrap_scores(y: np.ndarray, probs: np.ndarray, *, n_boot: int, seed: int,
                     groups: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """``macro_auc``, ``balanced_accuracy`` (mean over findings, p >= 0.5) and ``accuracy`` (1 - Hamming loss),
    each ``{value, low, high}`` with a 95% bootstrap interval (whole patients with ``groups``)."""
    y, probs = np.asarray(y, dtype=int), np.asarray(probs, dtype=np.float64)
    macro_auc(y, probs)  # refuses a test split on which no finding has an AUC
    full = _score_rows(y, probs, np.arange(len(y))[None, :])[0]
    values, _ = bootstrap(lambda index: _score_rows(y, probs, index), _combinations(y), n_boot=n_boot, seed=seed,
                          groups=groups)
    return {key: _interval(full[k], values[:, k]) for k, key in enumerate(("macro_auc", "balanced_accuracy",
                                                                             "accuracy"))}


def paired_difference(y: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, *, n_boot: int, seed: int,
                      groups: np.ndarray | None = None) -> dict[str, float]:
    """Mean AUC over findings of A minus B, with a paired bootstrap 95% interval (the same resamples for both)."""
    y = np.asarray(y, dtype=int)
    a, b = (np.asarray(p, dtype=np.float64) for p in (probs_a, probs_b))
    values, _ = bootstrap(lambda index: _score_rows(y, a, index)[:, 0] - _score_rows(y, b, index)[:, 0],
                          _combinations(y), n_boot=n_boot, seed=seed, groups=groups)
    return _interval(macro_auc(y, a) - macro_auc(y, b), values)


def run_probabilities(run_dir: Path | str, subset: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(paths, (n, findings) 0/1 truth, sigmoid probabilities) of a multi-label run's stored evaluation."""
    stored = load_clinical(run_dir)
    if stored is None or stored.get("task") != multilabel_run.TASK:
        raise TransferError(f"{Path(run_dir).name} has no multi-label evaluation (clinical.json); train it again")
    preds = stored["predictions"][subset]
    y, probs = multilabel_run.arrays(preds, len(stored["class_names"]))
    return list(preds["paths"]), y, probs


def targets(samples: Sequence[Any], names: Sequence[str]) -> np.ndarray:
    """(n, findings) 0/1 matrix of scan samples (their ``findings``) in ``names`` order."""
    index = {name: j for j, name in enumerate(names)}
    out = np.zeros((len(samples), len(names)), dtype=int)
    for i, sample in enumerate(samples):
        for name in sample.findings or ():
            out[i, index[name]] = 1
    return out


def thumbnail_baseline(data: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[float, np.ndarray, np.ndarray]:
    """One logistic regression per finding on standardised thumbnails; its C picked on the validation macro AUC.

    Args:
        data: per subset ("train", "val", "test") the thumbnail rows and the (n, findings) 0/1 matrix.

    Returns:
        (validation macro AUC, validation probabilities, test probabilities) of the chosen C.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, y_train = data["train"]
    constant = [j for j in range(y_train.shape[1]) if y_train[:, j].min() == y_train[:, j].max()]
    if constant:
        raise TransferError("a finding is on every training image or on none, so no classifier can learn it; "
                            "add images with and without it")
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for c in C_VALUES:
        clf = make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000)))
        clf.fit(x_train.astype(np.float64), y_train)
        p_val = clf.predict_proba(data["val"][0].astype(np.float64))
        val = macro_auc(data["val"][1], p_val)
        if best is None or val > best[0]:
            best = (val, p_val, clf.predict_proba(data["test"][0].astype(np.float64)))
    assert best is not None
    return best


def val_scores(y: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    """(macro AUC, mean balanced accuracy over findings at p >= 0.5) of the validation images."""
    rows = _score_rows(np.asarray(y, dtype=int), np.asarray(probs, dtype=np.float64), np.arange(len(y))[None, :])
    return float(rows[0, 0]), float(rows[0, 1])


ARM_LABELS = {"linear-probe": "linear probe (frozen pretrained features)", "fine-tune": "fine-tune (pretrained)",
              "scratch": "same network from scratch",
              "thumbnail": "logistic regression per finding on 32x32 thumbnails"}


def auc_text(score: dict[str, float]) -> str:
    """``0.83 (95% CI 0.75-0.90)``: a mean AUC and its 95% interval."""
    return f"{score['value']:.2f} (95% CI {score['low']:.2f}-{score['high']:.2f})"


def _reach(arm: Any, budget: int) -> str:
    if arm.epochs_to_target is None:
        return f"{arm.arm}: did not reach it within {budget} epoch(s)"
    return f"{arm.arm}: reached it after {arm.epochs_to_target} epoch(s), {arm.seconds_to_target:.1f} s of training"


def summary_text(r: Any, target_fraction: float) -> str:
    """The plain answer of a multi-label transfer check (``transfer.TransferReport``), as ``transfer.txt``."""
    words = {"positive": "Transfer helped", "negative": "Transfer hurt", "neutral": "No clear effect of transfer"}
    a, d = r.arms, r.difference
    n = len(r.classes)
    return "\n".join([
        f"{words[r.verdict]} (verdict: {r.verdict}). {r.model}, {r.budget_epochs} epoch(s) per model, "
        f"{r.test_images} test images, {n} finding{'s' if n != 1 else ''} (multi-label: compared by the {METRIC}, "
        "1 = every image with a finding scores above every image without it, 0.5 = chance).",
        f"1. Pretrained features alone (linear probe): test {METRIC} {auc_text(a['linear-probe'].test_macro_auc)}.",
        f"2. Speed: target = {100 * target_fraction:.0f}% of the best validation balanced accuracy of any network "
        f"(mean over findings, each called present at p >= 0.5) = {100 * r.target_val_balanced_accuracy:.1f}%. "
        + "; ".join(_reach(a[k], r.budget_epochs) for k in ("linear-probe", "fine-tune", "scratch")) + ".",
        f"3. Final test {METRIC}: " + "; ".join(f"{ARM_LABELS[k]} {auc_text(a[k].test_macro_auc)}" for k in a) + ".",
        f"   {r.best_transfer} minus {r.best_no_transfer}: {d['value']:+.3f} of the {METRIC} "
        f"(95% CI {d['low']:+.3f} to {d['high']:+.3f}).",
        f"Rule: {r.rule}",
    ])


__all__ = ["METRIC", "MARGIN", "VERDICT_RULE", "macro_auc", "bootstrap_scores", "paired_difference",
           "run_probabilities", "targets", "thumbnail_baseline", "val_scores", "auc_text", "summary_text",
           "ARM_LABELS"]
