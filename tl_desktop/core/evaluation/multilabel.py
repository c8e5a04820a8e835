"""Figures of a multi-label classifier (several findings per image, each present or absent): numpy in, JSON out.

Conventions: ``y`` is an (n, L) 0/1 matrix with one column per label (finding) in ``names`` order, ``probs`` the
(n, L) probabilities ``sigmoid(logits)``; label j is predicted present when ``probs[:, j] >= thresholds[name]``.
Each label is judged as its own two-class problem with the engine's statistics (``statistics.auc_ci`` with its
bootstrap, over whole patients when ``groups`` is given; ``binary_stats`` with Wilson intervals), and the whole
table with the usual multi-label summaries: exact match, Hamming loss, macro and micro F1. Thresholds are chosen
per label on the validation split (``choose_thresholds``), never on the test split. Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tl_desktop.core.evaluation import statistics as st

DEFAULT_THRESHOLD = 0.5


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function (float64), stable for large positive and negative logits."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(-np.abs(z))  # never overflows
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _defined(truth: np.ndarray) -> bool:
    return bool(truth.any() and not truth.all())


def choose_thresholds(y_val: np.ndarray, p_val: np.ndarray, names: Sequence[str], method: str = "youden", *,
                      target: float | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    """One decision threshold per label, chosen on the validation split with ``statistics.pick_threshold``.

    A label whose validation images are all positive or all negative cannot have a threshold chosen; it gets
    ``DEFAULT_THRESHOLD`` (0.5) and is listed in the rule's ``fallback``.

    Args:
        target: passed to ``pick_threshold`` for the methods that need one ("sensitivity", "specificity",
            "fixed"); recorded in the rule when given.

    Returns:
        ``(thresholds, rule)`` with ``rule = {"method", "chosen_on": "val", "fallback": [labels], "why_fallback"}``
        (``why_fallback``: one plain sentence, or None when no label fell back).
    """
    y_val, p_val = _matrix(y_val, int, names), _matrix(p_val, np.float64, names)
    thresholds: dict[str, float] = {}
    missing: dict[str, str] = {}
    for j, name in enumerate(names):
        truth = y_val[:, j]
        if _defined(truth):
            thresholds[name] = float(st.pick_threshold(truth, p_val[:, j], method=method, target=target))
        else:
            thresholds[name] = DEFAULT_THRESHOLD
            missing[name] = "no images without it" if truth.size and truth.all() else "no images with it"
    rule: dict[str, Any] = {"method": method, "chosen_on": "val", "fallback": list(missing),
                            "why_fallback": _why_fallback(missing)}
    if target is not None:
        rule["target"] = float(target)
    return thresholds, rule


def _why_fallback(missing: Mapping[str, str]) -> str | None:
    if not missing:
        return None
    parts = "; ".join(f"{name} ({why})" for name, why in missing.items())
    return (f"The validation split had {parts}, so no threshold could be chosen there and the default "
            f"{DEFAULT_THRESHOLD:g} is used.")


def _matrix(a: np.ndarray, dtype: Any, names: Sequence[str]) -> np.ndarray:
    """``a`` as an (n, L) array (an empty list becomes (0, L))."""
    return np.asarray(a, dtype=dtype).reshape(-1, len(names))


def _predictions(probs: np.ndarray, names: Sequence[str], thresholds: Mapping[str, float]) -> np.ndarray:
    """(n, L) 0/1 predictions: ``probs >= threshold`` per column."""
    absent = [name for name in names if name not in thresholds]
    if absent:
        raise ValueError(f"no threshold for {', '.join(absent)}")
    cut = np.array([float(thresholds[name]) for name in names], dtype=np.float64)
    return (np.asarray(probs, dtype=np.float64) >= cut).astype(int)


def figures(y: np.ndarray, probs: np.ndarray, names: Sequence[str], thresholds: Mapping[str, float], *,
            n_boot: int = 1000, seed: int = 0, groups: np.ndarray | None = None) -> dict[str, Any]:
    """Per-label and whole-table figures of a multi-label split, JSON-ready (python numbers, no NaN).

    Per label: positives, negatives, prevalence, threshold, AUC with its bootstrap interval, average precision,
    ROC and PR curves (None where the label lacks positives or negatives), sensitivity / specificity / PPV with
    Wilson intervals, and F1 (None where the label has no positives and none were predicted). Whole table:
    ``subset_accuracy`` (share of images with every label right), ``hamming_loss`` (share of image-label
    decisions that are wrong), ``macro_f1`` / ``micro_f1`` (scikit-learn, ``zero_division=0``: a label with
    nothing to find and nothing predicted counts 0 in the macro mean), ``macro_auc`` and
    ``macro_average_precision`` (means over the labels where defined), ``no_finding`` (images without any label:
    how many the model left without a finding), ``bootstrap_method`` and ``worst_label`` (lowest AUC).
    """
    y, probs = _matrix(y, int, names), _matrix(probs, np.float64, names)
    pred = _predictions(probs, names, thresholds)
    labels = {name: _label_figures(y[:, j], probs[:, j], pred[:, j], float(thresholds[name]), n_boot, seed, groups)
              for j, name in enumerate(names)}
    aucs = {name: f["auc"]["auc"] for name, f in labels.items() if f["auc"] is not None}
    aps = [f["average_precision"] for f in labels.values() if f["average_precision"] is not None]
    methods = [f["auc"]["method"] for f in labels.values() if f["auc"] is not None]
    out = {"n": int(len(y)), "labels": labels, **_table_figures(y, pred),
           "macro_auc": _mean(list(aucs.values())), "macro_average_precision": _mean(aps),
           "no_finding": _no_finding(y, pred),
           "bootstrap_method": methods[0] if methods else None,
           "worst_label": min(aucs, key=aucs.__getitem__) if aucs else None}
    return _json_ready(out)


def _label_figures(truth: np.ndarray, scores: np.ndarray, called: np.ndarray, threshold: float, n_boot: int,
                   seed: int, groups: np.ndarray | None) -> dict[str, Any]:
    """The figures of one label (one column)."""
    n_pos, n = int(truth.sum()), len(truth)
    stats = st.binary_stats(truth, scores, threshold)
    out: dict[str, Any] = {"n_pos": n_pos, "n_neg": n - n_pos, "prevalence": n_pos / n if n else None,
                           "threshold": threshold, "auc": None, "average_precision": None, "roc": None, "pr": None,
                           "sensitivity": stats["sensitivity"], "specificity": stats["specificity"],
                           "ppv": stats["ppv"], "f1": _f1(truth, called)}
    if _defined(truth):
        out["auc"] = st.auc_ci(truth, scores, n_boot=n_boot, seed=seed, groups=groups)
        out["roc"] = st.roc_curve(truth, scores)
        out["pr"] = st.pr_curve(truth, scores)
        out["average_precision"] = out["pr"]["average_precision"]
    return out


def _f1(truth: np.ndarray, called: np.ndarray) -> float | None:
    """2 TP / (2 TP + FP + FN); None when there is nothing to find and nothing was called."""
    tp = int(np.sum((called == 1) & (truth == 1)))
    wrong = int(np.sum(called != truth))
    return 2 * tp / (2 * tp + wrong) if (2 * tp + wrong) else None


def _table_figures(y: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    """Exact match, Hamming loss and macro / micro F1 over the whole table (None for an empty table)."""
    if y.size == 0:
        return {"subset_accuracy": None, "hamming_loss": None, "macro_f1": None, "micro_f1": None}
    from sklearn.metrics import f1_score

    return {"subset_accuracy": float(np.mean(np.all(pred == y, axis=1))),
            "hamming_loss": float(np.mean(pred != y)),
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
            "micro_f1": float(f1_score(y, pred, average="micro", zero_division=0))}


def _no_finding(y: np.ndarray, pred: np.ndarray) -> dict[str, int]:
    """Images without any label, and of those how many the model left without a finding."""
    empty = ~y.any(axis=1)
    n = int(empty.sum())
    correct = int(np.sum(empty & ~pred.any(axis=1)))
    return {"n": n, "correct": correct, "wrongly_flagged": n - correct}


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _json_ready(value: Any) -> Any:
    """Numpy scalars and arrays to python numbers and lists; a non-finite float to None (JSON has neither)."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_ready(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def predicted_findings(probs_row: Sequence[float], names: Sequence[str],
                       thresholds: Mapping[str, float]) -> list[tuple[str, float]]:
    """The labels at or above their threshold, most probable first (ties in ``names`` order)."""
    found = [(name, float(p)) for name, p in zip(names, probs_row, strict=True) if p >= thresholds[name]]
    return sorted(found, key=lambda item: -item[1])


