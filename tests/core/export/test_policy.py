"""Evaluate clinically, then export: the CLI and the window export a run with the same decision metadata; a
decision rule is inside only when the user chose or accepted one (never for more than two classes by default)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.evaluation_run import two_digit_run
from tests.onnx_run import TINY, trained_run
from tl_desktop.cli import main
from tl_desktop.core import runs
from tl_desktop.core.evaluation import run_evaluation
from tl_desktop.core.evaluation.current import current_clinical
from tl_desktop.core.events import CancelToken, Notice
from tl_desktop.core.export.onnx_export import TIMESTAMP_KEYS
from tl_desktop.core.export.policy import export_run

DECISION_KEYS = ("temperature", "positive_class", "decision_threshold", "decision_rule")
RULE_KEYS = {"positive_class", "decision_threshold", "decision_rule", "decision_chosen_utc"}


def _metadata(path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def _unevaluated_copy(run, dest):
    """The shared run as a new folder without its clinical evaluation (other tests evaluate it in place)."""
    shutil.copytree(run, dest)
    run_evaluation.clinical_path(dest).unlink(missing_ok=True)
    return dest


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    source = two_digit_run(tmp_path_factory)
    base = tmp_path_factory.mktemp("policy")
    return _unevaluated_copy(source, base / "cli-run"), _unevaluated_copy(source, base / "window-run")


def test_cli_and_window_exports_carry_identical_metadata(two_runs, tmp_path, capsys):
    from tl_desktop.workers.tasks import export_task

    cli_run, window_run = two_runs
    assert main(["export", str(cli_run), "--out", str(tmp_path / "cli.onnx")]) == 0
    capsys.readouterr()
    events: list = []
    export_task(str(window_run), str(tmp_path / "window.onnx"), fp16=False, int8=False, callback=events.append,
                cancel=CancelToken())
    cli, window = _metadata(tmp_path / "cli.onnx"), _metadata(tmp_path / "window.onnx")
    # each front end evaluated its own copy of the run before exporting
    assert run_evaluation.load_clinical(cli_run) is not None and run_evaluation.load_clinical(window_run) is not None
    assert {"created_utc", "evaluation_computed_utc"} <= set(cli) & set(window)
    # two classes: the suggested operating point is shown in Evaluate, but no export carries it until accepted
    assert run_evaluation.load_clinical(cli_run)["decision_source"] == "suggested"
    assert not RULE_KEYS & (set(cli) | set(window)) and cli["temperature"] == window["temperature"]
    assert ({k: v for k, v in cli.items() if k not in TIMESTAMP_KEYS}
            == {k: v for k, v in window.items() if k not in TIMESTAMP_KEYS})


def test_an_accepted_suggestion_is_exported_and_alike_from_cli_and_window(two_runs, tmp_path, capsys):
    from tl_desktop.workers.tasks import export_task, set_decision_task

    cli_run, window_run = two_runs
    suggestion = run_evaluation.load_clinical(cli_run)["suggestion"]
    assert suggestion == run_evaluation.load_clinical(window_run)["suggestion"]
    run_evaluation.set_decision(cli_run, positive_class=suggestion["positive_class"],
                                threshold=suggestion["decision_threshold"])
    set_decision_task(str(window_run), positive_class=suggestion["positive_class"],
                      threshold=suggestion["decision_threshold"], abstain_threshold=None, callback=None,
                      cancel=CancelToken())  # "Use this operating point" in Evaluate
    assert main(["export", str(cli_run), "--out", str(tmp_path / "cli.onnx")]) == 0
    printed = capsys.readouterr().out
    assert f"Decision rule inside: {suggestion['positive_class']} when p ≥ " in printed and "chosen by you on" in printed
    export_task(str(window_run), str(tmp_path / "window.onnx"), fp16=False, int8=False, callback=None,
                cancel=CancelToken())
    cli, window = _metadata(tmp_path / "cli.onnx"), _metadata(tmp_path / "window.onnx")
    assert TIMESTAMP_KEYS <= set(cli) and TIMESTAMP_KEYS <= set(window)
    assert all(key in cli for key in DECISION_KEYS), sorted(cli)
    assert cli["positive_class"] == suggestion["positive_class"]
    assert float(cli["decision_threshold"]) == suggestion["decision_threshold"]
    assert {k: cli[k] for k in DECISION_KEYS} == {k: window[k] for k in DECISION_KEYS}
    assert ({k: v for k, v in cli.items() if k not in TIMESTAMP_KEYS}
            == {k: v for k, v in window.items() if k not in TIMESTAMP_KEYS})


def test_a_three_class_run_is_exported_without_a_decision_rule_by_cli_and_window(tmp_path_factory, digits_dir,
                                                                                  tmp_path, capsys):
    from tl_desktop.workers.tasks import export_task

    source = trained_run(tmp_path_factory, digits_dir)
    cli_run, window_run = (_unevaluated_copy(source, tmp_path / name) for name in ("cli", "window"))
    assert main(["export", str(cli_run), "--out", str(tmp_path / "cli.onnx")]) == 0
    assert "No decision rule inside: the model answers the most probable class" in capsys.readouterr().out
    export_task(str(window_run), str(tmp_path / "window.onnx"), fp16=False, int8=False, callback=None,
                cancel=CancelToken())
    cli, window = _metadata(tmp_path / "cli.onnx"), _metadata(tmp_path / "window.onnx")
    for meta, run in ((cli, cli_run), (window, window_run)):
        stored = run_evaluation.load_clinical(run)
        assert stored["task"] == "multi-class" and stored["positive_class"] is None
        assert not RULE_KEYS & set(meta) and "abstain_threshold" not in meta
        assert float(meta["temperature"]) == stored["temperature"]
    assert ({k: v for k, v in cli.items() if k not in TIMESTAMP_KEYS}
            == {k: v for k, v in window.items() if k not in TIMESTAMP_KEYS})


def test_cli_export_carries_the_fitted_temperature_and_decision(two_runs, tmp_path):
    cli_run, _ = two_runs
    assert main(["export", str(cli_run), "--out", str(tmp_path / "again.onnx")]) == 0
    meta, stored = _metadata(tmp_path / "again.onnx"), run_evaluation.load_clinical(cli_run)
    assert float(meta["temperature"]) == stored["temperature"] != 1.0  # fitted on val, not the default
    assert stored["decision_source"] == "user"  # accepted above: the file carries it
    assert meta["positive_class"] == stored["positive_class"]
    assert float(meta["decision_threshold"]) == stored["decision_threshold"]


def test_a_stored_decision_is_kept_until_the_checkpoint_changes(two_runs):
    _, run = two_runs
    export_clinical = current_clinical(run)  # evaluated by the window export above, or now
    run_evaluation.set_decision(run, threshold=0.9)
    notes: list = []
    assert current_clinical(run, callback=notes.append)["decision_threshold"] == 0.9 and not notes
    best = run / "checkpoints" / "best.safetensors"
    earlier = run_evaluation.clinical_path(run).stat().st_mtime_ns - 2_000_000_000
    os.utime(best, ns=(earlier, earlier))  # a file time says nothing: the same bytes stay current
    assert current_clinical(run, callback=notes.append)["decision_threshold"] == 0.9 and not notes
    _retrain_best(run)  # as if the run had been continued and found a better epoch
    again = current_clinical(run, callback=notes.append)
    # the new checkpoint gets a new suggestion; the threshold chosen for the old one is not carried over
    assert again["threshold_rule"]["method"] == export_clinical["threshold_rule"]["method"] != "fixed"
    assert again["decision_source"] == "suggested"
    assert any(isinstance(n, Notice) and "best checkpoint changed" in n.message and "not carried over" in n.message
               for n in notes)
    assert again["checkpoint"]["sha256"] == runs.checkpoint_sha256(run, "best")
    assert current_clinical(run)["decision_threshold"] == again["decision_threshold"]  # current again


def _retrain_best(run) -> None:
    """Write the best checkpoint again with slightly other weights (what a continued run does)."""
    import torch

    from tl_desktop.core.models import run_model

    loaded = run_model.load_run(run)
    _, _, info = runs.load_checkpoint(run, "best")
    with torch.no_grad():
        next(loaded.model.parameters()).add_(1e-3)
    runs.save_checkpoint(run, "best", loaded.model, info)


def test_a_run_without_test_split_exports_without_a_decision_and_says_so(digits_dir, tmp_path, capsys):
    from tl_desktop.core.training.run import TrainConfig, train

    run = tmp_path / "run"
    train(TrainConfig(data=str(digits_dir), out=str(run), test_fraction=0.0, **{**TINY, "epochs": 1}))
    assert main(["export", str(run), "--out", str(tmp_path / "m.onnx"), "--json"]) == 0
    printed = capsys.readouterr()
    assert "m.onnx" in json.loads(printed.out)  # the note does not break the JSON on stdout
    assert "note: exported without a clinical evaluation" in printed.err and "no test images" in printed.err
    meta = _metadata(tmp_path / "m.onnx")
    assert meta["temperature"] == "1.0" and "decision_threshold" not in meta and "decision_rule" not in meta
    assert run_evaluation.load_clinical(run) is None


def test_a_wrong_output_name_is_refused_before_any_evaluation(two_runs, tmp_path):
    from tl_desktop.core.errors import ExportError

    fresh = _unevaluated_copy(two_runs[0], tmp_path / "run")
    with pytest.raises(ExportError, match="must end in .onnx"):
        export_run(fresh, tmp_path / "model.bin")
    assert run_evaluation.load_clinical(fresh) is None
