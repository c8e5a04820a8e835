"""A multi-label run through export, verification, the predictor and the CLI, on the real composed digits of the
session's ``findings_run`` (a 0 on the left = "zero", a 7 on the right = "seven").

The run is exported once per session through ``tl-desktop export`` (``exported_findings``, shared with the
Predict step's test); every check compares with the run's own model or its stored ``clinical.json``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from tl_desktop.cli import main
from tl_desktop.core.errors import PredictorError
from tl_desktop.core.evaluation import multilabel_run
from tl_desktop.core.evaluation.multilabel import sigmoid
from tl_desktop.core.evaluation.run_evaluation import load_clinical
from tl_desktop.core.evaluation.stored_result import ClinicalResult
from tl_desktop.core.export import verify
from tl_desktop.core.export.predictor import NO_FINDING, OnnxPredictor
from tl_desktop.core.models import run_model

_EXPORTED: dict[str, tuple[Path, str]] = {}


def exported_findings(tmp_path_factory, run: Path) -> tuple[Path, str]:
    """(model path, what ``tl-desktop export --fp16 --int8`` printed) of the multi-label run, made once.

    The int8 limits are lifted so this tiny model's int8 file is kept and its figures can be read (as
    ``tests/onnx_run.exported`` does for the single-label run); fp32 and fp16 meet the real limits.
    """
    key = str(run)
    if key not in _EXPORTED:
        out = tmp_path_factory.getbasetemp() / "findings-export" / "findings.onnx"
        printed = io.StringIO()
        with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
            patch.setitem(verify.TOLERANCES, "int8", {"max_abs_diff": 1.0, "top1_agreement": 0.0})
            patch.setitem(verify.FINDINGS_AGREEMENT, "int8", 0.0)
            patch.setitem(verify.UNFAMILIAR_TOLERANCES, "int8", {"max_rel_diff": 1.0, "flag_agreement": 0.0})
            assert main(["export", str(run), "--out", str(out), "--fp16", "--int8"]) == 0
        _EXPORTED[key] = (out, printed.getvalue())
    return _EXPORTED[key]


@pytest.fixture(scope="module")
def model(tmp_path_factory, findings_run) -> Path:
    return exported_findings(tmp_path_factory, findings_run)[0]


@pytest.fixture(scope="module")
def clinical(model, findings_run) -> dict:
    return load_clinical(findings_run)


def _meta(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def _test_files(run: Path, clinical: dict) -> list[Path]:
    root = run_model.load_run(run).root
    return [root / p for p in clinical["predictions"]["test"]["paths"]]


# --- the file ------------------------------------------------------------------------------------------

def test_metadata_carries_the_task_and_the_evaluated_thresholds(model, clinical):
    meta = _meta(model)
    assert clinical["task"] == "multi-label" and meta["task"] == "multi-label"
    assert json.loads(meta["thresholds"]) == clinical["thresholds"]
    assert json.loads(meta["class_names"]) == clinical["class_names"] == ["seven", "zero"]
    assert meta["evaluation_checkpoint_sha256"] == clinical["checkpoint"]["sha256"]
    assert "validation" in meta["threshold_rule"] and "sigmoid(logits)" in meta["outputs"]
    for single_label in ("temperature", "positive_class", "decision_threshold", "abstain_threshold", "decision_rule"):
        assert single_label not in meta
    for variant in ("fp16", "int8"):
        assert _meta(model.with_name(f"findings.{variant}.onnx"))["thresholds"] == meta["thresholds"]


def test_probabilities_are_the_sigmoid_of_the_runs_own_logits(model, findings_run, clinical):
    """ONNX on the test images (app preprocessing) against PyTorch sigmoid(logits) of the run's model."""
    import torch

    from tl_desktop.core.data.decode import load_image
    from tl_desktop.core.models.catalog import eval_transform

    loaded = run_model.load_run(findings_run)
    images = [load_image(p) for p in _test_files(findings_run, clinical)]
    transform = eval_transform(loaded.data_config)
    with torch.inference_mode():
        want = torch.sigmoid(loaded.model(torch.stack([transform(im) for im in images]))).numpy()
    predictor = OnnxPredictor(model)
    got = predictor.run(np.stack([predictor.preprocessing(im) for im in images]))
    assert got.shape == (clinical["n"]["test"], 2)
    assert np.abs(got - want).max() < 1e-4
    stored = sigmoid(np.asarray(clinical["predictions"]["test"]["logits"]))
    assert np.abs(got - stored).max() < 1e-4
    assert np.abs(got.sum(1) - 1).max() > 0.05  # independent probabilities, not a softmax


