"""Where a project keeps its transfer results, and the comparison's conclusion (no training: instant)."""

from __future__ import annotations

import os

import pytest

from tl_desktop.core.fsutil import atomic_write_json
from tl_desktop.core.insight.results import (
    BUDGET_FILE,
    CHECK_FILE,
    TRANSFER_FOLDER,
    compare_sentence,
    latest_result,
    new_result_folder,
)


def test_new_folders_are_fresh_and_the_newest_readable_result_is_shown(tmp_path):
    first = new_result_folder(tmp_path, "check", "tf_efficientnet_lite0")
    assert first.parent == tmp_path / TRANSFER_FOLDER and first.name.endswith("-check-tf_efficientnet_lite0")
    assert not first.exists() and latest_result(tmp_path, "check") is None
    atomic_write_json(first / CHECK_FILE, {"verdict": "neutral"})
    second = new_result_folder(tmp_path, "check", "tf_efficientnet_lite0")
    assert second != first and second.name.startswith(first.name)  # same second: numbered, never reused
    atomic_write_json(second / CHECK_FILE, {"verdict": "positive"})
    os.utime(first / CHECK_FILE, (1, 1))
    assert latest_result(tmp_path, "check") == ({"verdict": "positive"}, second)
    (second / CHECK_FILE).write_text("{ damaged")
    assert latest_result(tmp_path, "check") == ({"verdict": "neutral"}, first)  # the damaged one is skipped
    assert latest_result(tmp_path, "budget") is None and BUDGET_FILE == "label_budget.json"
    assert new_result_folder(tmp_path, "compare", "a/b:c").name.endswith("-compare-a_b_c")
    with pytest.raises(ValueError):
        new_result_folder(tmp_path, "bogus")


def _row(label: str, value: float, low: float, high: float) -> dict:
    return {"model": label.lower(), "label": label,
            "test_balanced_accuracy": {"value": value, "low": low, "high": high}}


def test_compare_sentence_names_the_best_and_the_overlapping_models():
    assert compare_sentence([]) == ""
    alone = compare_sentence([_row("A", 0.9, 0.85, 0.95), _row("B", 0.5, 0.4, 0.6)])
    assert alone == "Highest test balanced accuracy: A, 90.0% (95% CI 85.0-95.0)."
    close = compare_sentence([_row("A", 0.8, 0.7, 0.9), _row("B", 0.85, 0.75, 0.93), _row("C", 0.5, 0.4, 0.69)])
    assert close.startswith("Highest test balanced accuracy: B, 85.0%") and "overlaps with A:" in close
    assert "C" not in close.split("overlaps")[1]
