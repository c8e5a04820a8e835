"""Clinical figures against values computed by hand on small fixed inputs."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from tl_desktop.core.evaluation import statistics as clinical

# Ten cases: five positives, five negatives. At threshold 0.5: TP 4 (0.9 0.8 0.7 0.6), FN 1 (0.3),
# FP 1 (0.55), TN 4.
TRUTH = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.55, 0.4, 0.2, 0.1, 0.05])


def _wilson_by_formula(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    denom = 1 + z ** 2 / n
    centre = (p + z ** 2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z ** 2 / (4 * n ** 2)) / denom
    return centre - half, centre + half


def test_sensitivity_specificity_ppv_npv_with_wilson_intervals():
    stats = clinical.binary_stats(TRUTH, SCORES, 0.5)
    assert (stats["tp"], stats["fn"], stats["fp"], stats["tn"]) == (4, 1, 1, 4)
    low, high = _wilson_by_formula(4, 5)
    assert (round(low, 4), round(high, 4)) == (0.3755, 0.9638)  # the textbook Wilson interval of 4/5
    for key in ("sensitivity", "specificity", "ppv", "npv"):
        figure = stats[key]
        assert figure["value"] == pytest.approx(0.8) and (figure["k"], figure["n"]) == (4, 5)
        assert figure["low"] == pytest.approx(low, abs=1e-4) and figure["high"] == pytest.approx(high, abs=1e-4)
    assert stats["accuracy"]["value"] == pytest.approx(0.8)


def test_wilson_edge_cases():
    assert clinical.wilson_interval(0, 0) == (None, None)
    low, high = clinical.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(_wilson_by_formula(0, 10)[1], abs=1e-4)  # 0.2775
    low, high = clinical.wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(_wilson_by_formula(10, 10)[0], abs=1e-4)


def test_threshold_pickers_by_hand():
    # Youden J = sens + spec - 1 over thresholds 0.9 .8 .7 .6 .55 .4 .3 ...: .2 .4 .6 .8 .6 .4 .6 ... -> 0.6,
    # returned halfway to the next lower score 0.55: 0.575 (same operating point on these cases)
    assert clinical.pick_threshold(TRUTH, SCORES, "youden") == pytest.approx(0.575)
    assert clinical.binary_stats(TRUTH, SCORES, 0.575)["sensitivity"]["value"] == 0.8
    # every positive found needs threshold 0.3 (the lowest positive score)
    assert clinical.pick_threshold(TRUTH, SCORES, "sensitivity", 1.0) == pytest.approx(0.25)  # (0.3 + 0.2) / 2
    assert clinical.pick_threshold(TRUTH, SCORES, "sensitivity", 0.8) == pytest.approx(0.575)
    # no false positive: the lowest threshold above every negative is the positive score 0.6
    assert clinical.pick_threshold(TRUTH, SCORES, "specificity", 1.0) == pytest.approx(0.575)
    assert clinical.pick_threshold(TRUTH, SCORES, "specificity", 0.8) == pytest.approx(0.475)  # (0.55 + 0.4) / 2
    assert clinical.pick_threshold(TRUTH, SCORES, "fixed", 0.42) == 0.42
    with pytest.raises(ValueError, match="target"):
        clinical.pick_threshold(TRUTH, SCORES, "sensitivity")
    # a negative scores highest: specificity 1.0 means calling nobody positive
    t = clinical.pick_threshold(np.array([0, 1]), np.array([0.9, 0.5]), "specificity", 1.0)
    assert t > 0.9 and clinical.binary_stats([0, 1], [0.9, 0.5], t)["fp"] == 0


def test_auc_by_hand_and_roc_points():
    # positive-negative pairs ranked correctly: 4 positives beat all 5 negatives (20), 0.3 beats 3 -> 23/25
    assert clinical.auc(TRUTH, SCORES) == pytest.approx(0.92)
    roc = clinical.roc_curve(TRUTH, SCORES)
    assert roc["fpr"][0] == 0 and roc["tpr"][0] == 0 and roc["fpr"][-1] == 1 and roc["tpr"][-1] == 1
    assert roc["thresholds"][0] > 0.9  # stands for +inf
    i = roc["thresholds"].index(0.6)
    assert (roc["fpr"][i], roc["tpr"][i]) == (0.0, 0.8)
    pr = clinical.pr_curve(TRUTH, SCORES)
    assert pr["prevalence"] == 0.5 and 0.5 < pr["average_precision"] <= 1


def test_bootstrap_ci_is_seeded_contains_the_auc_and_narrows_with_n():
    def sample(n: int, seed: int):
        rng = np.random.default_rng(seed)
        truth = np.repeat([1, 0], n // 2)
        return truth, rng.normal(truth * 1.0, 1.0)

    small = clinical.auc_ci(*sample(40, 1), n_boot=1000, seed=7)
    assert small == clinical.auc_ci(*sample(40, 1), n_boot=1000, seed=7)
    assert small["low"] < small["auc"] < small["high"]
    large = clinical.auc_ci(*sample(400, 1), n_boot=1000, seed=7)
    assert large["low"] < large["auc"] < large["high"]
    assert (large["high"] - large["low"]) < 0.6 * (small["high"] - small["low"])
    # the true AUC of two unit normals one SD apart is Phi(1 / sqrt 2) = 0.760
    assert large["low"] < 0.760 < large["high"]
    assert (small["n_pos"], small["n_neg"]) == (20, 20)
    with pytest.raises(ValueError):
        clinical.auc_ci([1, 1], [0.2, 0.3])


def test_bootstrap_auc_matches_sklearn_on_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    truth, scores = rng.integers(0, 2, 40), rng.integers(0, 4, 40).astype(float)
    index = np.stack([rng.permutation(40)[:15] for _ in range(5)])  # rows of a resample, classes mixed
    index[:, :2] = [truth.argmax(), truth.argmin()]                 # each row has both classes
    fast = clinical._auc_rows(truth, scores, index)
    slow = [roc_auc_score(truth[row], scores[row]) for row in index]
    assert np.allclose(fast, slow)


def test_one_vs_rest_roc_auc_and_the_metrics_that_use_it():
    from sklearn.metrics import confusion_matrix, roc_auc_score

    from tl_desktop.core.evaluation.metrics import classification_metrics

    rng = np.random.default_rng(4)
    y = np.array([0, 1, 2] * 10)
    probs = rng.dirichlet(np.ones(3), 30)
    names = ["a", "b", "c"]
    auc = clinical.roc_auc(y, probs, names)
    assert auc["b"] == pytest.approx(roc_auc_score(y == 1, probs[:, 1]))
    assert auc["macro"] == pytest.approx(np.mean([auc[n] for n in names]))
    assert clinical.roc_auc(np.zeros(5, int), probs[:5], names) == {"a": None, "b": None, "c": None, "macro": None}
    metrics = classification_metrics(y, probs, names)
    assert metrics["roc_auc"] == auc
    assert metrics["confusion_matrix"] == confusion_matrix(y, probs.argmax(1), labels=[0, 1, 2]).tolist()
    assert metrics["confusion_matrix"] == clinical.confusion(y, probs.argmax(1), 3)["matrix"]


def test_the_bootstrap_keeps_class_counts_or_whole_patients():
    y = np.array([0] * 6 + [1] * 4)
    rows, method = clinical.bootstrap(lambda index: index, y, n_boot=50, seed=1)
    assert rows.shape == (50, 10) and method == "stratified bootstrap over images"
    assert (y[rows[:, :6]] == 0).all() and (y[rows[:, 6:]] == 1).all()  # sorted classes, each its own count
    groups = np.repeat(np.arange(5), 2)
    seen, method = clinical.bootstrap(lambda index: [np.bincount(index[0], minlength=10)], y, n_boot=50, seed=1,
                                      groups=groups)
    assert method == "cluster bootstrap over 5 patients" and seen.shape == (50, 10)
    assert (seen[:, ::2] == seen[:, 1::2]).all()  # a patient's two images are drawn together
    assert all(len(set(y[np.flatnonzero(row)].tolist())) == 2 for row in seen)  # every resample has both classes
    assert clinical.case_groups(["a", "b"], None) is None
    assert clinical.case_groups(["a", "b"], {"a": "p1", "b": None}).tolist() == ["p1", "file:b"]


def test_ece_on_two_bins_by_hand():
    probs = np.array([[0.4, 0.3, 0.3],     # top .40, right  -> bin [0, .5]
                      [0.2, 0.45, 0.35],   # top .45, wrong  -> bin [0, .5]
                      [0.9, 0.05, 0.05],   # top .90, right  -> bin (.5, 1]
                      [0.1, 0.8, 0.1],     # top .80, wrong  -> bin (.5, 1]
                      [0.1, 0.1, 0.8]])    # top .80, right  -> bin (.5, 1]
    y = np.array([0, 2, 0, 0, 2])
    rel = clinical.reliability(y, probs, n_bins=2)
    assert rel["count"] == [2, 3]
    assert rel["accuracy"] == pytest.approx([0.5, 2 / 3]) and rel["confidence"] == pytest.approx([0.425, 2.5 / 3])
    # ECE = 2/5 * |0.5 - 0.425| + 3/5 * |2/3 - 0.8333| = 0.03 + 0.1 = 0.13
    assert rel["ece"] == pytest.approx(0.13)
    assert rel["mce"] == pytest.approx(1 / 6)


def test_temperature_by_hand_and_it_lowers_nll():
    # three cases with logits (1, 0), two of them class 0: the best probability is 2/3 = sigmoid(1/T),
    # so 1/T = ln 2 and T = 1 / ln 2 = 1.4427
    logits = np.array([[1.0, 0.0]] * 3)
    assert clinical.fit_temperature(logits, np.array([0, 0, 1])) == pytest.approx(1 / math.log(2), rel=1e-4)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    over = (np.eye(3)[y] * 2.0 + rng.normal(0, 1.0, (300, 3))) * 4.0  # right-ish but far too sure
    t = clinical.fit_temperature(over, y)
    assert t > 2
    assert clinical.nll(over, y, t) < clinical.nll(over, y) - 0.1
    before = clinical.reliability(y, clinical.softmax(over))["ece"]
    after = clinical.reliability(y, clinical.softmax(over, t))["ece"]
    assert after < before
    assert (clinical.softmax(over, t).argmax(1) == over.argmax(1)).all()


def test_coverage_curve_and_abstain_by_hand():
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.3, 0.7], [0.45, 0.55], [0.6, 0.4]])
    y = np.array([0, 0, 1, 0, 1])  # the 0.55 and the 0.6 cases are wrong
    curve = clinical.coverage_curve(y, probs)
    assert curve["thresholds"] == pytest.approx([0.55, 0.6, 0.7, 0.9, 0.95])
    assert curve["coverage"] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])
    assert curve["accuracy"] == pytest.approx([3 / 5, 3 / 4, 1.0, 1.0, 1.0])
    assert clinical.abstain_threshold_for(y, probs, 1.0) == pytest.approx(0.7)
    assert clinical.apply_abstain(probs, 0.7).tolist() == [0, 0, 1, -1, -1]
    table = clinical.confusion(y, clinical.apply_abstain(probs, 0.7), 2)
    assert table == {"matrix": [[2, 0], [0, 1]], "not_sure": [1, 1]}


def test_decide_with_a_threshold_on_the_positive_class():
    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    assert clinical.decide(probs).tolist() == [0, 0, 2]
    assert clinical.decide(probs, positive=1, threshold=0.25).tolist() == [0, 1, 2]
    assert clinical.decide(probs, positive=1, threshold=0.25, abstain=0.6).tolist() == [0, -1, 2]


# --- a real run: clinical.json, the exported decision, the predictor ------------------------------------

@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    import shutil

    from tests.evaluation_run import two_digit_run
    from tl_desktop.core.evaluation.run_evaluation import evaluate_clinical

    shared = two_digit_run(tmp_path_factory)  # a copy: the user's decisions set here must not reach other tests
    run = shared.parent / f"statistics-copy-{os.getpid()}"
    if not run.exists():
        shutil.copytree(shared, run, ignore=shutil.ignore_patterns("report"))
    return run, evaluate_clinical(run, positive_class="digit_8", n_boot=500)


def test_clinical_json_of_a_run(evaluated):
    from tl_desktop.core.evaluation.run_evaluation import load_clinical

    run, result = evaluated
    assert load_clinical(run) == result
    assert result["positive_class"] == "digit_8" and result["threshold_rule"]["chosen_on"] == "val"
    test = result["operating_point"]["test"]
    y = np.asarray(result["predictions"]["test"]["labels"])
    assert test["tp"] + test["fn"] == int((y == 1).sum()) and test["tn"] + test["fp"] == int((y == 0).sum())
    probs = clinical.softmax(np.asarray(result["predictions"]["test"]["logits"]), result["temperature"])
    assert test == {**clinical.binary_stats(y == 1, probs[:, 1], result["decision_threshold"]),
                    "confusion": test["confusion"], "coverage": 1.0, "subset": "test", "positive_class": "digit_8"}
    auc = result["curves"]["digit_8"]["auc"]
    assert auc["low"] <= auc["auc"] <= auc["high"] and auc["auc"] > 0.8
    cal = result["calibration"]["val"]
    assert cal["nll_after"] <= cal["nll_before"] + 1e-9  # the temperature is fitted on val
    assert result["temperature"] > 0 and len(result["coverage"]["test"]["coverage"]) >= 2
    assert all(not p.startswith("/") for p in result["predictions"]["test"]["paths"])


def test_threshold_and_abstain_reach_the_onnx_file_and_the_predictor(evaluated, tmp_path):
    import onnx

    from tl_desktop.core.evaluation.decision import operating_point
    from tl_desktop.core.evaluation.run_evaluation import decision_metadata, set_decision
    from tl_desktop.core.export.onnx_export import export_onnx
    from tl_desktop.core.export.predictor import OnnxPredictor

    run, before = evaluated
    probs = clinical.softmax(np.asarray(before["predictions"]["test"]["logits"]), before["temperature"])
    abstain = float(np.round(np.median(probs.max(axis=1)), 4))  # about half the cases set aside
    result = set_decision(run, threshold=0.3, abstain_threshold=abstain)
    assert result["decision_threshold"] == 0.3 and result["threshold_rule"]["chosen_on"] == "user"
    live = operating_point(result, 0.3, abstain)
    assert 0.3 <= live["coverage"] <= 0.8
    assert live == result["operating_point"]["test"]
    assert sum(live["confusion"]["not_sure"]) + np.sum(live["confusion"]["matrix"]) == result["n"]["test"]
    exported = export_onnx(run, tmp_path / "model.onnx")
    meta = {p.key: p.value for p in onnx.load(str(exported.path)).metadata_props}
    assert (meta["positive_class"], float(meta["decision_threshold"]), float(meta["abstain_threshold"])) == \
        ("digit_8", 0.3, abstain)
    assert float(meta["temperature"]) == pytest.approx(result["temperature"])
    predictor = OnnxPredictor(exported.path)
    files = [str(run.parent / "data" / p) for p in result["predictions"]["test"]["paths"]]
    found = predictor.predict(files)
    p8 = np.array([p.probabilities[1] for p in found])
    top = np.array([max(p.probabilities) for p in found])
    expected = np.where(top < abstain, "not sure", np.where(p8 >= 0.3, "digit_8", "digit_3"))
    assert [p.label for p in found] == expected.tolist()
    import csv

    from tl_desktop.cli import main

    table = tmp_path / "decisions.csv"  # batch CSVs carry the same decisions, "not sure" included
    assert main(["predict", str(exported.path), *files, "--csv", str(table)]) == 0
    with table.open(newline="") as handle:
        assert [r["decision"] for r in csv.DictReader(handle)] == expected.tolist()
    # the ONNX probabilities are the evaluated (temperature-scaled) ones
    assert np.allclose(p8, probs[:, 1], atol=1e-4)
    set_decision(run, abstain_threshold=None)
    assert "abstain_threshold" not in decision_metadata(run) and "decision_threshold" in decision_metadata(run)


def test_patients_with_several_images_widen_the_auc_interval():
    """Each of 30 patients imaged 5 times: resampling images pretends 150 independent cases."""
    rng = np.random.default_rng(1)
    truth = np.repeat(np.arange(30) % 2, 5)
    patient_score = rng.normal(size=30) + 0.8 * (np.arange(30) % 2)
    scores = np.repeat(patient_score, 5) + rng.normal(scale=0.05, size=150)
    groups = np.repeat(np.arange(30), 5)
    per_image = clinical.auc_ci(truth, scores, n_boot=400, seed=0)
    per_patient = clinical.auc_ci(truth, scores, n_boot=400, seed=0, groups=groups)
    once = clinical.auc_ci(truth[::5], scores[::5], n_boot=400, seed=0)  # one image per patient
    width = {k: v["high"] - v["low"] for k, v in
             {"image": per_image, "patient": per_patient, "once": once}.items()}
    assert per_patient["auc"] == per_image["auc"] and per_patient["method"].startswith("cluster bootstrap over 30")
    assert width["patient"] > 1.7 * width["image"]  # sqrt(5) ~ 2.2 in theory
    assert abs(width["patient"] - width["once"]) < 0.35 * width["once"]  # about what 30 patients support
    assert clinical.auc_ci(truth, scores, groups=np.arange(150))["method"].startswith("stratified")