def test_predictor_gives_the_evaluations_findings_for_every_test_image(model, findings_run, clinical):
    predictions = OnnxPredictor(model).predict(_test_files(findings_run, clinical))
    want = ClinicalResult(clinical).findings_text("test")
    assert want == multilabel_run.findings_text(clinical)
    assert [p.findings_text for p in predictions] == want
    assert {"", "seven", "zero"} & set(want) and any(";" in w for w in want)  # the fixture has every kind
    for p in predictions:
        probs = dict(zip(clinical["class_names"], p.probabilities, strict=True))
        assert [name for name, _ in p.findings] == sorted(
            (n for n, v in probs.items() if v >= clinical["thresholds"][n]), key=lambda n: -probs[n])
        assert p.label == (p.findings_text or NO_FINDING) and p.to_dict()["findings"] == [
            {"label": n, "probability": v} for n, v in p.findings]


def test_verification_judges_findings_not_top1(model, clinical):
    figures = json.loads(model.with_name("findings.verification.json").read_text())
    assert figures["task"] == "multi-label" and "top1_agreement" not in figures and figures["passed"]
    assert figures["findings_agreement"] == 1.0 and figures["max_abs_diff"] <= 1e-4
    assert figures["tolerance"] == {"max_abs_diff": 1e-4, "findings_agreement": 1.0}
    fp16 = json.loads(model.with_name("findings.fp16.verification.json").read_text())
    assert fp16["findings_agreement"] >= verify.FINDINGS_AGREEMENT["fp16"] and verify.within_tolerance(fp16)
    split = figures["test_accuracy"]
    assert split["task"] == "multi-label" and split["subset"] == "test" and split["n_images"] == clinical["n"]["test"]
    y, p = multilabel_run.arrays(clinical["predictions"]["test"], 2)
    called = p >= np.array([clinical["thresholds"][n] for n in clinical["class_names"]])
    assert split["fp32"]["accuracy"] == pytest.approx(clinical["multilabel"]["subset_accuracy"])
    assert split["fp32"]["per_finding"] == pytest.approx(
        {n: float((called[:, j] == y[:, j]).mean()) for j, n in enumerate(clinical["class_names"])})
    assert set(split) >= {"fp16", "int8"} and split["fp32"]["findings_agreement_with_fp32"] == 1.0


def test_a_flipped_finding_counts_against_agreement_unless_it_sits_on_its_threshold():
    cut = np.array([0.5, 0.3])
    reference = np.array([[0.9, 0.1], [0.5, 0.2], [0.2, 0.6]])
    on_threshold = reference.copy()
    on_threshold[1, 0] = 0.5 - 1e-6  # PyTorch is exactly on the threshold: rounding may put it either side
    assert verify.compare(reference, on_threshold, cut) == {
        "max_abs_diff": pytest.approx(1e-6), "findings_agreement": 1.0, "borderline": 1}
    flipped = reference.copy()
    flipped[2, 1] = 0.29  # a clear finding lost
    assert verify.compare(reference, flipped, cut)["findings_agreement"] == pytest.approx(2 / 3)
    figures = {"precision": "fp32", "task": "multi-label", "max_abs_diff": 1e-6, "findings_agreement": 2 / 3}
    assert not verify.within_tolerance(figures) and verify.within_tolerance({**figures, "findings_agreement": 1.0})


# --- files from outside -----------------------------------------------------------------------------------

def _edited(src: Path, dst: Path, **meta: str | None) -> Path:
    model = onnx.load(str(src))
    values = {**{p.key: p.value for p in model.metadata_props}, **meta}
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {k: v for k, v in values.items() if v is not None})
    onnx.save(model, str(dst))
    return dst


