"""The Predict step with a multi-label model: the model line names the thresholds, each row lists the image's
findings at or above them (or "No finding") with the others below, the summary counts each finding, and Save CSV
writes ``findings`` and one ``p_<finding>`` column each. Rendered to $TL_SCREENSHOTS when set."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from PySide6.QtCore import Qt

from tests.core.export.test_multilabel_export import exported_findings
from tl_desktop.core.evaluation.run_evaluation import load_clinical
from tl_desktop.core.evaluation.stored_result import ClinicalResult
from tl_desktop.core.models import run_model
from tl_desktop.ui.predict_view import HEADERS, PredictView
from tl_desktop.ui.session import Session

ANSWER, OTHERS = HEADERS.index("Answer"), HEADERS.index("Other candidates")


def _cell(view: PredictView, row: int, col: int, role=Qt.ItemDataRole.DisplayRole):
    return view.results.data(view.results.index(row, col), role)


def test_a_multilabel_model_shows_findings_thresholds_and_writes_them(qtbot, tmp_path_factory, findings_run,
                                                                      tmp_path):
    model = exported_findings(tmp_path_factory, findings_run)[0]
    clinical = load_clinical(findings_run)
    root = run_model.load_run(findings_run).root
    files = [root / p for p in clinical["predictions"]["test"]["paths"]]
    view = PredictView(Session())
    qtbot.addWidget(view)
    view.resize(1200, 640)
    view.show()
    view.set_model(str(model))
    qtbot.waitUntil(lambda: view.model_worker is not None and not view.model_worker.is_running(), timeout=30_000)
    t = clinical["thresholds"]
    note = view.model_note.text()
    assert "multi-label, 2 findings" in note and f"seven ≥ {t['seven']:.2f}, zero ≥ {t['zero']:.2f}" in note
    assert not view.top_k.isVisible()
    view.predict([str(f) for f in files])
    qtbot.waitUntil(lambda: view.results.rowCount() == len(files), timeout=120_000)
    qtbot.waitUntil(lambda: not view.worker.is_running(), timeout=30_000)

    want = ClinicalResult(clinical).findings_text("test")
    rows = view.results.rows
    model_ = view.results
    assert model_.headerData(ANSWER, Qt.Orientation.Horizontal) == "Findings"
    assert model_.headerData(OTHERS, Qt.Orientation.Horizontal) == "Below threshold"
    assert view.table.isColumnHidden(HEADERS.index("Probability"))
    for i, (p, found) in enumerate(zip(rows, want, strict=True)):
        shown = _cell(view, i, ANSWER)
        if found:
            expected = ", ".join(f"{name} {prob:.2f}" for name, prob in p.findings)
            assert shown == expected and sorted(n for n, _ in p.findings) == found.split(";")
        else:
            assert shown == "No finding"
        below = _cell(view, i, OTHERS)
        assert all(name not in below for name in (found.split(";") if found else []))
        assert below.count(" (needs 0.") == 2 - len(p.findings)
    assert "at or above their threshold" in _cell(view, 0, ANSWER, Qt.ItemDataRole.ToolTipRole)
    n_seven = sum("seven" in f.split(";") for f in want)
    n_none = sum(f == "" for f in want)
    assert f"seven: {n_seven}" in view.summary.text() and f"no finding: {n_none}" in view.summary.text()
    if os.environ.get("TL_SCREENSHOTS"):
        view.grab().save(str(Path(os.environ["TL_SCREENSHOTS"]) / "predict-multilabel.png"))

    view.write_csv(tmp_path / "p.csv")
    with (tmp_path / "p.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0])[:5] == ["file", "prediction", "findings", "p_seven", "p_zero"]
    assert [r["findings"] for r in table] == want
    assert [r["prediction"] for r in table] == [f or "no finding" for f in want]
    assert [float(r["p_zero"]) for r in table] == [round(p.probabilities[1], 6) for p in rows]
    view.shutdown()


def test_a_single_label_model_after_a_multilabel_one_gets_the_usual_columns(qtbot, tmp_path_factory, findings_run,
                                                                          digits_dir):
    from tests.onnx_run import exported

    view = PredictView(Session())
    qtbot.addWidget(view)
    for path, multi in ((exported_findings(tmp_path_factory, findings_run)[0], True),
                        (exported(tmp_path_factory, digits_dir).path, False)):
        view.set_model(str(path))
        qtbot.waitUntil(lambda: view.model_worker is not None and not view.model_worker.is_running(),
                        timeout=30_000)
        assert ("multi-label" in view.model_note.text()) is multi and view.top_k.isVisibleTo(view) is not multi
    files = sorted(digits_dir.rglob("*.png"))[:3]
    view.predict([str(f) for f in files])
    qtbot.waitUntil(lambda: view.results.rowCount() == 3, timeout=120_000)
    qtbot.waitUntil(lambda: not view.worker.is_running(), timeout=30_000)
    assert view.results.headerData(ANSWER, Qt.Orientation.Horizontal) == "Answer"
    assert not view.table.isColumnHidden(HEADERS.index("Probability"))
    assert _cell(view, 0, ANSWER) == view.results.rows[0].top[0][0]
    view.shutdown()


def test_the_export_step_words_a_multilabel_file(tmp_path_factory, findings_run):
    """The Export step's row and text of a multi-label file: its findings agreement, not a missing top-1, and
    its thresholds, not a temperature or a single-label rule."""
    import json

    from tl_desktop.ui.export_view import _row, decision_text

    model = exported_findings(tmp_path_factory, findings_run)[0]
    figures = json.loads(model.with_name("findings.verification.json").read_text())
    row = _row(model, figures)
    assert row[3] == f"100.0 % of {figures['n_images']} images" and "same findings ≥ 100 %" in row[4]
    assert row[5] == "✔ verified"
    text = decision_text(figures["metadata"])
    t = load_clinical(findings_run)["thresholds"]
    assert f"seven ≥ {t['seven']:.2f}, zero ≥ {t['zero']:.2f}" in text and "validation split" in text
    assert "temperature" not in text and "No decision rule" not in text
