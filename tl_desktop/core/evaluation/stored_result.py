"""A stored clinical evaluation (``clinical.json``) as the Evaluate step reads it. No Qt, no torch.

Everything the threshold slider, the pickers and the drill-down need is computed here from the per-image
logits the core stored (``predictions[subset]``), with the core's own functions (``clinical``,
``clinical_run.operating_point``): moving the slider never runs the model again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tl_desktop.core.evaluation import statistics as clinical
from tl_desktop.core.evaluation.run_evaluation import operating_point

NOT_SURE = clinical.NOT_SURE


@dataclass(frozen=True)
class Decision:
    """The operating point the user is looking at."""

    positive: str
    threshold: float
    abstain: float | None = None


@dataclass(frozen=True)
class ImageResult:
    path: str  # relative to the run's data root
    true: str
    predicted: str  # a class name or NOT_SURE
    probabilities: dict[str, float]  # temperature-scaled, as the exported model reports them

    @property
    def confidence(self) -> float:
        return self.probabilities.get(self.predicted, max(self.probabilities.values(), default=0.0))


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
        return Decision(self.data["positive_class"], float(self.data["decision_threshold"]),
                        self.data.get("abstain_threshold"))

    def curves(self) -> dict[str, Any]:
        return {k: v for k, v in (self.data.get("curves") or {}).items() if v is not None}

    def calibration(self, subset: str = "test") -> dict[str, Any] | None:
        return (self.data.get("calibration") or {}).get(subset)

    def coverage(self, subset: str = "test") -> dict[str, list[float]] | None:
        return (self.data.get("coverage") or {}).get(subset)

    def n(self, subset: str = "test") -> int:
        return len(self.data["predictions"].get(subset, {}).get("labels", []))

    # --- per image ----------------------------------------------------------------------------------
    def probs(self, subset: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """(labels, temperature-scaled probabilities) of a subset."""
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
        return clinical.decide(p, self.names.index(decision.positive), decision.threshold, decision.abstain)

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
        """``clinical_run.operating_point``: counts, sensitivity/specificity/PPV/NPV with Wilson intervals."""
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
