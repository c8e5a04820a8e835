"""Multi-label training through the CLI: every strategy trains sigmoid outputs with binary cross-entropy, and
``metrics.json`` holds per-finding AUCs that agree with the run's stored evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score, hamming_loss, roc_auc_score

from tests.helpers import FINDINGS, write_findings_csv
from tl_desktop import cli
from tl_desktop.core import runs
from tl_desktop.core.evaluation.run_evaluation import load_clinical

TINY = ["--epochs", "1", "--image-size", "32", "--batch-size", "16", "--workers", "0", "--patience", "0"]


def test_metrics_json_holds_per_finding_aucs_of_the_stored_evaluation(findings_run):
    metrics = json.loads((findings_run / "metrics.json").read_text())
    clinical = load_clinical(findings_run)
    config = runs.load_config(findings_run)
    assert config.task == "multi-label" and config.class_names == list(FINDINGS)
    test = clinical["predictions"]["test"]
    y = np.asarray(test["labels"])
    p = 1 / (1 + np.exp(-np.asarray(test["logits"])))
    thresholds = np.array([clinical["thresholds"][name] for name in FINDINGS])
    for j, name in enumerate(FINDINGS):
        assert metrics["roc_auc"][name] == pytest.approx(roc_auc_score(y[:, j], p[:, j]), abs=1e-9)
    called = (p >= thresholds).astype(int)
    assert metrics["hamming_loss"] == pytest.approx(hamming_loss(y, called))
    assert metrics["macro_f1"] == pytest.approx(f1_score(y, called, average="macro", zero_division=0))
    assert metrics["subset_accuracy"] == pytest.approx(float((called == y).all(1).mean()))
    assert metrics["roc_auc"]["macro"] > 0.8  # the 0 on the left and the 7 on the right are learnt
    manifest = runs.load_manifest(findings_run)
    test_rows = {f["path"]: f["findings"] for f in manifest["files"] if f["subset"] == "test"}
    assert {path: [n for n, on in zip(FINDINGS, row, strict=True) if on]
            for path, row in zip(test["paths"], y.tolist(), strict=True)} == test_rows
    written = runs.read_predictions(findings_run)
    assert written["predicted"] == [";".join(n for n, on in zip(FINDINGS, row, strict=True) if on) for row in called]


@pytest.mark.parametrize("strategy", ["fine-tune", "scratch"])
def test_network_strategies_train_on_zero_one_columns(tmp_path, capsys, strategy):
    csv = write_findings_csv(tmp_path, n=48, columns=True)
    out = tmp_path / "run"
    code = cli.main(["train", str(tmp_path), "--csv", str(csv), "--label-columns", "seven,zero", "--strategy",
                     strategy, "--out", str(out), "--group-by", "csv", *TINY])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "Exact match (all findings right)" in printed and "seven: AUC" in printed and "zero: AUC" in printed
    config = runs.load_config(out)
    assert config.task == "multi-label" and config.label_columns == ["seven", "zero"]
    assert config.strategy == strategy
    history = runs.read_history(out)
    assert len(history) == 1 and 0 <= history[0]["val_acc"] <= 1 and np.isfinite(history[0]["train_loss"])
    assert set(json.loads((out / "metrics.json").read_text())["roc_auc"]) == {"seven", "zero", "macro"}
    code = cli.main(["evaluate", str(out)])
    assert code == 0 and "Hamming loss" in capsys.readouterr().out


def test_rare_findings_weigh_more_and_label_errors_are_one_line(tmp_path, capsys):
    csv = write_findings_csv(tmp_path, n=48, columns=True)  # path,group,seven,zero
    rows = [line.split(",") for line in csv.read_text().splitlines()[1:]]
    for i, row in enumerate(rows):  # keep the 7 on one image in four that show it (6 of 24)
        row[2] = "1" if row[2] == "1" and i % 8 == 2 else "0"
    csv.write_text("path,group,seven,zero\n" + "".join(",".join(r) + "\n" for r in rows))
    code = cli.main(["train", str(csv), "--strategy", "linear-probe", "--out", str(tmp_path / "run"), *TINY])
    printed = capsys.readouterr().out
    assert code == 0
    assert "Rare findings weigh more in the loss: seven (" in printed
    code = cli.main(["train", str(csv), "--label-columns", "zero,zero", "--out", str(tmp_path / "r2"), *TINY])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "distinct column names" in err


def test_evaluate_on_other_images_uses_the_runs_thresholds(findings_run, tmp_path, capsys, digits_dir):
    other = write_findings_csv(tmp_path, n=24, seed=5)  # other noise and other handwritten digits
    code = cli.main(["evaluate", str(findings_run), str(other), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["task"] == "multi-label" and out["n"] == 24
    assert out["thresholds"] == load_clinical(findings_run)["thresholds"]
    assert set(out["roc_auc"]) == {"seven", "zero", "macro"} and out["roc_auc"]["macro"] > 0.7
    code = cli.main(["evaluate", str(findings_run), str(digits_dir)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "multi-label task" in err and "single-label set" in err
