"""Classification metrics: numpy in, JSON-ready dict out (``metrics.json``).

Precision, recall and F1 come from scikit-learn; the ROC-AUC and the confusion matrix are those of
``statistics``, the same ones the clinical figures use."""

from __future__ import annotations

from typing import Any

import numpy as np

from tl_desktop.core.evaluation import statistics


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
        "confusion_matrix": statistics.confusion(y_true, y_pred, len(labels))["matrix"],
        "roc_auc": statistics.roc_auc(y_true, probs, class_names),
    }


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
