"""A stored evaluation (``clinical.json``) as every reader sees it. No Qt, no torch.

Every figure of a run is computed here from the per-image logits the core stored (``predictions[subset]``),
with the core's own functions: the headline, per-class table, confusion matrix and mistakes (``summary``,
``images``), which the window, the report, the CLI ``evaluate`` and ``metrics.json`` all show, and what the
threshold slider, the pickers and the drill-down need (``statistics``, ``decision.operating_point``):
moving the slider never runs the model again. ``class_figures`` gives each class's sensitivity (recall) and
precision with Wilson intervals, what a summary of more than two classes leads with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tl_desktop.core.evaluation import multilabel_run
from tl_desktop.core.evaluation import statistics as clinical
from tl_desktop.core.evaluation.decision import USER, operating_point
from tl_desktop.core.evaluation.metrics import classification_metrics, misclassified
from tl_desktop.core.evaluation.run_evaluation import checkpoint_label

NOT_SURE = clinical.NOT_SURE


@dataclass(frozen=True)
class Decision:
    """The operating point the user is looking at; no ``positive`` class: the most probable class answers."""

    positive: str | None
    threshold: float | None
    abstain: float | None = None

    @property
    def has_point(self) -> bool:
        """True when a class of interest and its threshold are set (the threshold figures exist)."""
        return self.positive is not None and self.threshold is not None


@dataclass(frozen=True)
class ImageResult:
    path: str  # relative to the run's data root
    true: str
    predicted: str  # a class name or NOT_SURE
    probabilities: dict[str, float]  # temperature-scaled, as the exported model reports them

    @property
    def confidence(self) -> float:
        return self.probabilities.get(self.predicted, max(self.probabilities.values(), default=0.0))


def summary(data: dict[str, Any], subset: str = "test") -> dict[str, Any]:
    """The figures of the plain answer (the most probable class) on a subset of a stored evaluation.

    ``metrics.classification_metrics`` of the stored labels and temperature-scaled probabilities (accuracy,
    balanced accuracy, per class, confusion matrix, ROC-AUC), plus ``misclassified`` (most confident first) and
    ``evaluation``: the checkpoint it belongs to. The one function every headline and table is made from.
    """
    return ClinicalResult(data).summary(subset)


def class_figures(metrics: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Each class's sensitivity (recall) and precision of a ``summary``, as ``{value, k, n, low, high}`` with
    the Wilson 95% interval (``statistics.wilson_interval``), from its confusion matrix."""
    matrix = metrics.get("confusion_matrix") or []
    out = {}
    for i, name in enumerate(metrics.get("class_names", [])):
        k, row, column = matrix[i][i], sum(matrix[i]), sum(r[i] for r in matrix)
        out[name] = {"recall": _proportion(k, row), "precision": _proportion(k, column)}
    return out


def _proportion(k: int, n: int) -> dict[str, Any]:
    low, high = clinical.wilson_interval(k, n)
    return {"value": k / n if n else None, "k": int(k), "n": int(n), "low": low, "high": high}


