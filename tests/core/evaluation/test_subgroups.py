"""Subgroup performance: attributes offered from the CSV and non-identifying DICOM tags only; per-subgroup figures
equal a hand computation from the stored predictions; the flag rule flags a worse subgroup and never a small one;
the breakdown lives in clinical.json, follows the decision rule and is carried to a new evaluation."""

from __future__ import annotations

import copy
import csv
import json
import shutil

import numpy as np
import pydicom
import pytest

from tests.subgroup_run import SECRET_ID, SECRET_NAME, subgroup_run
from tl_desktop.cli import main
from tl_desktop.core import runs
from tl_desktop.core.errors import ClinicalError
from tl_desktop.core.evaluation import current, run_evaluation, subgroups
from tl_desktop.core.evaluation import statistics as st


@pytest.fixture
def run(tmp_path_factory, tmp_path):
    return shutil.copytree(subgroup_run(tmp_path_factory), tmp_path / "run")


def _csv_sites(run_dir) -> dict[str, str]:
    config = runs.load_config(run_dir)
    with open(config.csv, newline="", encoding="utf-8") as handle:
        return {row["path"]: row["site"] for row in csv.DictReader(handle)}


def _hand_answers(data: dict) -> tuple[list[int], list[int], int]:
    """(true class, answer) per test image by the stored rule, written out: softmax(logits / T), then p >= t."""
    names, preds = data["class_names"], data["predictions"]["test"]
    positive, threshold, t = names.index(data["positive_class"]), data["decision_threshold"], data["temperature"]
    answers = []
    for logits in preds["logits"]:
        e = [np.exp(v / t) for v in logits]
        p = e[positive] / sum(e)
        answers.append(positive if p >= threshold else 1 - positive)
    return list(preds["labels"]), answers, positive


@pytest.mark.parametrize("raw, band", [("067Y", "60-79"), ("017Y", "<18"), ("018Y", "18-39"), ("040Y", "40-59"),
                                       ("080Y", "80+"), ("030M", "<18"), ("005D", "<18"), ("", "unknown"),
                                       ("old", "unknown"), (45, "40-59")])
def test_age_strings_become_bands(raw, band):
    assert subgroups.age_band(raw) == band


def test_only_non_identifying_attributes_are_offered_and_stored(run):
    found = {a.name: a for a in subgroups.offered_attributes(run)}
    assert {n for n, a in found.items() if a.offered} == {"site", "PatientSex", "PatientAge", "Manufacturer"}
    assert "identif" in found["mrn"].reason and "different values" in found["ref"].reason
    assert not {"PatientID", "PatientName", "path", "label"} & set(found)
    for name in ("PatientID", "PatientName", "PatientBirthDate", "StudyInstanceUID", "mrn", "ref"):
        with pytest.raises(ClinicalError):
            current.set_subgroups(run, [name])
    data = current.set_subgroups(run, ["site", "PatientSex", "PatientAge", "Manufacturer"])
    text = (run / "clinical.json").read_text(encoding="utf-8")
    assert SECRET_ID not in text and SECRET_NAME.split("^")[0] not in text
    assert set(data["subgroups"]["values"]["PatientAge"]) <= {"<18", "18-39", "40-59", "60-79", "80+"}
    assert data["subgroups"]["sources"] == {"site": "csv", "PatientSex": "dicom", "PatientAge": "dicom",
                                            "Manufacturer": "dicom"}


def test_subgroup_figures_are_a_hand_computation(run):
    data = current.set_subgroups(run, ["site", "PatientSex"])
    y, answers, positive = _hand_answers(data)
    paths = data["predictions"]["test"]["paths"]
    root = runs.load_manifest(run)["root"]
    by = {"site": [_csv_sites(run)[p] for p in paths],
          "PatientSex": [str(pydicom.dcmread(f"{root}/{p}", stop_before_pixels=True).PatientSex) for p in paths]}
    for attribute, values in by.items():
        rows = {r["value"]: r for r in data["subgroups"]["figures"][attribute]}
        assert set(rows) == set(values)
        for value, row in rows.items():
            mine = [i for i, v in enumerate(values) if v == value]
            right = sum(answers[i] == y[i] for i in mine)
            pos = [i for i in mine if y[i] == positive]
            neg = [i for i in mine if y[i] != positive]
            tp, tn = sum(answers[i] == positive for i in pos), sum(answers[i] != positive for i in neg)
            assert row["n"] == len(mine)
            assert (row["accuracy"]["k"], row["accuracy"]["n"]) == (right, len(mine))
            assert row["accuracy"]["value"] == right / len(mine)
            assert (row["sensitivity"]["k"], row["sensitivity"]["n"]) == (tp, len(pos))
            assert (row["specificity"]["k"], row["specificity"]["n"]) == (tn, len(neg))
            assert (row["accuracy"]["low"], row["accuracy"]["high"]) == st.wilson_interval(right, len(mine))
            assert row["too_few"] == (len(mine) < 10) and (not row["too_few"] or not row["flagged"])
    sites = data["subgroups"]["figures"]["site"]
    assert sum(r["n"] for r in sites) == len(paths)
    assert any(r["value"] == "C" and r["too_few"] and "too few" in r["note"] for r in sites)


