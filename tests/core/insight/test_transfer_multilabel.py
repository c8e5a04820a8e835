"""The transfer check on a multi-label set (real digits composed: a 0 on the left is finding "zero", a 7 on the
right "seven"; ``helpers.write_findings_csv``), through the real ``tl-desktop transfer-check`` command: every arm
is judged by its mean AUC over findings, the pixel baseline is a logistic regression per finding, and the
verdict's sentence speaks of the mean AUC, not of accuracy. Tiny: 80 images of 32 px, 2 epochs per network."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import write_findings_csv
from tl_desktop.cli import main
from tl_desktop.core import runs
from tl_desktop.core.config import DataSource
from tl_desktop.core.errors import TransferError
from tl_desktop.core.fsutil import read_json
from tl_desktop.core.insight import transfer_multilabel as tml
from tl_desktop.core.insight.label_budget import label_budget_curve

NETWORKS = ("linear-probe", "fine-tune", "scratch")


@pytest.fixture(scope="module")
def findings(tmp_path_factory) -> Path:
    return write_findings_csv(tmp_path_factory.mktemp("findings"), n=80)


@pytest.fixture(scope="module")
def check(tmp_path_factory, findings):
    """The command's printed table and its transfer.json (one user home for the module)."""
    out = tmp_path_factory.mktemp("check") / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TL_DESKTOP_HOME", str(tmp_path_factory.mktemp("transfer_home")))
        printed = io.StringIO()
        with redirect_stdout(printed):
            code = main(["transfer-check", str(findings.parent), "--csv", str(findings), "--group-by", "csv",
                         "--model", "tf_efficientnet_lite0", "--image-size", "32", "--budget", "2",
                         "--batch-size", "16", "--workers", "0", "--probe-lr", "0.02", "--seed", "3",
                         "--device", "cpu", "--out", str(out)])
    assert code == 0, printed.getvalue()
    return printed.getvalue(), read_json(out / "transfer.json"), out


def test_every_arm_is_judged_by_its_mean_auc_over_findings(check, findings):
    printed, report, out = check
    assert report["task"] == "multi-label" and report["metric"] == "mean AUC over findings"
    assert report["classes"] == ["seven", "zero"] and set(report["arms"]) == {*NETWORKS, "thumbnail"}
    for name, arm in report["arms"].items():
        auc = arm["test_macro_auc"]
        assert 0 <= auc["low"] <= auc["value"] <= auc["high"] <= 1, name
        assert 0 <= arm["val_macro_auc"] <= 1
    for name in NETWORKS:  # the figure is the run's own: metrics.json's mean AUC of the same test images
        metrics = read_json(out / name / "metrics.json")
        assert report["arms"][name]["test_macro_auc"]["value"] == pytest.approx(metrics["roc_auc"]["macro"])
        assert runs.load_config(out / name).task == "multi-label"
    # the pixel baseline sees each digit in its own half of the frame: a logistic regression per finding is
    # close to perfect, so transfer cannot be called a clear help here
    assert report["arms"]["thumbnail"]["test_macro_auc"]["value"] >= 0.9
    assert report["verdict"] in ("neutral", "negative")
    # the compared pair: each side's best on the validation mean AUC, their test difference
    arms = report["arms"]
    assert report["best_transfer"] == max(("linear-probe", "fine-tune"), key=lambda a: arms[a]["val_macro_auc"])
    assert report["best_no_transfer"] == max(("scratch", "thumbnail"), key=lambda a: arms[a]["val_macro_auc"])
    d = report["difference"]
    assert d["value"] == pytest.approx(arms[report["best_transfer"]]["test_macro_auc"]["value"]
                                       - arms[report["best_no_transfer"]]["test_macro_auc"]["value"])
    assert d["low"] <= d["value"] <= d["high"]


def test_the_answer_speaks_of_the_mean_auc(check):
    printed, report, out = check
    text = (out / "transfer.txt").read_text()
    assert report["summary"] + "\n" == text
    lines = text.splitlines()
    assert lines[1].startswith("1. Pretrained features alone (linear probe): test mean AUC over findings 0.")
    assert lines[3].startswith("3. Final test mean AUC over findings: ") and "balanced accuracy" not in lines[3]
    assert "logistic regression per finding on 32x32 thumbnails" in lines[3]
    assert "of the mean AUC over findings (95% CI" in lines[4] and "points" not in lines[4]
    assert "0.02 of the mean AUC over findings" in report["rule"]
    assert "test mean AUC [95% CI]" in printed and "test bal. acc" not in printed
    thumb = next(line for line in printed.splitlines() if line.startswith("thumbnail "))
    assert f"{report['arms']['thumbnail']['test_macro_auc']['value']:5.3f}" in thumb


