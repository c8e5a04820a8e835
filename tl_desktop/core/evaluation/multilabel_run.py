"""The multi-label part of a run's evaluation (``clinical.json`` with ``task: "multi-label"``).

Each finding is its own yes/no question: probabilities are the sigmoid of the logits (no temperature), a
threshold per finding is chosen on the validation split (Youden's J; 0.5 where the validation split cannot
tell, named in the rule), and every test figure is computed at those thresholds by ``multilabel.figures``:
AUC per finding with a (patient-grouped) bootstrap interval, average precision, sensitivity, specificity and
PPV with Wilson intervals, and over all findings exact-match (subset) accuracy, Hamming loss and macro / micro F1.
``run_evaluation.evaluate_clinical`` stores the result; ``stored_result`` reads it like any evaluation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tl_desktop.core.evaluation import multilabel

TASK = "multi-label"


def targets(rows: list[dict[str, Any]], names: list[str]) -> np.ndarray:
    """(n, findings) 0/1 float32 targets of manifest rows (their ``findings``)."""
    index = {name: i for i, name in enumerate(names)}
    out = np.zeros((len(rows), len(names)), np.float32)
    for i, row in enumerate(rows):
        for name in row.get("findings", []):
            out[i, index[name]] = 1.0
    return out


def arrays(preds: dict[str, Any], n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """(0/1 targets, sigmoid probabilities) of one stored subset."""
    y = np.asarray(preds["labels"], dtype=int).reshape(-1, n_labels)
    logits = np.asarray(preds["logits"], dtype=np.float64).reshape(-1, n_labels)
    return y, multilabel.sigmoid(logits)


def figures_of(result: dict[str, Any], groups: np.ndarray | None) -> dict[str, Any]:
    """The thresholds (chosen on validation), their rule and the test figures of a multi-label evaluation.

    Args:
        result: the evaluation being built: ``class_names``, ``predictions`` and ``bootstrap``.
        groups: the patient of each test image (grouped split), or None.
    """
    names = result["class_names"]
    y_val, p_val = arrays(result["predictions"]["val"], len(names))
    y_test, p_test = arrays(result["predictions"]["test"], len(names))
    thresholds, rule = multilabel.choose_thresholds(y_val, p_val, names)
    boot = result["bootstrap"]
    figures = multilabel.figures(y_test, p_test, names, thresholds, n_boot=boot["n_boot"], seed=boot["seed"],
                                 groups=groups)
    warnings = []
    if rule.get("fallback"):
        warnings.append(rule.get("why_fallback") or f"threshold 0.5 used for {', '.join(rule['fallback'])}")
    for name, entry in figures["labels"].items():
        if entry["auc"] is None:
            warnings.append(f"finding '{name}' has {entry['n_pos']} positive and {entry['n_neg']} negative test "
                            "images: its AUC cannot be computed")
    return {"thresholds": thresholds, "threshold_rule": rule, "multilabel": figures, "warnings": warnings}


def summary(result: dict[str, Any], subset: str = "test") -> dict[str, Any]:
    """The figures every reader shows of a multi-label evaluation (``metrics.json``'s test figures): the
    stored test figures (or those of ``subset`` at the stored thresholds), ``roc_auc`` per finding plus
    ``macro``, ``accuracy`` (exact match) and the images with a wrong finding decision, most errors first."""
    names = result["class_names"]
    if subset == "test":
        figures = result["multilabel"]
    else:
        y, p = arrays(result["predictions"][subset], len(names))
        figures = multilabel.figures(y, p, names, result["thresholds"], n_boot=200, seed=0)
    light = {name: {k: v for k, v in entry.items() if k not in ("roc", "pr")}
             for name, entry in figures["labels"].items()}
    y, p = arrays(result["predictions"][subset], len(names))
    rows = multilabel.per_image_rows(result["predictions"][subset]["paths"], y, p, names, result["thresholds"])
    aucs = {name: (entry["auc"] or {}).get("auc") for name, entry in figures["labels"].items()}
    return {"task": TASK, "class_names": names, "n": figures["n"], "accuracy": figures["subset_accuracy"],
            "subset_accuracy": figures["subset_accuracy"], "hamming_loss": figures["hamming_loss"],
            "macro_f1": figures["macro_f1"], "micro_f1": figures["micro_f1"],
            "macro_average_precision": figures["macro_average_precision"], "macro_auc": figures["macro_auc"],
            "roc_auc": {**aucs, "macro": figures["macro_auc"]}, "thresholds": dict(result["thresholds"]),
            "per_label": light, "no_finding": figures["no_finding"], "worst_label": figures.get("worst_label"),
            "misclassified": [r for r in rows if r["errors"]]}


def summary_text(summary_: dict[str, Any]) -> list[str]:
    """The plain lines of a ``summary`` (``multilabel.summary_lines``) and one line per finding."""
    lines = multilabel.summary_lines({**summary_, "labels": summary_["per_label"]})
    for name, entry in summary_["per_label"].items():
        auc = entry["auc"]
        auc_text = f"AUC {auc['auc']:.3f} ({auc['low']:.3f}-{auc['high']:.3f})" if auc else "AUC not computed"
        sens, spec = entry["sensitivity"], entry["specificity"]
        lines.append(f"  {name}: {auc_text}, at threshold {entry['threshold']:.3f} sensitivity "
                     f"{_share(sens)} specificity {_share(spec)} ({entry['n_pos']} with it, {entry['n_neg']} without)")
    return lines


def _share(p: dict[str, Any]) -> str:
    return "n/a" if p.get("value") is None else f"{p['value']:.3f} ({p['k']}/{p['n']})"


def findings_text(result: dict[str, Any], subset: str = "test") -> list[str]:
    """Each image's findings at the stored thresholds, as ``a;b`` in name order ("" for none), like the
    manifest's labels."""
    names = result["class_names"]
    _, p = arrays(result["predictions"][subset], len(names))
    return [";".join(sorted(name for name, _ in multilabel.predicted_findings(row, names, result["thresholds"])))
            for row in p]


TABLE_HEADINGS = ["Finding", "With it (test)", "Without it (test)", "AUC (95% CI)", "Average precision",
                  "Threshold (chosen on validation)", "Sensitivity (95% CI)", "Specificity (95% CI)"]


def table_rows(summary_: dict[str, Any]) -> list[list[str]]:
    """The per-finding table of a ``summary`` as text, one row per finding in ``class_names`` order: the cells
    of the Evaluate step's findings table and of the report's, made here so that the two cannot differ.
    Intervals as ``subgroup_tables.interval_text`` writes them; "–" where a figure is undefined."""
    from tl_desktop.core.evaluation.subgroup_tables import interval_text

    rows = []
    for name in summary_["class_names"]:
        entry = summary_["per_label"][name]
        ap = entry.get("average_precision")
        rows.append([name, str(entry["n_pos"]), str(entry["n_neg"]), interval_text(entry.get("auc"), "auc"),
                     "–" if ap is None else f"{ap:.3f}", f"{summary_['thresholds'][name]:.3f}",
                     interval_text(entry.get("sensitivity")), interval_text(entry.get("specificity"))])
    return rows


def rule_text(result: dict[str, Any]) -> str:
    """One plain sentence on how the stored thresholds of an evaluation were chosen (``threshold_rule``)."""
    rule = result.get("threshold_rule") or {}
    method, target = rule.get("method"), rule.get("target")
    words = {"youden": "the best balance of sensitivity and specificity (Youden's J)",
             "sensitivity": f"a sensitivity of at least {target}", "specificity": f"a specificity of at least {target}",
             "fixed": f"a fixed value {target}"}.get(str(method), str(method))
    text = (f"Each finding has its own threshold, chosen on the {(result.get('n') or {}).get('val', '?')} "
            f"validation images for {words}; every test figure is measured at these thresholds.")
    return text + (f" {rule['why_fallback']}" if rule.get("why_fallback") else "")


__all__ = ["TASK", "TABLE_HEADINGS", "targets", "arrays", "figures_of", "summary", "summary_text",
           "findings_text", "table_rows", "rule_text"]
