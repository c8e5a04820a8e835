"""Multi-class is not binary: no positive class and no threshold unless the user chooses them; for two classes
a suggested operating point that only an acceptance puts into an export."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.evaluation_run import two_digit_run
from tests.onnx_run import trained_run
from tl_desktop.core.errors import ClinicalError
from tl_desktop.core.evaluation import decision, run_evaluation
from tl_desktop.core.evaluation.stored_result import ClinicalResult, class_figures, summary

RULE_KEYS = {"positive_class", "decision_threshold", "decision_rule", "decision_chosen_utc"}


def _evaluated_copy(source, dest):
    """A copy of a shared run evaluated afresh with the default rule (other tests set decisions on the source)."""
    shutil.copytree(source, dest)
    run_evaluation.evaluate_clinical(dest, n_boot=100)
    return dest


@pytest.fixture
def three(tmp_path_factory, digits_dir, tmp_path):
    return _evaluated_copy(trained_run(tmp_path_factory, digits_dir), tmp_path / "three")


@pytest.fixture
def two(tmp_path_factory, tmp_path):
    return _evaluated_copy(two_digit_run(tmp_path_factory), tmp_path / "two")


def test_three_classes_have_no_positive_class_and_no_threshold_unless_chosen(three):
    data = run_evaluation.load_clinical(three)
    assert data["task"] == "multi-class" and data["format"] == run_evaluation.FORMAT
    assert data["positive_class"] is None and data["decision_threshold"] is None
    assert data["decision_source"] is None and data["suggestion"] is None and data["operating_point"] == {}
    meta = run_evaluation.decision_metadata(three)
    assert not RULE_KEYS & set(meta) and "abstain_threshold" not in meta and float(meta["temperature"]) > 0
    assert decision.rule_sentence(meta) == decision.NO_RULE
    with pytest.raises(ClinicalError, match="class of interest"):
        run_evaluation.set_decision(three, threshold=0.4)  # a threshold of which class?
    with pytest.raises(ClinicalError, match="needs a class of interest"):
        run_evaluation.evaluate_clinical(three, threshold_method="youden")
    # the user chooses a class of interest and an operating point: that, and only that, is exported
    chosen = run_evaluation.set_decision(three, positive_class="digit_1", threshold=0.4)
    assert (chosen["decision_source"], chosen["positive_class"], chosen["decision_threshold"]) == ("user", "digit_1", 0.4)
    assert chosen["decision_chosen_utc"] and chosen["operating_point"]["test"]["positive_class"] == "digit_1"
    meta = run_evaluation.decision_metadata(three)
    assert (meta["positive_class"], float(meta["decision_threshold"])) == ("digit_1", 0.4)
    assert meta["decision_chosen_utc"] == chosen["decision_chosen_utc"]
    assert decision.rule_sentence(meta).startswith("Decision rule inside: digit_1 when p ≥ 0.4000")
    # removed again: no rule
    cleared = run_evaluation.set_decision(three, clear=True)
    assert cleared["positive_class"] is None and not RULE_KEYS & set(run_evaluation.decision_metadata(three))


def test_an_abstain_threshold_alone_is_a_rule_without_a_positive_class(three):
    run_evaluation.set_decision(three, abstain_threshold=0.6)
    meta = run_evaluation.decision_metadata(three)
    assert meta["abstain_threshold"] == "0.6" and "positive_class" not in meta and "decision_threshold" not in meta
    assert "most probable class" in meta["decision_rule"]
    assert decision.rule_sentence(meta) == ("Decision rule inside: the most probable class; “not sure” when the top "
                                            "probability < 0.6000")


def test_two_classes_store_a_suggestion_that_is_exported_only_once_accepted(two):
    data = run_evaluation.load_clinical(two)
    assert data["task"] == "binary" and data["decision_source"] == "suggested"
    suggestion = data["suggestion"]
    assert suggestion["positive_class"] == data["positive_class"] and suggestion["threshold_rule"]["method"] == "youden"
    assert data["operating_point"]["test"]["positive_class"] == data["positive_class"]  # shown, as a suggestion
    assert not RULE_KEYS & set(run_evaluation.decision_metadata(two))
    assert "suggested (not in the exported model)" in decision.point_words(data)
    accepted = run_evaluation.set_decision(two, positive_class=suggestion["positive_class"],
                                           threshold=suggestion["decision_threshold"])
    assert accepted["decision_source"] == "user" and accepted["threshold_rule"]["accepted_by_user"] is True
    assert accepted["threshold_rule"]["method"] == "youden" and accepted["suggestion"] == suggestion
    meta = run_evaluation.decision_metadata(two)
    assert meta["positive_class"] == suggestion["positive_class"]
    assert float(meta["decision_threshold"]) == suggestion["decision_threshold"]
    assert "(in the exported model)" in decision.point_words(accepted)
    back = run_evaluation.set_decision(two, clear=True)  # the suggestion again, not exported
    assert back["decision_source"] == "suggested" and not RULE_KEYS & set(run_evaluation.decision_metadata(two))


def test_the_reason_for_a_suggested_class_says_what_was_really_used():
    assert decision.default_positive(["normal", "tumour"], {"normal": 50, "tumour": 50}) == (
        "tumour", "'normal' reads as the negative finding")
    name, reason = decision.default_positive(["cat", "dog"], {"cat": 20, "dog": 20})
    assert name == "dog" and "rarest" not in reason and "every class has 20 training images" in reason
    assert "last class" in reason
    name, reason = decision.default_positive(["cat", "dog"], {"cat": 12, "dog": 30})
    assert name == "cat" and reason.startswith("the rarest class in training (12 of 42 images)")


def test_an_evaluation_of_an_earlier_format_keeps_only_what_the_user_chose(three, two):
    for run, user in ((three, False), (two, False), (two, True)):
        data = json.loads(run_evaluation.clinical_path(run).read_text())
        for key in ("task", "decision_source", "decision_chosen_utc", "suggestion"):
            data.pop(key, None)
        data.update(format=2, positive_class=data["class_names"][-1], decision_threshold=0.3,
                    positive_reason="chosen by the user" if user else "the rarest class in training",
                    threshold_rule={"method": "youden", "target": None, "chosen_on": "val"})
        run_evaluation.clinical_path(run).write_text(json.dumps(data))
        meta = run_evaluation.decision_metadata(run)
        if user:
            assert meta["positive_class"] == data["class_names"][-1] and float(meta["decision_threshold"]) == 0.3
        else:
            assert not RULE_KEYS & set(meta)
        upgraded = run_evaluation.load_clinical(run)
        expected = "user" if user else "suggested" if run == two else None
        assert upgraded["decision_source"] == expected


def test_class_figures_are_wilson_intervals_of_the_matrix(three):
    figures = summary(run_evaluation.load_clinical(three))
    per_class = class_figures(figures)
    matrix = figures["confusion_matrix"]
    for i, name in enumerate(figures["class_names"]):
        recall, precision = per_class[name]["recall"], per_class[name]["precision"]
        assert (recall["k"], recall["n"]) == (matrix[i][i], sum(matrix[i]))
        assert (precision["k"], precision["n"]) == (matrix[i][i], sum(row[i] for row in matrix))
        assert recall["value"] == pytest.approx(figures["per_class"][name]["recall"])
        assert recall["low"] <= recall["value"] <= recall["high"]
    result = ClinicalResult(run_evaluation.load_clinical(three))
    assert result.stored_decision().has_point is False and result.multiclass
