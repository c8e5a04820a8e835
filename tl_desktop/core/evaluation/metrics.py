"""Classification metrics: numpy in, JSON-ready dict out (scikit-learn does the arithmetic)."""

from __future__ import annotations

from typing import Any

import numpy as np


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, per-class precision/recall/F1/support, confusion matrix, ROC-AUC.

    Args:
        y_true: integer labels, shape (n,).
        probs: class probabilities, shape (n, k), columns in ``class_names`` order.
        class_names: the k class names.

    Returns:
        A dict; ``roc_auc`` entries are None where a class has no positive or no negative example.
    """
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
    )

    y_true = np.asarray(y_true, dtype=int)
    probs = np.asarray(probs, dtype=float)
    labels = list(range(len(class_names)))
    if y_true.size == 0:
        return {"n": 0, "class_names": list(class_names), "accuracy": None, "balanced_accuracy": None,
                "per_class": {}, "confusion_matrix": [[0] * len(labels) for _ in labels], "roc_auc": {}}
    y_pred = probs.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
               "support": int(support[i])}
        for i, name in enumerate(class_names)
    }
    present = np.unique(y_true)
    return {
        "n": int(y_true.size),
        "class_names": list(class_names),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)) if present.size > 0 else None,
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "roc_auc": _roc_auc(y_true, probs, class_names),
    }


def _roc_auc(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict[str, float | None]:
    """One-vs-rest ROC-AUC per class and their macro mean over the classes where it is defined."""
    from sklearn.metrics import roc_auc_score

    out: dict[str, float | None] = {}
    for i, name in enumerate(class_names):
        positives = y_true == i
        if positives.all() or not positives.any():
            out[name] = None
        else:
            out[name] = float(roc_auc_score(positives, probs[:, i]))
    defined = [v for v in out.values() if v is not None]
    out["macro"] = float(np.mean(defined)) if defined else None
    return out


def misclassified(paths: list[str], y_true: np.ndarray, probs: np.ndarray, class_names: list[str],
                  limit: int = 500) -> list[dict[str, Any]]:
    """The wrongly classified files, most confident mistakes first, with every class probability."""
    y_pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    wrong = wrong[np.argsort(-probs[wrong, y_pred[wrong]])][:limit]
    return [
        {"path": paths[i], "true": class_names[int(y_true[i])], "predicted": class_names[int(y_pred[i])],
         "probabilities": {name: round(float(p), 6) for name, p in zip(class_names, probs[i], strict=False)}}
        for i in wrong
    ]
