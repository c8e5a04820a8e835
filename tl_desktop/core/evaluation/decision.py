"""The decision rule of an evaluation: none, suggested or chosen by the user; and what an export carries.

With more than two classes the model answers the most probable class: no class is "positive" and there is no
threshold unless the user chooses a class of interest and an operating point. With two classes a suggested
operating point (the positive class by its name, else by rarity; Youden's threshold on the validation split)
is stored to be looked at, and becomes the decision rule only when the user accepts it. Only a rule the user
chose or accepted (``decision_source == "user"``) goes into an export; a "not sure" (abstain) threshold is
only ever set by the user. Functions here work on a clinical.json dict and read or write no file.

Keys of the clinical.json dict kept here:
    task: "binary" or "multi-class".
    positive_class, decision_threshold, positive_reason, threshold_rule: the operating point the figures at a
        threshold use; None when there is none.
    decision_source: None (no rule: the most probable class), "suggested" (shown, not exported) or "user".
    decision_chosen_utc: when the user chose or accepted the operating point.
    suggestion: the suggested operating point of a two-class run (kept to be shown and restored), else None.
    abstain_threshold; operating_point: figures per subset at the operating point ({} without one); coverage.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np

from tl_desktop.core.errors import ClinicalError
from tl_desktop.core.evaluation import statistics as clinical

NEGATIVE_WORDS = frozenset({"normal", "negative", "healthy", "benign", "control", "background", "no", "none",
                            "non", "other", "rest"})
POINT_KEYS = ("positive_class", "decision_threshold", "positive_reason", "threshold_rule")
SUGGESTED, USER = "suggested", "user"
NO_RULE = "No decision rule inside: the model answers the most probable class"


def task_of(class_names: list[str]) -> str:
    """"binary" for two classes, else "multi-class"."""
    return "binary" if len(class_names) == 2 else "multi-class"


def default_positive(class_names: list[str], train_counts: dict[str, int] | None = None) -> tuple[str, str]:
    """(class, reason) suggested as the finding of a two-class run, the reason saying what was really used.

    The class that is not called normal/negative/...; else the rarest in training; when the classes are equally
    frequent (or their counts are unknown), simply the last class, and the reason says so.
    """
    normal = [n for n in class_names if NEGATIVE_WORDS & set(re.split(r"[^a-z0-9]+", n.lower()))]
    if len(class_names) == 2 and len(normal) == 1:
        other = next(n for n in class_names if n != normal[0])
        return other, f"'{normal[0]}' reads as the negative finding"
    counts = train_counts or {}
    rarest = min(class_names, key=lambda n: (counts.get(n, 0), -class_names.index(n)))
    if counts and len({counts.get(n, 0) for n in class_names}) > 1:
        return rarest, (f"the rarest class in training ({counts.get(rarest, 0)} of {sum(counts.values())} "
                        "images); choose another class if it is the finding to detect")
    equal = (f"every class has {counts.get(rarest, 0)} training images" if counts else
             "the training counts are not recorded")
    return rarest, f"no name reads as negative and {equal}: simply the last class; choose the finding to detect"


def _probs(preds: dict[str, Any], temperature: float) -> tuple[np.ndarray, np.ndarray]:
    logits = np.asarray(preds["logits"], dtype=np.float64).reshape(len(preds["labels"]), -1)
    return np.asarray(preds["labels"], dtype=int), clinical.softmax(logits, temperature) if len(logits) else logits


def choose_point(result: dict[str, Any], positive_class: str, reason: str, method: str = "youden",
                 target: float | None = None) -> dict[str, Any]:
    """An operating point for ``positive_class``: the threshold by ``method`` on the validation split.

    Returns the ``POINT_KEYS`` of the point; a warning is added to ``result`` when the validation split cannot
    choose one (threshold 0.5, or the fixed target).
    """
    names = result["class_names"]
    positive = names.index(positive_class)
    y_val, p_val = _probs(result["predictions"]["val"], result["temperature"])
    truth = (y_val == positive).astype(int)
    if truth.any() and not truth.all():
        threshold = clinical.pick_threshold(truth, p_val[:, positive], method, target)
    else:
        threshold = float(target) if method == "fixed" and target is not None else 0.5
        result["warnings"].append(f"the validation split lacks '{positive_class}' or other cases: threshold 0.5")
    return {"positive_class": positive_class, "decision_threshold": float(threshold), "positive_reason": reason,
            "threshold_rule": {"method": method, "target": target, "chosen_on": "val"}}


def suggest(result: dict[str, Any], train_counts: dict[str, int] | None) -> dict[str, Any] | None:
    """The suggested operating point of a two-class evaluation (None for more classes)."""
    if result["task"] != "binary":
        return None
    return choose_point(result, *default_positive(result["class_names"], train_counts))


def set_point(result: dict[str, Any], point: dict[str, Any] | None, source: str | None) -> dict[str, Any]:
    """Make ``point`` the evaluation's operating point (None: none) from ``source``; refresh its figures."""
    for key in POINT_KEYS:
        result[key] = None if point is None else point[key]
    result["decision_source"] = None if point is None else source
    result["decision_chosen_utc"] = (dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
                                     if point is not None and source == USER else None)
    return refresh_figures(result)


