"""Clinical figures of a classifier: numpy in, numpy / JSON-ready dicts out.

ROC and precision-recall curves (one-vs-rest), AUC with a bootstrap 95% confidence interval (the one bootstrap of
the engine: stratified by class, or over whole patients when the split was grouped), a confusion matrix,
sensitivity / specificity / PPV / NPV at a threshold with Wilson 95% intervals, threshold pickers, reliability
diagram and expected calibration error, temperature scaling, and the abstain ("not sure") option.

Conventions: ``y`` holds integer labels, ``probs`` is (n, k) with columns in class order; for a chosen positive
class a case is called positive when its probability is ``>= threshold``. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% normal quantile
NOT_SURE = "not sure"


# --- probabilities ---------------------------------------------------------------------------------------

def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (float64, numerically stable)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels under ``softmax(logits / temperature)``."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    m = z.max(axis=1, keepdims=True)
    log_norm = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(log_norm - z[np.arange(len(z)), np.asarray(y, dtype=int)]))


def fit_temperature(logits: np.ndarray, y: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature T minimising the NLL of ``softmax(logits / T)`` (Guo et al. 2017), fitted on held-out data.

    The NLL is convex in 1/T, so a bounded scalar search on log T finds the global minimum. Returns 1.0 for
    fewer than two cases. T > 1 softens over-confident probabilities; T < 1 sharpens timid ones. The predicted
    class never changes.
    """
    from scipy.optimize import minimize_scalar

    logits, y = np.asarray(logits, dtype=np.float64), np.asarray(y, dtype=int)
    if len(y) < 2:
        return 1.0
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    result = minimize_scalar(lambda t: nll(logits, y, np.exp(t)), bounds=(lo, hi), method="bounded",
                             options={"xatol": 1e-6})
    return float(np.exp(result.x))


# --- curves and AUC --------------------------------------------------------------------------------------

def _binary(y: np.ndarray, positive: int) -> np.ndarray:
    return (np.asarray(y, dtype=int) == int(positive)).astype(int)


def _defined(truth: np.ndarray) -> bool:
    return bool(truth.any() and not truth.all())


def roc_curve(truth: np.ndarray, scores: np.ndarray) -> dict[str, list[float]]:
    """ROC points of a binary ``truth`` (1 = positive) ranked by ``scores``: fpr, tpr and the thresholds.

    The first point is (0, 0) with threshold +inf (stored as 1.0 + the largest score, JSON has no inf).
    """
    from sklearn.metrics import roc_curve as _roc

    fpr, tpr, thr = _roc(truth, scores, drop_intermediate=False)
    thr = np.where(np.isinf(thr), float(np.max(scores)) + 1.0, thr)
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thr.tolist()}


