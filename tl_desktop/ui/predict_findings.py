"""How the Predict step words a multi-label model's answers: findings at or above their thresholds, the rest below.

Plain functions of ``predictor.Prediction`` rows (no widgets), so the table, the summary and the tests share them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tl_desktop.core.evaluation.statistics import NOT_SURE
from tl_desktop.core.export.multilabel import thresholds_text as thresholds_words

MULTI_HEADERS = {2: "Findings", 6: "Below threshold"}  # a multi-label model's names for those table columns
NO_FINDING = "No finding"


def findings_words(findings: list[tuple[str, float]]) -> str:
    """``zero 0.93, seven 0.71`` (most probable first), or "No finding"."""
    return ", ".join(f"{name} {p:.2f}" for name, p in findings) or NO_FINDING


def findings_tip(thresholds: dict[str, float] | None) -> str:
    where = f" ({thresholds_words(thresholds)})" if thresholds else ""
    return (f"The findings whose probability is at or above their threshold{where}, most probable first. Each "
            "finding has its own probability: they need not add up to 100 %.")


def row_text(p: Any, thresholds: dict[str, float] | None, unlike_mark: str) -> list[str]:
    """The table's seven cells of a multi-label row (``predict_view.HEADERS`` order; no probability column)."""
    found = {name for name, _ in p.findings}
    names = list(thresholds) if thresholds else [name for name, _ in p.top]
    below = sorted(((n, v) for n, v in zip(names, p.probabilities, strict=False) if n not in found),
                   key=lambda item: -item[1])
    answer = findings_words(p.findings)
    if p.decision == NOT_SURE:
        answer = f"{NOT_SURE} ({answer})"
    unlike = f"{unlike_mark} (score {p.unfamiliarity:.2f})" if unlike_mark else ""
    cut = thresholds or {}
    others = ", ".join(f"{n} {v:.2f}" + (f" (needs {cut[n]:.2f})" if n in cut else "") for n, v in below)
    return ["", Path(p.path).name, answer, "", unlike, p.error or "", others]


def answer_spread(predictions: list[Any]) -> str:
    """How many images got each answer (single-label) or each finding (multi-label, "no finding" counted once
    per image without any, and named last; an image with two findings counts for both)."""
    counts: dict[str, int] = {}
    for p in predictions:
        if p.error or p.label is None:
            continue
        if p.findings is None or p.decision == NOT_SURE:
            names = [p.label]
        else:
            names = [n for n, _ in p.findings] or [NO_FINDING.lower()]
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    order = sorted(counts, key=lambda name: (name == NO_FINDING.lower(), name))
    return ", ".join(f"{name}: {counts[name]}" for name in order)