def test_mean_auc_statistics_on_known_answers():
    rng = np.random.default_rng(0)
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 10)
    perfect = y * 0.8 + 0.1
    coin = rng.random(y.shape)
    assert tml.macro_auc(y, perfect) == 1.0
    scores = tml.bootstrap_scores(y, perfect, n_boot=200, seed=0)
    assert scores["macro_auc"] == {"value": 1.0, "low": 1.0, "high": 1.0}
    assert scores["accuracy"]["value"] == 1.0 and scores["balanced_accuracy"]["value"] == 1.0
    chance = tml.bootstrap_scores(y, coin, n_boot=400, seed=0)["macro_auc"]
    assert chance["low"] < 0.5 + 0.15 and chance["high"] > 0.5 - 0.15 and chance["low"] < chance["high"]
    diff = tml.paired_difference(y, perfect, coin, n_boot=400, seed=0)
    assert diff["value"] == pytest.approx(1.0 - tml.macro_auc(y, coin)) and diff["low"] > 0.2
    # a finding absent from every image has no AUC: the mean runs over the others
    absent = np.c_[y, np.zeros(len(y), int)]
    assert tml.macro_auc(absent, np.c_[perfect, coin[:, 0]]) == 1.0
    with pytest.raises(TransferError, match="no finding has test images both with and without it"):
        tml.macro_auc(np.ones((5, 2), int), rng.random((5, 2)))
    # patients with several images widen the interval (cluster bootstrap over whole patients)
    noisy = np.clip(y + rng.normal(0, 0.6, y.shape), 0, 1)
    y5, p5, groups = np.repeat(y, 5, axis=0), np.repeat(noisy, 5, axis=0), np.repeat(np.arange(len(y)), 5)
    width = [(s["high"] - s["low"]) for s in (tml.bootstrap_scores(y5, p5, n_boot=300, seed=0)["macro_auc"],
                                              tml.bootstrap_scores(y5, p5, n_boot=300, seed=0,
                                                                   groups=groups)["macro_auc"])]
    assert width[1] > 1.5 * width[0]


def test_label_budget_refuses_a_multilabel_set_in_one_line(findings):
    with pytest.raises(TransferError) as caught:
        label_budget_curve(DataSource(data=str(findings.parent), csv=str(findings)), model="tf_efficientnet_lite0")
    assert str(caught.value) == ("the label-budget curve supports single-label sets only (one class per image); "
                                 "these images are a multi-label set (several findings per image)")
    assert json.dumps(str(caught.value)).count("\\n") == 0


def test_transfer_window_shows_the_mean_auc_of_a_multilabel_check(check, qtbot):
    import os

    from tl_desktop.ui.transfer.plots import MULTILABEL_TITLE, LearningCurves
    from tl_desktop.ui.transfer.results import MULTILABEL_SCORE_COLUMN, VerdictPanel

    _, report, out = check
    panel = VerdictPanel()
    qtbot.addWidget(panel)
    panel.resize(1100, 600)
    panel.show_report(report, out)
    if folder := os.environ.get("TL_SCREENSHOTS"):
        panel.grab().save(os.path.join(folder, "transfer_multilabel.png"))
    assert panel.table.horizontalHeaderItem(2).text() == MULTILABEL_SCORE_COLUMN
    text = panel.difference.text()
    assert "of the test mean AUC over findings" in text and "2 findings" in text and "balanced" not in text
    row = [panel.table.item(r, 0).text() for r in range(panel.table.rowCount())].index("Pixel classifier")
    value = report["arms"]["thumbnail"]["test_macro_auc"]["value"]
    assert panel.table.item(row, 2).text().startswith(f"{value:.2f}")
    assert "logistic regression per finding" in panel.table.item(row, 0).toolTip()
    curves = LearningCurves()
    qtbot.addWidget(curves)
    curves.set_multilabel(True)
    assert curves.plot.getPlotItem().titleLabel.text == MULTILABEL_TITLE


def test_audit_runs_to_the_end_and_skips_only_the_label_check(tmp_path):
    from tl_desktop.core.insight.audit import audit
    from tl_desktop.core.insight.label_issues import MULTILABEL_NOT_CHECKED

    csv = write_findings_csv(tmp_path, n=40)
    copy = tmp_path / "images" / "img_000_copy.png"
    copy.write_bytes((tmp_path / "images" / "img_004.png").read_bytes())  # img_004: no finding, like img_000
    csv.write_text(csv.read_text() + "images/img_000_copy.png,,patient900\n")
    report = audit(DataSource(data=str(tmp_path), csv=str(csv), group_by="csv", seed=1))
    assert report.images == 41 and report.label_issues == []
    assert report.label_method == MULTILABEL_NOT_CHECKED
    assert "single-label sets only" in report.label_method and "\n" not in report.label_method
    # the rest of the audit ran: the planted copy is found as a duplicate of its original
    pairs = {frozenset((p.a, p.b)) for p in report.near_duplicates}
    assert frozenset(("images/img_004.png", "images/img_000_copy.png")) in pairs
    assert {"near_duplicates", "label_issues", "total"} <= set(report.seconds)