def refresh_figures(result: dict[str, Any]) -> dict[str, Any]:
    """Recompute the figures at the stored operating point and abstain threshold, and the coverage curves."""
    result["operating_point"], result["coverage"] = {}, {}
    for subset, preds in result["predictions"].items():
        if preds["labels"]:
            if result.get("positive_class") is not None:
                result["operating_point"][subset] = operating_point(
                    result, result["decision_threshold"], result.get("abstain_threshold"), subset)
            y, p = _probs(preds, result["temperature"])
            result["coverage"][subset] = clinical.coverage_curve(y, p)
    return result


def operating_point(result: dict[str, Any], threshold: float, abstain_threshold: float | None = None,
                    subset: str = "test", positive_class: str | None = None) -> dict[str, Any]:
    """Figures of a stored evaluation at a threshold (cheap: what a GUI slider calls on every move).

    Returns ``clinical.binary_stats`` for the class of interest (on the cases not set aside as "not sure"),
    plus ``confusion`` (matrix of decided cases, ``not_sure`` per true class) and ``coverage``.

    Raises:
        ClinicalError: no class of interest given and none stored.
    """
    names = result["class_names"]
    name = positive_class or result.get("positive_class")
    if name is None:
        raise ClinicalError("no class of interest is chosen: the model answers the most probable class")
    positive = names.index(name)
    y, p = _probs(result["predictions"][subset], result["temperature"])
    decided = clinical.decide(p, positive, threshold, abstain_threshold)
    kept = decided >= 0
    stats = clinical.binary_stats((y[kept] == positive).astype(int), p[kept, positive], threshold)
    stats["confusion"] = clinical.confusion(y, decided, len(names))
    stats["coverage"] = float(kept.mean()) if len(kept) else None
    stats["subset"] = subset
    stats["positive_class"] = names[positive]
    return stats


def exported_rule(result: dict[str, Any]) -> dict[str, str]:
    """The ONNX metadata keys of the decision rule an export of this evaluation carries.

    ``positive_class``, ``decision_threshold`` and ``decision_chosen_utc`` (when known) only for an operating
    point the user chose or accepted; ``abstain_threshold`` when the user set one; ``decision_rule``, the rule in words, when
    either is present. No key at all: the label is the most probable class.
    """
    meta: dict[str, str] = {}
    user = result.get("decision_source") == USER and result.get("decision_threshold") is not None
    if user and result.get("positive_class") is not None:
        meta["positive_class"] = str(result["positive_class"])
        meta["decision_threshold"] = repr(float(result["decision_threshold"]))
        if result.get("decision_chosen_utc"):
            meta["decision_chosen_utc"] = str(result["decision_chosen_utc"])
    if result.get("abstain_threshold") is not None:
        meta["abstain_threshold"] = repr(float(result["abstain_threshold"]))
    if meta:
        rule = (f"label = {meta['positive_class']} when its probability >= {meta['decision_threshold']}, else the "
                "most probable other class" if "positive_class" in meta else "label = the most probable class")
        if "abstain_threshold" in meta:
            rule += f"; '{clinical.NOT_SURE}' when the top probability < {meta['abstain_threshold']}"
        meta["decision_rule"] = rule + " (chosen by the user)"
    return meta


def rule_sentence(meta: dict[str, str]) -> str:
    """Which decision rule an exported file carries, in words, from its metadata (the Export step, the CLI)."""
    if not meta.get("positive_class") and not meta.get("abstain_threshold"):
        return NO_RULE
    parts = []
    if meta.get("positive_class"):
        when = (meta.get("decision_chosen_utc") or "")[:10]
        parts.append(f"{meta['positive_class']} when p ≥ {float(meta['decision_threshold']):.4f}, else the most "
                     f"probable other class (chosen by you{' on ' + when if when else ''})")
    else:
        parts.append("the most probable class")
    if meta.get("abstain_threshold"):
        parts.append(f"“{clinical.NOT_SURE}” when the top probability < {float(meta['abstain_threshold']):.4f}")
    return "Decision rule inside: " + "; ".join(parts)


def point_words(result: dict[str, Any]) -> str:
    """The operating point of an evaluation with its status, in words (the report, the Evaluate step)."""
    if result.get("positive_class") is None:
        return "none: each image gets its most probable class"
    text = f"{result['positive_class']} when its probability ≥ {result['decision_threshold']:.3f}"
    if result.get("decision_source") == USER:
        when = (result.get("decision_chosen_utc") or "")[:10]
        return f"{text}, chosen{' on ' + when if when else ''} (in the exported model)"
    return f"{text}, suggested (not in the exported model)"


def upgrade(result: dict[str, Any]) -> dict[str, Any]:
    """An evaluation written before the decision had a source (format 2 and earlier), in today's keys.

    Its operating point counts as the user's when the user set the class or the threshold; otherwise it was
    automatic: kept as the suggestion for two classes, dropped for more.
    """
    if "decision_source" in result or "class_names" not in result or "predictions" not in result:
        return result
    result["task"] = task_of(result["class_names"])
    user = (result.get("positive_reason") == "chosen by the user"
            or (result.get("threshold_rule") or {}).get("chosen_on") == "user")
    point = {k: result.get(k) for k in POINT_KEYS} if result.get("positive_class") is not None else None
    result["suggestion"] = point if result["task"] == "binary" and not user else None
    if user:
        source = USER
    elif result["task"] == "binary":
        source = SUGGESTED
    else:
        point, source = None, None
    set_point(result, point, source)
    if source == USER:
        result["decision_chosen_utc"] = None  # when is not recorded
    return result
