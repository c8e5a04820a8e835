"""The run list's core (no Qt): display names stored in project.json (the folder untouched), refused names,
deleting (refused while the run trains or another process writes it), the facts a row shows and the figures
and settings the compare window puts side by side, all read from a real tiny run's files."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tl_desktop.core import runs
from tl_desktop.core.errors import ProjectError
from tl_desktop.core.evaluation.run_evaluation import load_clinical
from tl_desktop.core.evaluation.stored_result import ClinicalResult
from tl_desktop.core.project import project_file as proj
from tl_desktop.core.project import run_list
from tl_desktop.core.project.run_settings import compare_settings, settings_rows


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, digits_dir):
    from tests.onnx_run import trained_run

    return trained_run(tmp_path_factory, digits_dir)  # 3 digits, 32 px, 3 epochs of linear probe


@pytest.fixture
def project(tmp_path, tiny_run):
    """A project with two copies of the tiny run (the second one stopped after 2 epochs, no metrics.json)."""
    project = proj.create(tmp_path / "Digits", "Digits")
    for name in ("a", "b"):
        shutil.copytree(tiny_run, project.runs_dir / name)
    second = project.runs_dir / "b"
    (second / "metrics.json").unlink()
    runs.write_history(second, runs.read_history(second)[:2])
    project.add_run(project.runs_dir / "a", model="tf_efficientnet_lite0", strategy="linear-probe", best_epoch=3)
    project.add_run(second, model="tf_efficientnet_lite0", strategy="linear-probe", cancelled=True)
    proj.save(project)
    return project


def test_a_name_is_stored_in_the_project_and_the_folder_keeps_its_name(project):
    entry = project.runs[0]
    assert run_list.display_name(entry).endswith("EfficientNet-Lite0")  # date and network until named
    run_list.rename_run(project, entry, "  Baseline probe  ")
    proj.save(project)
    again = proj.load(project.folder)
    assert again.runs[0].name == "Baseline probe" and run_list.display_name(again.runs[0]) == "Baseline probe"
    assert again.run_path(again.runs[0]) == project.runs_dir / "a" and (project.runs_dir / "a").is_dir()
    assert json.loads(project.file.read_text())["runs"][0]["name"] == "Baseline probe"


@pytest.mark.parametrize(("name", "words"), [("", "Type a name"), ("   ", "Type a name"),
                                             ("x" * (run_list.MAX_NAME + 1), "keep it to"),
                                             ("two\nlines", "one line"), ("BASELINE", "already named")])
def test_a_bad_name_is_refused_and_nothing_changes(project, name, words):
    run_list.rename_run(project, project.runs[0], "Baseline")
    with pytest.raises(ProjectError, match=words):
        run_list.rename_run(project, project.runs[1], name)
    assert project.runs[1].name == ""
    run_list.rename_run(project, project.runs[0], "baseline")  # its own name, in other letters: allowed


def test_a_wrong_name_type_in_project_json_is_refused_on_load(project):
    data = json.loads(project.file.read_text())
    data["runs"][0]["name"] = 7
    project.file.write_text(json.dumps(data))
    with pytest.raises(ProjectError, match="run 1's 'name' is 7"):
        proj.load(project.folder)


def test_the_row_facts_come_from_the_run_folder(project, tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    facts = run_list.run_facts(project, project.runs[0])
    assert (facts.image_size, facts.epochs, facts.epochs_run, facts.best_epoch) == (32, 3, 3, 3)
    assert facts.strategy == "Train only the last layer" and facts.network == "EfficientNet-Lite0"
    assert facts.state == "finished"
    assert [(f.label, f.value) for f in facts.headline[:2]] == [
        ("Test accuracy", metrics["accuracy"]), ("Balanced accuracy", metrics["balanced_accuracy"])]
    stopped = run_list.run_facts(project, project.runs[1])
    assert stopped.epochs_run == 2 and stopped.best_epoch == runs.best_epoch(runs.read_history(tiny_run)[:2])
    assert stopped.headline == ()  # the list never computes: no metrics.json, no figure


def test_without_metrics_json_the_headline_is_the_stored_evaluation(project):
    folder = project.run_path(project.runs[1])
    expected = ClinicalResult(load_clinical(folder)).summary("test")
    figures = run_list.headline(folder)
    assert figures[0] == run_list.Figure("Test accuracy", expected["accuracy"])
    assert figures[1].value == expected["balanced_accuracy"]
    assert figures[0].text == f"{100 * expected['accuracy']:.1f} %"


def test_a_multilabel_run_shows_mean_auc_and_exact_match(findings_run):
    metrics = json.loads((findings_run / "metrics.json").read_text())
    figures = run_list.headline(findings_run)
    assert [f.label for f in figures] == ["Mean AUC over findings", "Every finding right"]
    assert figures[0].value == metrics["roc_auc"]["macro"] and figures[1].value == metrics["subset_accuracy"]
    assert figures[0].text == f"{metrics['roc_auc']['macro']:.3f}"


def test_a_training_run_cannot_be_deleted(project):
    entry = project.runs[0]
    problem = run_list.delete_problem(project, entry, training=project.run_path(entry))
    assert problem and "training now" in problem and "Stop" in problem
    assert run_list.delete_problem(project, entry, training=project.run_path(project.runs[1])) is None


def test_a_run_another_process_writes_cannot_be_deleted(project):
    folder = project.run_path(project.runs[0])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (folder / ".lock").write_text(json.dumps({"pid": other.pid, "host": socket.gethostname(),
                                                  "started": time.time(), "purpose": "training"}))
        problem = run_list.delete_problem(project, project.runs[0])
        assert problem and f"process {other.pid}" in problem
    finally:
        other.kill()
        other.wait()
    assert run_list.delete_problem(project, project.runs[0]) is None  # its process is gone: a stale lock


def test_forgetting_and_deleting_a_run(project):
    entry = project.runs[1]
    folder = project.run_path(entry)
    run_list.forget_run(project, entry)
    run_list.delete_folder(folder)
    assert [r.path for r in project.runs] == ["runs/a"] and not folder.exists()


def test_settings_in_plain_words_and_side_by_side(project):
    first = runs.load_config(project.run_path(project.runs[0]))
    table = dict(settings_rows(first))
    assert table["Image size"] == "32 × 32 px" and table["Epochs (at most)"] == "3"
    assert table["Training method"].startswith("Train only the last layer") and "linear probe" in table["Training method"]
    assert table["Classes"] == "digit_0, digit_1, digit_2" and table["Stop early"] == "no: every epoch is trained"
    from dataclasses import replace

    rows = compare_settings([first, replace(first, epochs=10, image_size=64,
                                            data_config={**first.data_config, "input_size": [3, 64, 64]}), None])
    differs = {row.label for row in rows if row.differs}
    assert {"Epochs (at most)", "Image size"} <= differs
    by_label = {row.label: row.values for row in rows}
    assert by_label["Image size"] == ("32 × 32 px", "64 × 64 px", "–")
    assert by_label["Network"][:2] == ("EfficientNet-Lite0", "EfficientNet-Lite0")
