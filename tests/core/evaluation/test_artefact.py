"""The run's one evaluation artefact: its figures are a hand computation from its stored per-image predictions,
metrics.json and the CLI show the same, and a changed checkpoint (by content, not file time) makes it stale."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from tests.evaluation_run import two_digit_run
from tl_desktop.cli import main
from tl_desktop.core import runs
from tl_desktop.core.evaluation import run_evaluation
from tl_desktop.core.evaluation.current import current_clinical, evaluation_state, stale_reason
from tl_desktop.core.evaluation.stored_result import summary


@pytest.fixture
def run(tmp_path_factory, tmp_path):
    return shutil.copytree(two_digit_run(tmp_path_factory), tmp_path / "run")


def _hand(data: dict) -> dict:
    """Accuracy, balanced accuracy, matrix and per-class recall/precision by loops over the stored logits."""
    names, preds = data["class_names"], data["predictions"]["test"]
    k = len(names)
    matrix = [[0] * k for _ in range(k)]
    for true, logits in zip(preds["labels"], preds["logits"], strict=True):
        z = np.asarray(logits) / data["temperature"]
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        matrix[true][int(np.argmax(p))] += 1
    n = sum(map(sum, matrix))
    recall = [matrix[i][i] / sum(matrix[i]) for i in range(k)]
    precision = [matrix[i][i] / max(sum(row[i] for row in matrix), 1) for i in range(k)]
    return {"n": n, "accuracy": sum(matrix[i][i] for i in range(k)) / n, "balanced": sum(recall) / k,
            "matrix": matrix, "recall": recall, "precision": precision, "errors": n - sum(matrix[i][i] for i in
                                                                                        range(k))}


def test_the_figures_are_a_hand_computation_from_the_stored_predictions(run, capsys):
    data = run_evaluation.load_clinical(run)  # written by the fit from the best checkpoint
    hand, figures = _hand(data), summary(data)
    assert figures["n"] == hand["n"] == len(data["predictions"]["test"]["labels"]) > 0
    assert figures["accuracy"] == pytest.approx(hand["accuracy"])
    assert figures["balanced_accuracy"] == pytest.approx(hand["balanced"])
    assert figures["confusion_matrix"] == hand["matrix"]
    for i, name in enumerate(data["class_names"]):
        assert figures["per_class"][name]["recall"] == pytest.approx(hand["recall"][i])
        assert figures["per_class"][name]["precision"] == pytest.approx(hand["precision"][i])
    assert len(figures["misclassified"]) == hand["errors"]
    # metrics.json's test figures are the artefact's, and so is test_predictions.csv
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("n", "accuracy", "balanced_accuracy", "confusion_matrix", "per_class", "roc_auc"):
        assert metrics[key] == figures[key], key
    csv = runs.read_predictions(run)
    assert [data["class_names"].index(p) for p in csv["predicted"]] == [
        int(np.argmax(row)) for row in data["predictions"]["test"]["logits"]]
    # the CLI shows the same figures and names the checkpoint
    assert main(["evaluate", str(run), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["accuracy"] == figures["accuracy"] and printed["confusion_matrix"] == hand["matrix"]
    assert main(["evaluate", str(run)]) == 0
    text = capsys.readouterr().out
    assert f"accuracy {hand['accuracy']:.3f}" in text and "best checkpoint, epoch" in text


def test_the_artefact_records_the_checkpoint_and_the_test_files_it_evaluated(run):
    data = run_evaluation.load_clinical(run)
    digest = hashlib.sha256((run / "checkpoints" / "best.safetensors").read_bytes()).hexdigest()
    assert data["checkpoint"]["sha256"] == digest == runs.checkpoint_sha256(run, "best")
    assert runs.recorded_checkpoint_sha256(run, "best") == digest  # recorded when it was written
    assert data["checkpoint"]["which"] == "best"
    assert data["checkpoint"]["epoch"] == json.loads((run / "checkpoints" / "best.json").read_text())["epoch"]
    rows = sorted(f"{f['path']}\t{f['label']}\t{f['sha256']}\ttest"
                  for f in runs.load_manifest(run)["files"] if f["subset"] == "test")
    assert data["test_manifest_sha256"] == hashlib.sha256("\n".join(rows).encode()).hexdigest()
    label = run_evaluation.checkpoint_label(data)
    assert label == f"best checkpoint, epoch {data['checkpoint']['epoch']}, sha256 {digest[:8]}"


def _retrain_best(run) -> None:
    """The best checkpoint written again with other weights, as a continued run does."""
    import torch

    from tl_desktop.core.models import run_model

    loaded = run_model.load_run(run)
    _, _, info = runs.load_checkpoint(run, "best")
    with torch.no_grad():
        next(loaded.model.parameters()).mul_(0.5)
    runs.save_checkpoint(run, "best", loaded.model, info)


def test_staleness_follows_the_checkpoint_content_not_its_file_time(run):
    stored = run_evaluation.load_clinical(run)
    best = runs.checkpoint_path(run)
    later = best.stat().st_mtime_ns + 10**10
    os.utime(best, ns=(later, later))  # newer than the evaluation, same bytes
    assert stale_reason(run, stored) is None
    _retrain_best(run)
    assert "best checkpoint changed" in stale_reason(run, stored)
    # while the run trains the stored evaluation is shown as it is, labelled out of date, not recomputed
    runs.write_status(run, "running")
    state = evaluation_state(run)
    assert state.training and state.data == stored and "changed" in state.stale
    assert run_evaluation.load_clinical(run) == stored
    # once it has ended, the evaluation is computed again for the new checkpoint
    runs.write_status(run, "finished")
    state = evaluation_state(run)
    assert not state.training and state.stale is None
    assert state.data["checkpoint"]["sha256"] == runs.checkpoint_sha256(run) != stored["checkpoint"]["sha256"]
    assert stale_reason(run, run_evaluation.load_clinical(run)) is None


def test_changed_test_files_in_the_manifest_make_it_stale(run):
    manifest = runs.load_manifest(run)
    test = next(f for f in manifest["files"] if f["subset"] == "test")
    test["sha256"] = "0" * 64
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert "test images" in stale_reason(run, run_evaluation.load_clinical(run))


def test_an_evaluation_of_an_earlier_version_is_computed_again(run):
    data = run_evaluation.load_clinical(run)
    del data["checkpoint"]
    run_evaluation.clinical_path(run).write_text(json.dumps(data))
    assert "does not record which checkpoint" in stale_reason(run, data)
    assert current_clinical(run)["checkpoint"]["sha256"] == runs.checkpoint_sha256(run)


def test_the_last_checkpoint_has_its_own_evaluation(run):
    last = current_clinical(run, which="last")
    assert run_evaluation.clinical_path(run, "last").is_file()
    assert last["checkpoint"]["which"] == "last"
    assert last["checkpoint"]["sha256"] == runs.checkpoint_sha256(run, "last")
    meta = run_evaluation.decision_metadata(run, which="last")
    assert meta["evaluation_checkpoint_sha256"] == last["checkpoint"]["sha256"]
    assert meta["evaluation"].startswith("last checkpoint")