class ClinicalResult:
    """Read-only view of a clinical.json dict with cached probabilities per subset."""

    def __init__(self, data: dict[str, Any], run_dir: str | Path = "") -> None:
        self.data = data
        self.run_dir = Path(run_dir)
        self.names: list[str] = list(data["class_names"])
        self.temperature = float(data.get("temperature") or 1.0)
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    # --- stored values ------------------------------------------------------------------------------
    def stored_decision(self) -> Decision:
        """The stored operating point (suggested or the user's; none for more than two classes by default)."""
        threshold = self.data.get("decision_threshold")
        return Decision(self.data.get("positive_class"), None if threshold is None else float(threshold),
                        self.data.get("abstain_threshold"))

    @property
    def multiclass(self) -> bool:
        return len(self.names) > 2 and not self.multilabel

    @property
    def multilabel(self) -> bool:
        """Several findings per image: sigmoid probabilities, a threshold per finding (``multilabel_run``)."""
        return self.data.get("task") == multilabel_run.TASK

    def findings_text(self, subset: str = "test") -> list[str]:
        """A multi-label evaluation's findings per image at its thresholds (``a;b``)."""
        return multilabel_run.findings_text(self.data, subset)

    @property
    def source(self) -> str | None:
        """Whose the stored operating point is: None (none), "suggested" or "user" (in the exported model)."""
        return self.data.get("decision_source")

    @property
    def exported_by_user(self) -> bool:
        return self.source == USER

    def curves(self) -> dict[str, Any]:
        return {k: v for k, v in (self.data.get("curves") or {}).items() if v is not None}

    def calibration(self, subset: str = "test") -> dict[str, Any] | None:
        return (self.data.get("calibration") or {}).get(subset)

    def coverage(self, subset: str = "test") -> dict[str, list[float]] | None:
        return (self.data.get("coverage") or {}).get(subset)

    def n(self, subset: str = "test") -> int:
        return len(self.data["predictions"].get(subset, {}).get("labels", []))

    def checkpoint_label(self) -> str:
        """"best checkpoint, epoch 7, sha256 1a2b3c4d": the checkpoint these figures belong to."""
        return checkpoint_label(self.data)

    @property
    def checkpoint(self) -> dict[str, Any]:
        return dict(self.data.get("checkpoint") or {})

    def summary(self, subset: str = "test") -> dict[str, Any]:
        """See the module function ``summary`` (a multi-label evaluation: ``multilabel_run.summary``)."""
        if self.multilabel:
            out = multilabel_run.summary(self.data, subset)
            out["evaluation"] = {"checkpoint": self.checkpoint, "label": self.checkpoint_label(),
                                 "computed_utc": self.data.get("computed_utc"), "subset": subset}
            return out
        y, p = self.probs(subset)
        out = classification_metrics(y, p, self.names)
        paths = self.data["predictions"][subset]["paths"]
        out["misclassified"] = misclassified(paths, y, p, self.names) if len(y) else []
        out["evaluation"] = {"checkpoint": self.checkpoint, "label": self.checkpoint_label(),
                             "computed_utc": self.data.get("computed_utc"), "subset": subset}
        return out

    # --- per image ----------------------------------------------------------------------------------
    def probs(self, subset: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """(labels, temperature-scaled probabilities) of a subset."""
        if subset not in self._cache and self.multilabel:
            self._cache[subset] = multilabel_run.arrays(self.data["predictions"][subset], len(self.names))
        if subset not in self._cache:
            preds = self.data["predictions"][subset]
            y = np.asarray(preds["labels"], dtype=int)
            logits = np.asarray(preds["logits"], dtype=np.float64).reshape(len(y), -1)
            self._cache[subset] = (y, clinical.softmax(logits, self.temperature) if len(y) else logits)
        return self._cache[subset]

    def decisions(self, decision: Decision | None) -> np.ndarray:
        """Class index per test image (-1: not sure); ``None``: the most probable class (the plain answer)."""
        _, p = self.probs("test")
        if decision is None:
            return clinical.decide(p)
        positive = self.names.index(decision.positive) if decision.has_point else None
        return clinical.decide(p, positive, decision.threshold if decision.has_point else None, decision.abstain)

    def confusion(self, decision: Decision | None) -> dict[str, Any]:
        """``statistics.confusion`` of the test images under a decision (``not_sure`` per true class)."""
        y, _ = self.probs("test")
        return clinical.confusion(y, self.decisions(decision), len(self.names))

    def images(self, decision: Decision | None, true: str | None = None, predicted: str | None = None,
               mistakes_only: bool = False) -> list[ImageResult]:
        """Test images of one confusion-matrix cell (or all, or all mistakes), most confident first."""
        y, p = self.probs("test")
        pred = self.decisions(decision)
        paths = self.data["predictions"]["test"]["paths"]
        mask = np.ones(len(y), dtype=bool)
        if true is not None:
            mask &= y == self.names.index(true)
        if predicted is not None:
            mask &= pred == (-1 if predicted == NOT_SURE else self.names.index(predicted))
        if mistakes_only:
            mask &= (pred != y) & (pred >= 0)
        rows = [ImageResult(paths[i], self.names[y[i]], NOT_SURE if pred[i] < 0 else self.names[pred[i]],
                            {name: float(v) for name, v in zip(self.names, p[i], strict=True)})
                for i in np.flatnonzero(mask)]
        return sorted(rows, key=lambda r: -r.confidence)

    # --- operating points ---------------------------------------------------------------------------
    def operating_point(self, decision: Decision, subset: str = "test") -> dict[str, Any]:
        """``decision.operating_point``: counts, sensitivity/specificity/PPV/NPV with Wilson intervals.

        Raises:
            ClinicalError: the decision has no class of interest.
        """
        return operating_point(self.data, decision.threshold, decision.abstain, subset, decision.positive)

    def pick(self, positive: str, method: str, target: float | None = None) -> float:
        """A threshold chosen on the validation split with ``clinical.pick_threshold`` (as the core does).

        Raises:
            ValueError: the validation split lacks positive or negative cases of this class.
        """
        y, p = self.probs("val")
        index = self.names.index(positive)
        return clinical.pick_threshold((y == index).astype(int), p[:, index], method, target)

    def accuracy_at_abstain(self, abstain: float | None, subset: str = "test") -> tuple[float | None, float]:
        """(accuracy on the answered images, coverage) of the plain answer with an abstain threshold."""
        y, p = self.probs(subset)
        if not len(y):
            return None, 0.0
        pred = clinical.decide(p, abstain=abstain)
        kept = pred >= 0
        return (float((pred[kept] == y[kept]).mean()) if kept.any() else None), float(kept.mean())

    def abstain_for_accuracy(self, accuracy: float) -> float | None:
        """The lowest abstain threshold reaching ``accuracy`` on the validation split (most answered)."""
        y, p = self.probs("val")
        return clinical.abstain_threshold_for(y, p, accuracy) if len(y) else None