def pr_curve(truth: np.ndarray, scores: np.ndarray) -> dict[str, list[float]]:
    """Precision-recall points (recall decreasing) and average precision; ``prevalence`` is the chance line."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, thr = precision_recall_curve(truth, scores)
    return {"precision": precision.tolist(), "recall": recall.tolist(), "thresholds": thr.tolist(),
            "average_precision": float(average_precision_score(truth, scores)),
            "prevalence": float(np.mean(truth))}


def auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney: ties count one half)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(truth, scores))


def roc_auc(y: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict[str, float | None]:
    """One-vs-rest ROC-AUC per class, and ``macro``: their mean over the classes where it is defined.

    A class's AUC is None where the data has no positive or no negative case of it.
    """
    probs = np.asarray(probs, dtype=np.float64)
    out: dict[str, float | None] = {}
    for i, name in enumerate(class_names):
        truth = _binary(y, i)
        out[name] = auc(truth, probs[:, i]) if _defined(truth) else None
    defined = [v for v in out.values() if v is not None]
    out["macro"] = float(np.mean(defined)) if defined else None
    return out


def auc_ci(truth: np.ndarray, scores: np.ndarray, n_boot: int = 1000, seed: int = 0,
           level: float = 0.95, groups: np.ndarray | None = None) -> dict[str, float | int]:
    """AUC with a percentile ``bootstrap`` interval: stratified by class, or over whole patients with ``groups``.

    Returns:
        ``{"auc", "low", "high", "n_boot", "seed", "level", "n_pos", "n_neg", "method"}``; ``n_boot`` counts
        the resamples used (a cluster bootstrap redraws those lacking a class, and gives up after 20 n_boot).
    """
    truth, scores = np.asarray(truth, dtype=int), np.asarray(scores, dtype=np.float64)
    if not _defined(truth):
        raise ValueError("AUC needs at least one positive and one negative case")
    values, method = bootstrap(lambda index: _auc_rows(truth, scores, index), truth, n_boot=n_boot, seed=seed,
                               groups=groups, order=(1, 0))
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return {"auc": auc(truth, scores), "low": float(low), "high": float(high), "n_boot": len(values),
            "seed": int(seed), "level": float(level), "n_pos": int(np.sum(truth == 1)),
            "n_neg": int(np.sum(truth == 0)), "method": method}


def _auc_rows(truth: np.ndarray, scores: np.ndarray, index: np.ndarray) -> np.ndarray:
    """AUC of each row of case indices by ranks: (sum of positive ranks - n_p(n_p+1)/2) / (n_p n_n)."""
    from scipy.stats import rankdata

    positive = truth[index] == 1
    n_p = positive.sum(axis=1)
    n_n = index.shape[1] - n_p
    ranks = rankdata(scores[index], axis=1)  # average ranks: ties count one half
    return ((ranks * positive).sum(axis=1) - n_p * (n_p + 1) / 2.0) / (n_p * n_n)


# --- the bootstrap ---------------------------------------------------------------------------------------

def bootstrap(statistic: Callable[[np.ndarray], np.ndarray], y: np.ndarray, *, n_boot: int, seed: int,
              groups: np.ndarray | None = None, order: Sequence[Any] | None = None) -> tuple[np.ndarray, str]:
    """Values of ``statistic`` over bootstrap resamples of the cases: by class, or by whole patients.

    Without ``groups``, or where every case is its own group, each resample draws with replacement, inside
    every class, as many cases as the class has (stratified bootstrap): every resample keeps every class and
    the prevalence of the data. The classes are drawn in ``order`` (default: sorted), which fixes the random
    numbers. With ``groups`` (a patient per case) where some patient has several cases, each resample draws
    as many whole patients as there are (cluster bootstrap), and one lacking a class is redrawn (at most
    ``20 * n_boot`` draws): images of one patient are alike, and resampling images would pretend they are
    independent and make the interval too narrow.

    Args:
        statistic: maps a (b, m) matrix of case indices, one resample per row, to one value (or one row of
            values) per resample.
        y: the class of each case.

    Returns:
        The values (one entry or row per resample used) and the method in words, for the report.
    """
    y = np.asarray(y)
    if groups is not None and len(set(groups)) < len(groups):
        return _cluster_bootstrap(statistic, y, np.asarray(groups, dtype=object), n_boot, seed)
    rng = np.random.default_rng(seed)
    strata = [np.flatnonzero(y == c) for c in (np.unique(y) if order is None else order)]
    index = np.concatenate([s[rng.integers(0, len(s), size=(n_boot, len(s)))] for s in strata], axis=1)
    return np.asarray(statistic(index)), "stratified bootstrap over images"


def _cluster_bootstrap(statistic: Callable[[np.ndarray], np.ndarray], y: np.ndarray, groups: np.ndarray,
                       n_boot: int, seed: int) -> tuple[np.ndarray, str]:
    """``bootstrap`` over whole patients; resamples lacking a class are redrawn (bounded: a data set with one
    positive patient cannot loop forever)."""
    _, inverse = np.unique(groups.astype(str), return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(inverse.max() + 1)]
    _, codes = np.unique(y, return_inverse=True)
    n_classes = int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot * 20):
        pick = np.concatenate([members[g] for g in rng.integers(0, len(members), size=len(members))])
        if np.bincount(codes[pick], minlength=n_classes).all():
            values.append(np.asarray(statistic(pick[None, :]))[0])
            if len(values) == n_boot:
                break
    return np.asarray(values), f"cluster bootstrap over {len(members)} patients"


def case_groups(paths: Sequence[str], groups: Mapping[str, str | None] | None) -> np.ndarray | None:
    """The group (patient) of each case for ``bootstrap``, from a split's ``groups`` (path -> group).

    None when the split was not grouped (no case has a group); a case without a group is its own group.
    """
    groups = groups or {}
    if not any(groups.values()):
        return None
    return np.array([groups.get(p) or f"file:{p}" for p in paths], dtype=object)


def one_vs_rest(y: np.ndarray, probs: np.ndarray, class_names: list[str], n_boot: int = 1000,
                seed: int = 0, groups: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """Per class: ROC and PR curves and AUC with its interval; ``None`` where a class lacks positives or negatives."""
    out: dict[str, dict[str, Any] | None] = {}
    for i, name in enumerate(class_names):
        truth = _binary(y, i)
        if not _defined(truth):
            out[name] = None
            continue
        out[name] = {"roc": roc_curve(truth, probs[:, i]), "pr": pr_curve(truth, probs[:, i]),
                     "auc": auc_ci(truth, probs[:, i], n_boot=n_boot, seed=seed, groups=groups)}
    return out


# --- one operating point ---------------------------------------------------------------------------------

def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval of a proportion k/n; (None, None) when n == 0."""
    if n <= 0:
        return None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if k == 0 else float(max(0.0, centre - half))
    return low, 1.0 if k == n else float(min(1.0, centre + half))