@pytest.mark.parametrize(("change", "words"), [
    ({"thresholds": json.dumps({"seven": 1.5, "zero": 0.5})}, "threshold of 'seven' is 1.5, not a number in 0..1"),
    ({"thresholds": json.dumps({"seven": 0.5, "zero": float("nan")})}, "threshold of 'zero' is nan"),
    ({"thresholds": json.dumps({"seven": 0.5})}, "one threshold per class name"),
    ({"thresholds": "[0.5, 0.5]"}, "one threshold per class name"),
    ({"thresholds": None}, "no thresholds"),
    ({"positive_class": "zero", "decision_threshold": "0.4"}, "not positive_class, decision_threshold"),
    ({"task": "multi-class"}, "task='multi-class' is neither"),
    ({"task": None}, "thresholds belong to a multi-label model"),
])
def test_a_tampered_multilabel_file_is_refused_in_one_line(model, tmp_path, change, words):
    bad = _edited(model, tmp_path / "bad.onnx", **change)
    with pytest.raises(PredictorError) as caught:
        OnnxPredictor(bad)
    message = str(caught.value)
    assert words in message and message.startswith("bad.onnx: ") and "\n" not in message


def test_cli_refuses_a_tampered_threshold_with_one_line(model, findings_run, clinical, tmp_path, capsys):
    bad = _edited(model, tmp_path / "bad.onnx", thresholds=json.dumps({"seven": 1.5, "zero": 0.5}))
    assert main(["predict", str(bad), str(_test_files(findings_run, clinical)[0])]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.onnx" in err and "threshold" in err


# --- the command line -------------------------------------------------------------------------------------

def test_cli_export_prints_findings_agreement_and_thresholds(tmp_path_factory, findings_run, clinical):
    printed = exported_findings(tmp_path_factory, findings_run)[1]
    assert "findings.onnx: fp32" in printed and "same findings 1.000 (limit 1.0)" in printed
    assert "top-1" not in printed and "exact-match accuracy" in printed and "right per finding: seven" in printed
    t = clinical["thresholds"]
    assert f"seven ≥ {t['seven']:.2f}, zero ≥ {t['zero']:.2f}" in printed and "Multi-label model" in printed


def test_cli_predict_prints_each_images_findings(model, findings_run, clinical, tmp_path, capsys):
    files = _test_files(findings_run, clinical)
    table = tmp_path / "findings.csv"
    assert main(["predict", str(model), *map(str, files), "--csv", str(table)]) == 0
    captured = capsys.readouterr()
    assert "multi-label model" in captured.err
    lines = captured.out.strip().splitlines()
    want = ClinicalResult(clinical).findings_text("test")
    assert len(lines) == len(files)
    for line, path, found in zip(lines, files, want, strict=True):
        shown = line.split("\t")[1]
        names = [] if shown == "no finding" else [part.rsplit(" ", 1)[0] for part in shown.split(", ")]
        assert line.startswith(f"{path}\t") and ";".join(sorted(names)) == found
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["path", "decision", "findings", "p_seven", "p_zero", "unfamiliar", "unfamiliarity",
                             "error"]
    assert [r["findings"] for r in rows] == want
    stored = sigmoid(np.asarray(clinical["predictions"]["test"]["logits"]))
    got = np.array([[float(r["p_seven"]), float(r["p_zero"])] for r in rows])
    assert np.abs(got - stored).max() < 1e-4


def test_cli_predict_json_lists_findings_and_every_probability(model, findings_run, clinical, capsys):
    files = _test_files(findings_run, clinical)
    assert main(["predict", str(model), *map(str, files), "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    want = ClinicalResult(clinical).findings_text("test")
    assert [";".join(sorted(f["label"] for f in r["findings"])) for r in records] == want
    assert all(set(r["probabilities"]) == {"seven", "zero"} for r in records)
    for r in records:
        assert all(f["probability"] == r["probabilities"][f["label"]] for f in r["findings"])