def summary_lines(figs: Mapping[str, Any]) -> list[str]:
    """Four to five plain-language lines on ``figures(...)`` for a clinician."""
    n = figs["n"]
    if not n:
        return ["No test images: nothing was measured."]
    lines = [f"Exact match (all findings right): {_pct(figs['subset_accuracy'])} of {n} images",
             _auc_line(figs),
             f"Hamming loss {figs['hamming_loss']:.2f}: {_pct(figs['hamming_loss'])} of the image-finding "
             "decisions are wrong",
             f"Macro F1 {figs['macro_f1']:.2f}, micro F1 {figs['micro_f1']:.2f} (F1 weighs missed findings against "
             "false alarms, 1 = neither; macro averages the findings, micro pools every decision)"]
    empty = figs["no_finding"]
    if empty["n"]:
        lines.append(f"Images without any finding: {empty['n']}; the model flagged something on "
                     f"{empty['wrongly_flagged']} of them")
    return lines


def _auc_line(figs: Mapping[str, Any]) -> str:
    labels = figs["labels"]
    worst = figs["worst_label"]
    if worst is None:
        return "AUC not computed: no finding has both test images with it and without it"
    defined = [name for name, f in labels.items() if f["auc"] is not None]
    w = labels[worst]["auc"]
    line = (f"Mean AUC over {len(defined)} finding{'s' if len(defined) != 1 else ''}: {figs['macro_auc']:.2f} "
            f"(1 = every image with the finding scores above every image without it, 0.5 = chance); weakest: "
            f"{worst} {w['auc']:.2f} (95% CI {w['low']:.2f}-{w['high']:.2f})")
    left_out = [name for name in labels if name not in defined]
    if left_out:
        line += f"; not computed for {', '.join(left_out)} (all test images alike)"
    return line


