"""Multi-label figures: a hand-made 12-image x 3-finding table whose counts are worked out by hand (comments) and
checked against scikit-learn; a finding without positives; the patient bootstrap; thresholds chosen on validation;
JSON safety; the order of predicted findings and of the mistakes list."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, hamming_loss, roc_auc_score

from tl_desktop.core.evaluation import multilabel as ml
from tl_desktop.core.evaluation import statistics as st

NAMES = ["atelectasis", "effusion", "nodule"]
THRESHOLDS = {"atelectasis": 0.5, "effusion": 0.4, "nodule": 0.6}
# rows: images 0..11; columns: atelectasis, effusion, nodule. Images 4, 6, 7, 9 have no finding.
Y = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 1, 0],
              [0, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1], [0, 0, 1]])
P = np.array([[0.9, 0.8, 0.55, 0.3, 0.75, 0.2, 0.1, 0.45, 0.05, 0.15, 0.35, 0.25],
              [0.2, 0.7, 0.5, 0.12, 0.1, 0.9, 0.3, 0.05, 0.45, 0.15, 0.42, 0.38],
              [0.1, 0.2, 0.3, 0.7, 0.1, 0.2, 0.1, 0.3, 0.2, 0.1, 0.8, 0.3]]).T
PRED = (P >= np.array([0.5, 0.4, 0.6])).astype(int)
# By hand at the thresholds:
#   atelectasis: positives 0.9 0.8 0.55 | 0.3 -> TP 3 FN 1; negatives: 0.75 called -> FP 1 TN 7.
#                AUC: 0.9 and 0.8 beat all 8 negatives, 0.55 beats 7, 0.3 beats 5 -> 28/32.
#   effusion:    positives 0.7 0.9 0.45 | 0.12 -> TP 3 FN 1; negatives 0.5 0.42 called -> FP 2 TN 6.
#                AUC: 8 + 8 + 7 + 2 (0.12 beats 0.1 and 0.05) -> 25/32.
#   nodule:      positives 0.8 | 0.3 -> TP 1 FN 1; negative 0.7 called -> FP 1 TN 9.
#                AUC: 0.8 beats 10, 0.3 beats 7 and ties 2 -> (10 + 8) / 20.
#   Exact match: images 0 1 5 6 7 8 9 -> 7/12; wrong decisions 2 + 3 + 2 = 7 of 36.
#   F1 = 2TP / (2TP + FP + FN): 6/8, 6/9, 2/4; micro: TP 7, FP 4, FN 3 -> 14/21.
HAND_AUC = {"atelectasis": 28 / 32, "effusion": 25 / 32, "nodule": 18 / 20}


@pytest.fixture(scope="module")
def figs():
    return ml.figures(Y, P, NAMES, THRESHOLDS, n_boot=200, seed=0)


def _proportion(figure: dict, k: int, n: int) -> None:
    low, high = st.wilson_interval(k, n)
    assert (figure["k"], figure["n"]) == (k, n)
    assert figure["value"] == pytest.approx(k / n)
    assert (figure["low"], figure["high"]) == pytest.approx((low, high))


def test_per_label_figures_equal_the_hand_counts(figs):
    a, e, n = (figs["labels"][name] for name in NAMES)
    _proportion(a["sensitivity"], 3, 4)
    _proportion(a["specificity"], 7, 8)
    _proportion(a["ppv"], 3, 4)
    _proportion(e["sensitivity"], 3, 4)
    _proportion(e["specificity"], 6, 8)
    _proportion(e["ppv"], 3, 5)
    _proportion(n["sensitivity"], 1, 2)
    _proportion(n["specificity"], 9, 10)
    _proportion(n["ppv"], 1, 2)
    assert [a["f1"], e["f1"], n["f1"]] == pytest.approx([6 / 8, 6 / 9, 2 / 4])
    assert [(f["n_pos"], f["n_neg"], f["prevalence"]) for f in (a, e, n)] == [(4, 8, 4 / 12), (4, 8, 4 / 12),
                                                                              (2, 10, 2 / 12)]
    assert [f["threshold"] for f in (a, e, n)] == [0.5, 0.4, 0.6]
    assert figs["n"] == 12


def test_auc_and_average_precision_equal_hand_and_sklearn(figs):
    for j, name in enumerate(NAMES):
        label = figs["labels"][name]
        assert label["auc"]["auc"] == pytest.approx(HAND_AUC[name])
        assert label["auc"]["auc"] == pytest.approx(roc_auc_score(Y[:, j], P[:, j]))
        assert label["auc"]["low"] <= label["auc"]["auc"] <= label["auc"]["high"]
        assert label["average_precision"] == pytest.approx(average_precision_score(Y[:, j], P[:, j]))
        assert label["roc"]["tpr"][-1] == 1.0 and label["pr"]["prevalence"] == pytest.approx(Y[:, j].mean())
    assert figs["macro_auc"] == pytest.approx(np.mean(list(HAND_AUC.values())))
    assert figs["macro_average_precision"] == pytest.approx(
        np.mean([average_precision_score(Y[:, j], P[:, j]) for j in range(3)]))
    assert figs["worst_label"] == "effusion"
    assert figs["bootstrap_method"] == "stratified bootstrap over images"


def test_table_figures_equal_hand_and_sklearn(figs):
    assert figs["subset_accuracy"] == pytest.approx(7 / 12)
    assert figs["subset_accuracy"] == pytest.approx(accuracy_score(Y, PRED))
    assert figs["hamming_loss"] == pytest.approx(7 / 36)
    assert figs["hamming_loss"] == pytest.approx(hamming_loss(Y, PRED))
    assert figs["macro_f1"] == pytest.approx((6 / 8 + 6 / 9 + 2 / 4) / 3)
    assert figs["macro_f1"] == pytest.approx(f1_score(Y, PRED, average="macro", zero_division=0))
    assert figs["micro_f1"] == pytest.approx(14 / 21)
    assert figs["micro_f1"] == pytest.approx(f1_score(Y, PRED, average="micro", zero_division=0))
    # images 4, 6, 7, 9 have no finding; image 4 (atelectasis 0.75) is flagged
    assert figs["no_finding"] == {"n": 4, "correct": 3, "wrongly_flagged": 1}


def test_a_label_without_positives_has_no_auc_and_is_left_out_of_the_mean():
    y = np.column_stack([Y, np.zeros(12, dtype=int)])
    p = np.column_stack([P, np.linspace(0.05, 0.7, 12)])  # two images called positive: false alarms
    names, thresholds = [*NAMES, "pneumothorax"], {**THRESHOLDS, "pneumothorax": 0.6}
    figs = ml.figures(y, p, names, thresholds, n_boot=200)
    empty = figs["labels"]["pneumothorax"]
    assert (empty["auc"], empty["average_precision"], empty["roc"], empty["pr"]) == (None, None, None, None)
    assert empty["sensitivity"]["value"] is None and empty["sensitivity"]["n"] == 0
    _proportion(empty["specificity"], 10, 12)
    assert empty["f1"] == 0.0  # no true positive, two false alarms
    assert figs["macro_auc"] == pytest.approx(np.mean(list(HAND_AUC.values())))
    assert figs["worst_label"] == "effusion"
    assert "not computed for pneumothorax" in ml.summary_lines(figs)[1]
    json.dumps(figs, allow_nan=False)


def test_f1_is_none_when_there_is_nothing_to_find_and_nothing_called():
    figs = ml.figures(np.zeros((4, 1), dtype=int), np.full((4, 1), 0.1), ["x"], {"x": 0.5}, n_boot=50)
    assert figs["labels"]["x"]["f1"] is None
    assert (figs["macro_auc"], figs["worst_label"], figs["bootstrap_method"]) == (None, None, None)
    assert figs["no_finding"] == {"n": 4, "correct": 4, "wrongly_flagged": 0}
    assert ml.summary_lines(figs)[1].startswith("AUC not computed")


def test_grouped_bootstrap_resamples_patients():
    groups = np.repeat([f"patient{i}" for i in range(6)], 2)  # two images per patient
    figs = ml.figures(Y, P, NAMES, THRESHOLDS, n_boot=200, seed=0, groups=groups)
    assert figs["bootstrap_method"] == "cluster bootstrap over 6 patients"
    for name in NAMES:
        auc = figs["labels"][name]["auc"]
        assert auc["method"] == "cluster bootstrap over 6 patients"
        assert auc["low"] <= HAND_AUC[name] <= auc["high"]
        assert auc["high"] - auc["low"] > 0
    ungrouped = ml.figures(Y, P, NAMES, THRESHOLDS, n_boot=200, seed=0)
    assert figs["labels"]["effusion"]["auc"]["low"] != ungrouped["labels"]["effusion"]["auc"]["low"]


def test_figures_are_plain_json():
    figs = ml.figures(Y, P, NAMES, THRESHOLDS, n_boot=200, groups=np.repeat(np.arange(6), 2))
    assert json.loads(json.dumps(figs, allow_nan=False)) == figs

    def walk(value):
        if isinstance(value, dict):
            assert all(type(k) is str for k in value)
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        else:
            assert type(value) in (int, float, str, bool, type(None)), (value, type(value))

    walk(figs)


def test_choose_thresholds_youden_by_hand_and_fallback():
    # x: scores high to low 0.9(+) 0.7(-) 0.6(+) 0.4(+) 0.3(-) 0.1(-); sensitivity + specificity - 1 at
    # ">= 0.4" is 1 + 2/3 - 1 = 2/3, the best; the threshold is halfway to the next lower score: 0.35.
    y_val = np.array([[1, 0, 1], [1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1], [0, 0, 1]])
    p_val = np.array([[0.9, 0.6, 0.7, 0.4, 0.3, 0.1], [0.2] * 6, [0.8] * 6]).T
    thresholds, rule = ml.choose_thresholds(y_val, p_val, ["x", "no_positives", "no_negatives"])
    assert thresholds == {"x": pytest.approx(0.35), "no_positives": 0.5, "no_negatives": 0.5}
    assert rule["method"] == "youden" and rule["chosen_on"] == "val"
    assert rule["fallback"] == ["no_positives", "no_negatives"]
    assert "no_positives (no images with it)" in rule["why_fallback"]
    assert "no_negatives (no images without it)" in rule["why_fallback"]
    assert rule["why_fallback"].count(".") == 2  # one sentence ("0.5" has the other dot)
    none_back = ml.choose_thresholds(y_val[:, :1], p_val[:, :1], ["x"])[1]
    assert (none_back["fallback"], none_back["why_fallback"]) == ([], None)
    json.dumps(rule, allow_nan=False)


def test_sigmoid_is_stable_and_exact():
    logits = np.array([[-1000.0, -2.0, 0.0], [2.0, 30.0, 1000.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is the right answer
        p = ml.sigmoid(logits)
    assert p.dtype == np.float64
    assert p == pytest.approx(expit(logits), rel=1e-12, abs=0)
    assert p[0, 2] == 0.5 and p[1, 2] == 1.0 and p[0, 0] == 0.0


def test_predicted_findings_most_probable_first_at_or_above_threshold():
    row = [0.7, 0.9, 0.6, 0.59]
    names = ["a", "b", "c", "d"]
    found = ml.predicted_findings(row, names, {"a": 0.5, "b": 0.5, "c": 0.6, "d": 0.6})
    assert found == [("b", 0.9), ("a", 0.7), ("c", 0.6)]  # c sits exactly on its threshold; d is below
    assert all(type(p) is float for _, p in found)
    assert ml.predicted_findings([0.1, 0.2], ["a", "b"], {"a": 0.5, "b": 0.5}) == []


def test_summary_lines_state_the_figures_plainly(figs):
    lines = ml.summary_lines(figs)
    assert 3 <= len(lines) <= 6
    assert lines[0] == "Exact match (all findings right): 58% of 12 images"
    mean_auc = np.mean(list(HAND_AUC.values()))
    low, high = figs["labels"]["effusion"]["auc"]["low"], figs["labels"]["effusion"]["auc"]["high"]
    assert lines[1].startswith(f"Mean AUC over 3 findings: {mean_auc:.2f} (1 = ")
    assert lines[1].endswith(f"weakest: effusion 0.78 (95% CI {low:.2f}-{high:.2f})")
    assert lines[2] == "Hamming loss 0.19: 19% of the image-finding decisions are wrong"
    assert lines[3].startswith("Macro F1 0.64, micro F1 0.67 (")
    assert lines[4] == "Images without any finding: 4; the model flagged something on 1 of them"


def test_per_image_rows_most_errors_then_most_confident():
    paths = [f"img{i}.png" for i in range(12)]
    rows = ml.per_image_rows(paths, Y, P, NAMES, THRESHOLDS)
    # image 3: all three decisions wrong; then one wrong decision each, by its distance from the threshold:
    # image 11 (nodule 0.3 vs 0.6), image 4 (atelectasis 0.75 vs 0.5), image 2 (effusion 0.5 vs 0.4),
    # image 10 (effusion 0.42 vs 0.4); then the seven right images.
    assert [r["path"] for r in rows[:5]] == ["img3.png", "img11.png", "img4.png", "img2.png", "img10.png"]
    assert [r["errors"] for r in rows] == [3, 1, 1, 1, 1] + [0] * 7
    first = rows[0]
    assert first["true"] == ["atelectasis", "effusion"] and first["predicted"] == ["nodule"]
    assert first["probabilities"] == {"atelectasis": 0.3, "effusion": 0.12, "nodule": 0.7}
    assert rows[1]["true"] == ["nodule"] and rows[1]["predicted"] == []
    # among the right images the most confident comes first: image 1 / 5 (0.9 vs 0.4 -> 0.5) before image 8
    right = [r["path"] for r in rows[5:]]
    assert right.index("img5.png") < right.index("img8.png")
    assert sum(r["errors"] for r in rows) == 7
    json.dumps(rows, allow_nan=False)


def test_a_missing_threshold_is_refused():
    with pytest.raises(ValueError, match="nodule"):
        ml.figures(Y, P, NAMES, {"atelectasis": 0.5, "effusion": 0.5}, n_boot=10)


def test_a_probability_on_its_threshold_counts_as_found():
    figs = ml.figures(np.array([[1], [0]]), np.array([[0.5], [0.2]]), ["x"], {"x": 0.5}, n_boot=20)
    assert (figs["subset_accuracy"], figs["labels"]["x"]["f1"], figs["micro_f1"]) == (1.0, 1.0, 1.0)
    assert figs["labels"]["x"]["sensitivity"]["value"] == 1.0
