"""A multi-label model through the window, as a user does it: a CSV of real digits composed into one image
(a 0 on the left is finding "zero", a 7 on the right "seven") opened in a new project, trained one epoch, its
findings evaluated, exported (verified) and run in the Predict step; every figure agrees with the run's one
evaluation artefact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import FINDINGS, write_findings_csv
from tl_desktop.core.evaluation.multilabel_run import findings_text
from tl_desktop.core.evaluation.run_evaluation import load_clinical
from tl_desktop.ui.main_window import MainWindow


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(warm_up=False)
    qtbot.addWidget(win)
    win.resize(1366, 768)
    win.show()
    yield win
    win.close()


def test_multilabel_flow_in_the_window(window, qtbot, tmp_path):
    csv = write_findings_csv(tmp_path / "images", n=80)
    data = window.views["data"]
    window.session.create(tmp_path / "project", "Findings")
    data.set_source(csv, "csv")
    qtbot.waitUntil(lambda: window.session.split is not None, timeout=60_000)
    assert window.session.report.is_multilabel and window.session.report.classes == list(FINDINGS)

    settings = window.session.project.settings
    settings.epochs, settings.strategy, settings.image_size, settings.batch_size = 2, "linear-probe", 32, 16
    settings.augmentation, settings.device, settings.lr = "none", "cpu", 2e-2
    train = window.views["train"]
    train.form.load(settings)
    window.show_step("train")
    with qtbot.waitSignal(train.run_ended, timeout=180_000):
        train.start_button.click()
    assert len(window.session.project.runs) == 1
    metrics_file = next((tmp_path / "project").rglob("metrics.json"))
    run_dir = metrics_file.parent
    metrics = json.loads(metrics_file.read_text())
    assert metrics["task"] == "multi-label" and set(metrics["roc_auc"]) == {*FINDINGS, "macro"}

    evaluate = window.views["evaluate"]
    window.show_step("evaluate")
    qtbot.waitUntil(lambda: evaluate.metrics is not None, timeout=60_000)
    clinical = load_clinical(run_dir)
    shown = evaluate.findings.panel.table
    rows = {shown.item(r, 0).text(): shown.item(r, 3).text() for r in range(shown.rowCount())}
    for name in FINDINGS:  # the Evaluate table's AUC is the artefact's, as metrics.json has it
        assert rows[name].startswith(f"{metrics['roc_auc'][name]:.3f}")
        assert clinical["multilabel"]["labels"][name]["auc"]["auc"] == pytest.approx(metrics["roc_auc"][name])

    export = window.views["export"]
    window.show_step("export")
    export.out.setText(str(tmp_path / "findings.onnx"))
    export.button.click()
    qtbot.waitUntil(lambda: export.result is not None, timeout=120_000)
    assert "verified" in export.table.item(0, 5).text()

    predict = window.views["predict"]
    window.show_step("predict")
    test_paths = clinical["predictions"]["test"]["paths"]
    predict.predict([str(csv.parent / p) for p in test_paths])
    qtbot.waitUntil(lambda: predict.results.rowCount() == len(test_paths), timeout=60_000)
    expected = dict(zip(test_paths, findings_text(clinical), strict=True))
    for row in predict.results.rows:  # the exported model finds what the evaluation says it finds
        name = next(p for p in test_paths if p.endswith(Path(row.path).name))
        assert ";".join(sorted(f for f, _ in row.findings)) == expected[name]
    # the report of the run, with its export: the findings table and the export's agreement on findings
    from tl_desktop.report import write_report

    result = write_report(run_dir, tmp_path / "report", onnx=[tmp_path / "findings.onnx"], heatmaps=False)
    html = result.html.read_text()
    assert "Same findings (share of images)" in html and "export again" not in html
    for name in FINDINGS:
        assert f"{metrics['roc_auc'][name]:.3f}" in html