def _pct(share: float) -> str:
    return f"{100.0 * share:.0f}%"


def per_image_rows(paths: Sequence[str], y: np.ndarray, probs: np.ndarray, names: Sequence[str],
                   thresholds: Mapping[str, float]) -> list[dict[str, Any]]:
    """One row per image, most wrong label decisions first, then most confident first.

    Confidence is the largest distance between a probability and its threshold among the image's wrong
    decisions (among all its decisions when none is wrong): a confidently wrong image comes first.

    Returns:
        ``[{"path", "true": [names], "predicted": [names, most probable first], "probabilities": {name: p},
        "errors": wrong label decisions}, ...]``
    """
    y, probs = _matrix(y, int, names), _matrix(probs, np.float64, names)
    pred = _predictions(probs, names, thresholds)
    cut = np.array([float(thresholds[name]) for name in names], dtype=np.float64)
    margin = np.abs(probs - cut)
    keyed = []
    for i, path in enumerate(paths):
        wrong = pred[i] != y[i]
        confidence = float(margin[i][wrong].max() if wrong.any() else margin[i].max(initial=0.0))
        row = {"path": str(path), "true": [name for name, t in zip(names, y[i], strict=True) if t],
               "predicted": [name for name, _ in predicted_findings(probs[i], names, thresholds)],
               "probabilities": {name: float(p) for name, p in zip(names, probs[i], strict=True)},
               "errors": int(wrong.sum())}
        keyed.append(((-row["errors"], -confidence), row))
    keyed.sort(key=lambda item: item[0])
    return [row for _, row in keyed]