def _proportion(k: int, n: int) -> dict[str, float | int | None]:
    low, high = wilson_interval(k, n)
    return {"value": (k / n) if n else None, "low": low, "high": high, "k": int(k), "n": int(n)}


def binary_stats(truth: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Confusion counts and sensitivity, specificity, PPV, NPV (each with a Wilson 95% interval) at a threshold.

    A case is called positive when ``score >= threshold``. PPV and NPV are those of this data set's prevalence.
    """
    truth = np.asarray(truth, dtype=int)
    called = np.asarray(scores, dtype=np.float64) >= threshold
    tp = int(np.sum(called & (truth == 1)))
    fp = int(np.sum(called & (truth == 0)))
    fn = int(np.sum(~called & (truth == 1)))
    tn = int(np.sum(~called & (truth == 0)))
    return {"threshold": float(threshold), "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "sensitivity": _proportion(tp, tp + fn), "specificity": _proportion(tn, tn + fp),
            "ppv": _proportion(tp, tp + fp), "npv": _proportion(tn, tn + fn),
            "accuracy": _proportion(tp + tn, tp + tn + fp + fn)}


THRESHOLD_METHODS = ("youden", "sensitivity", "specificity", "fixed")


def pick_threshold(truth: np.ndarray, scores: np.ndarray, method: str = "youden",
                   target: float | None = None) -> float:
    """A decision threshold on ``scores`` chosen on labelled data (use the validation split, not the test split).

    Args:
        method: ``"youden"``: maximises sensitivity + specificity - 1 (the highest such threshold on ties);
            ``"sensitivity"``: the highest threshold whose sensitivity is >= ``target`` (so the best specificity
            that keeps it); ``"specificity"``: the lowest threshold whose specificity is >= ``target``;
            ``"fixed"``: ``target`` itself.
        target: the required proportion (0..1) or, for ``"fixed"``, the threshold.

    Returns:
        The midpoint between the chosen observed score and the next lower observed score (or ``target`` for
        ``"fixed"``): ``score >= threshold`` reproduces the operating point on this data, and new cases are
        not decided by the gap's edge. An overconfident model whose positives all score 1.0 on validation
        would otherwise get the threshold 1.0 and call positives with 0.9999 negative.
    """
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"unknown threshold method '{method}'; choose one of {', '.join(THRESHOLD_METHODS)}")
    if method == "fixed":
        if target is None:
            raise ValueError("a fixed threshold needs a value")
        return float(target)
    truth, scores = np.asarray(truth, dtype=int), np.asarray(scores, dtype=np.float64)
    if not _defined(truth):
        raise ValueError("choosing a threshold needs positive and negative cases")
    candidates = np.unique(scores)[::-1]  # high to low: sensitivity rises, specificity falls
    sens = _share_at_or_above(scores[truth == 1], candidates)
    spec = 1.0 - _share_at_or_above(scores[truth == 0], candidates)
    if method == "youden":
        return _in_gap(candidates, int(np.argmax(sens + spec - 1.0)))
    if target is None or not 0.0 <= target <= 1.0:
        raise ValueError(f"'{method} >= X' needs a target between 0 and 1")
    if method == "sensitivity":
        return _in_gap(candidates, int(np.flatnonzero(sens >= target - 1e-12)[0]))
    ok = np.flatnonzero(spec >= target - 1e-12)
    if not ok.size:  # even the highest threshold calls some negative positive: call nobody positive
        return float(np.nextafter(candidates[0], np.inf))
    return _in_gap(candidates, int(ok[-1]))


def _in_gap(candidates: np.ndarray, index: int) -> float:
    """Halfway between ``candidates[index]`` and the next lower candidate (candidates run high to low)."""
    if index + 1 >= len(candidates):
        return float(candidates[index])
    return float((candidates[index] + candidates[index + 1]) / 2.0)


def _share_at_or_above(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each threshold, the share of ``values`` that are >= it (O(n log n))."""
    ordered = np.sort(values)
    return (len(ordered) - np.searchsorted(ordered, thresholds, side="left")) / len(ordered)


# --- calibration -----------------------------------------------------------------------------------------

def reliability(y: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """Reliability diagram of the top-class probability in equal-width bins, and the calibration errors.

    Bin b holds the cases whose top probability lies in ((b-1)/B, b/B] (the first bin includes 0).
    ECE = sum over bins of (cases in bin / all cases) * |accuracy in bin - mean top probability in bin|;
    MCE is the largest such gap. Empty bins have ``None`` accuracy and confidence.
    """
    y, probs = np.asarray(y, dtype=int), np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    counts, acc, conf = [], [], []
    ece, mce = 0.0, 0.0
    for b in range(n_bins):
        mask = index == b
        counts.append(int(mask.sum()))
        if not mask.any():
            acc.append(None)
            conf.append(None)
            continue
        a, c = float(correct[mask].mean()), float(confidence[mask].mean())
        acc.append(a)
        conf.append(c)
        ece += mask.sum() / len(y) * abs(a - c)
        mce = max(mce, abs(a - c))
    return {"edges": edges.tolist(), "count": counts, "accuracy": acc, "confidence": conf,
            "ece": float(ece) if len(y) else None, "mce": float(mce) if len(y) else None, "n_bins": n_bins}


# --- abstain ---------------------------------------------------------------------------------------------

def coverage_curve(y: np.ndarray, probs: np.ndarray) -> dict[str, list[float]]:
    """Accuracy on the cases the model answers versus the share it answers, for every abstain threshold.

    For each observed top probability t (increasing), the model answers the cases with top probability >= t:
    ``coverage`` is their share and ``accuracy`` their accuracy. The first point (lowest t) answers everything.
    """
    y, probs = np.asarray(y, dtype=int), np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    thresholds = np.unique(confidence)
    order = np.argsort(confidence, kind="stable")
    first = np.searchsorted(confidence[order], thresholds, side="left")  # answered: order[first:]
    right_from = np.concatenate([np.cumsum(correct[order][::-1])[::-1], [0]])
    n_answered = len(y) - first
    return {"thresholds": thresholds.tolist(), "coverage": (n_answered / len(y)).tolist(),
            "accuracy": (right_from[first] / n_answered).tolist()}


def abstain_threshold_for(y: np.ndarray, probs: np.ndarray, accuracy: float) -> float | None:
    """The lowest abstain threshold whose answered cases reach ``accuracy`` (most coverage); None if none does."""
    curve = coverage_curve(y, probs)
    for t, a in zip(curve["thresholds"], curve["accuracy"], strict=True):
        if a >= accuracy - 1e-12:
            return float(t)
    return None


def decide(probs: np.ndarray, positive: int | None = None, threshold: float | None = None,
           abstain: float | None = None) -> np.ndarray:
    """Class index per case, or -1 for "not sure".

    With a positive class and threshold, a case is that class when its probability is >= threshold, otherwise
    the most probable of the other classes. With ``abstain``, a case whose top probability is below it gets -1.
    """
    probs = np.asarray(probs, dtype=np.float64)
    pred = probs.argmax(axis=1)
    if positive is not None and threshold is not None:
        others = probs.copy()
        others[:, positive] = -np.inf
        pred = np.where(probs[:, positive] >= threshold, positive, others.argmax(axis=1))
    if abstain is not None:
        pred = np.where(probs.max(axis=1) < abstain, -1, pred)
    return pred


def apply_abstain(probs: np.ndarray, threshold: float) -> np.ndarray:
    """Predicted class index, or -1 ("not sure") where the top probability is below ``threshold``."""
    return decide(probs, abstain=threshold)


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Confusion matrix (rows true, columns predicted) of decided cases, and the "not sure" count per true class."""
    y, pred = np.asarray(y, dtype=int), np.asarray(pred, dtype=int)
    matrix = np.zeros((n_classes, n_classes), dtype=int)
    decided = pred >= 0
    np.add.at(matrix, (y[decided], pred[decided]), 1)
    return {"matrix": matrix.tolist(), "not_sure": np.bincount(y[~decided], minlength=n_classes).tolist()}