def _forced(data: dict, wrong: set[int]) -> dict:
    """A copy of the artefact whose test image ``i`` is answered wrongly (confidently) for i in ``wrong``, rightly
    otherwise."""
    out = copy.deepcopy(data)
    preds = out["predictions"]["test"]
    preds["logits"] = [[(5.0 if (c == y) != (i in wrong) else -5.0) for c in range(len(out["class_names"]))]
                       for i, y in enumerate(preds["labels"])]
    return out


def test_a_worse_subgroup_is_flagged_and_a_small_one_never(run):
    data = run_evaluation.load_clinical(run)
    n = len(data["predictions"]["test"]["labels"])
    values = ["hard"] * 10 + ["tiny"] * 3 + ["easy"] * (n - 13)
    forced = _forced(data, set(range(13)))  # "hard" and "tiny": every answer wrong
    rows = {r["value"]: r for r in subgroups.subgroup_figures(forced, {"site": values})["site"]}
    hard, tiny, easy = rows["hard"], rows["tiny"], rows["easy"]
    assert hard["accuracy"]["value"] == 0.0 and hard["accuracy"]["high"] < hard["rest"]["accuracy"]["low"]
    assert hard["flagged"] and "accuracy" in hard["flags"]
    assert tiny["accuracy"]["value"] == 0.0 and not tiny["flagged"] and tiny["too_few"]
    assert not easy["flagged"] and easy["accuracy"]["value"] == 1.0
    same = subgroups.subgroup_figures(_forced(data, set()), {"site": values})["site"]
    assert not any(r["flagged"] for r in same)  # equally good everywhere: nothing flagged


def test_one_mistake_against_a_small_perfect_rest_is_not_flagged(run):
    data = run_evaluation.load_clinical(run)
    n = len(data["predictions"]["test"]["labels"])
    values = ["big"] * (n - 6) + ["small"] * 6
    row = subgroups.subgroup_figures(_forced(data, {0}), {"x": values})["x"][0]
    assert row["value"] == "big" and row["accuracy"]["k"] == n - 7 and not row["flagged"]


def test_more_classes_give_accuracy_and_each_class_recall():
    y = [0, 0, 1, 1, 2, 2, 2, 0, 1, 2, 0, 1]
    answer = [0, 1, 1, 1, 2, 0, 2, 0, 1, 2, 2, 1]
    data = {"class_names": ["a", "b", "c"], "temperature": 1.0, "positive_class": None,
            "decision_threshold": None, "abstain_threshold": None, "bootstrap": {"n_boot": 200, "seed": 0},
            "predictions": {"test": {"labels": y, "logits": [[3.0 * (c == a) for c in range(3)] for a in answer],
                                     "paths": [f"{i}.png" for i in range(12)]}}}
    values = ["u"] * 6 + ["v"] * 6
    rows = {r["value"]: r for r in subgroups.subgroup_figures(data, {"s": values})["s"]}
    assert rows["u"]["accuracy"]["k"] == 4 and rows["v"]["accuracy"]["k"] == 5
    assert {k: (f["k"], f["n"]) for k, f in rows["u"]["recall"].items()} == {"a": (1, 2), "b": (2, 2), "c": (1, 2)}
    assert "sensitivity" not in rows["u"] and "auc" not in rows["u"]


def test_a_grouped_run_resamples_whole_patients(run):
    data = run_evaluation.load_clinical(run)
    n = len(data["predictions"]["test"]["labels"])
    groups = np.array([f"patient{i // 2}" for i in range(n)], dtype=object)
    forced = _forced(data, {0, 2, 5})
    row = subgroups.subgroup_figures(forced, {"s": ["one"] * n}, groups)["s"][0]
    assert row["accuracy"]["method"].startswith("cluster bootstrap over")
    assert (row["accuracy"]["low"], row["accuracy"]["high"]) != st.wilson_interval(row["accuracy"]["k"], n)
    plain = subgroups.subgroup_figures(forced, {"s": ["one"] * n})["s"][0]
    assert plain["accuracy"]["method"] == "Wilson"


def test_the_breakdown_follows_the_decision_and_is_carried_to_a_new_evaluation(run):
    current.set_subgroups(run, ["site"])
    data = run_evaluation.set_decision(run, threshold=0.999999)  # almost nothing called positive now
    y, answers, positive = _hand_answers(data)
    called = sum(r["sensitivity"]["k"] + r["specificity"]["n"] - r["specificity"]["k"]
                 for r in data["subgroups"]["figures"]["site"])
    assert called == sum(a == positive for a in answers)
    stored = json.loads((run / "clinical.json").read_text(encoding="utf-8"))
    stored["checkpoint"]["sha256"] = "0" * 64  # as if the checkpoint had changed: computed again
    (run / "clinical.json").write_text(json.dumps(stored), encoding="utf-8")
    again = current.current_clinical(run)
    assert again["checkpoint"]["sha256"] != "0" * 64
    assert subgroups.stored_attributes(again) == ["site"] and again["subgroups"]["figures"]["site"]


def test_cli_prints_the_table_and_json_from_the_stored_artefact(run, capsys):
    assert main(["evaluate", str(run), "--subgroups", "site,PatientSex", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    stored = run_evaluation.load_clinical(run)["subgroups"]
    assert printed["subgroups"]["figures"] == stored["figures"] and "values" not in printed["subgroups"]
    assert main(["evaluate", str(run), "--subgroups", "site"]) == 0
    out = capsys.readouterr().out
    assert "site (CSV column):" in out and "Rule: " in out and "too few images" in out
    assert main(["evaluate", str(run), "--subgroups", "PatientName"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "identifies patients" in err[0]
