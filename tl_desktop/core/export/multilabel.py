"""What a multi-label export carries: sigmoid probabilities and one threshold per finding, from the evaluation.

A multi-label run (``RunConfig.task == "multi-label"``) answers several yes/no questions per image. Its export's
``probabilities`` output is ``sigmoid(logits)`` (no softmax, no temperature: each finding is its own question)
and its metadata carries, instead of a single-label decision rule:

- ``task`` = ``multi-label``;
- ``thresholds``: JSON ``{finding: threshold}``, a finding is present when its probability is at or above its
  threshold; the thresholds chosen per finding on the validation split by the run's clinical evaluation
  (``evaluation.multilabel_run``), or 0.5 for every finding when the run has no evaluation (said in
  ``threshold_rule``);
- ``threshold_rule``: how they were chosen, in words;
- ``evaluation``, ``evaluation_checkpoint_sha256``, ``evaluation_computed_utc``: the evaluated checkpoint they
  belong to (absent without an evaluation).

``model_checks`` bounds these keys when a file is opened; ``predictor`` turns them into each image's findings.
"""

from __future__ import annotations

import json
from pathlib import Path

from tl_desktop.core.export.model_checks import MULTI_LABEL

DEFAULT_THRESHOLD = 0.5
METHOD_WORDS = {"youden": "Youden's J"}
OUTPUTS = ("logits (N, findings); probabilities (N, findings) = sigmoid(logits), one independent probability per "
           "finding in class_names order (they need not sum to 1); a finding is present when its probability is "
           "at or above its entry in thresholds, no finding when none is; features (N, feature_dim), penultimate "
           "pooled; unfamiliarity (N), unfamiliar when above unfamiliar_threshold (see unfamiliar_reference)")


def is_multilabel(config) -> bool:
    """Whether a run's config (``RunConfig``) is a multi-label one."""
    return getattr(config, "task", None) == MULTI_LABEL


def decision_metadata(run_dir: Path | str, class_names: list[str], which: str = "best") -> dict[str, str]:
    """The metadata keys of a multi-label export's decision (see the module docstring), read once from the
    evaluation of checkpoint ``which``."""
    from tl_desktop.core.evaluation.run_evaluation import checkpoint_label, load_clinical

    result = load_clinical(run_dir, which) or {}
    stored = result.get("thresholds") if result.get("task") == MULTI_LABEL else None
    if stored and set(stored) == set(class_names):
        thresholds = {name: float(stored[name]) for name in class_names}
        rule = result.get("threshold_rule") or {}
        method = str(rule.get("method", "youden"))
        words = f"thresholds chosen per finding on the validation split ({METHOD_WORDS.get(method, method)})"
        if rule.get("fallback"):
            words += f", {DEFAULT_THRESHOLD:g} for {', '.join(rule['fallback'])} (none could be chosen there)"
    else:
        thresholds = {name: DEFAULT_THRESHOLD for name in class_names}
        words = f"threshold {DEFAULT_THRESHOLD:g} for every finding: the run has no clinical evaluation to choose them"
    meta = {"thresholds": json.dumps(thresholds, ensure_ascii=False),
            "threshold_rule": f"a finding is present when its probability >= its threshold; {words}"}
    if (result.get("checkpoint") or {}).get("sha256") and stored:
        meta.update({"evaluation": checkpoint_label(result),
                     "evaluation_checkpoint_sha256": result["checkpoint"]["sha256"],
                     "evaluation_computed_utc": str(result.get("computed_utc", ""))})
    return meta


def thresholds_text(thresholds: dict[str, float]) -> str:
    """``seven ≥ 0.52, zero ≥ 0.64``: the findings with their thresholds, for one line of a window or the CLI."""
    return ", ".join(f"{name} ≥ {value:.2f}" for name, value in thresholds.items())


def rule_sentence(meta: dict[str, str]) -> str:
    """What a multi-label file decides, in words, from its metadata (the CLI's export summary)."""
    thresholds = json.loads(meta.get("thresholds") or "{}")
    rule = meta.get("threshold_rule", "")
    how = rule.split("; ", 1)[1] if "; " in rule else rule
    return (f"Multi-label model: a finding is present when its probability is at or above its threshold, "
            f"{thresholds_text(thresholds)}; {how}. No finding when none is.")
