"""Evaluate step on a real multi-label run (``findings_run``: digits 0 and 7 composed into one image): the findings
tabs replace the single-label ones, and every figure on them is the stored evaluation's (``ClinicalResult``)."""

from __future__ import annotations

import pytest

from tl_desktop.core.evaluation.multilabel import summary_lines
from tl_desktop.core.evaluation.run_evaluation import load_clinical
from tl_desktop.core.evaluation.stored_result import ClinicalResult
from tl_desktop.ui.evaluate.findings_panel import SUBGROUPS_NOTE
from tl_desktop.ui.evaluate.view import EvaluateView
from tl_desktop.ui.session import Session


@pytest.fixture
def view(qtbot, findings_run):
    session = Session()
    widget = EvaluateView(session)
    qtbot.addWidget(widget)
    widget.resize(1366, 768)
    widget.show()
    session.select_run(str(findings_run))
    qtbot.waitUntil(lambda: widget.clinical is not None and widget.metrics is not None, timeout=30_000)
    qtbot.waitUntil(lambda: not widget.busy(), timeout=10_000)
    yield widget
    widget.shutdown()


@pytest.fixture
def stored(findings_run):
    """The one artefact: the run's clinical.json read through ClinicalResult, as every reader does."""
    clinical = ClinicalResult(load_clinical(findings_run), findings_run)
    return clinical, clinical.summary()


def _row(table, r) -> list[str]:
    return [table.item(r, c).text() for c in range(table.columnCount())]


def _visible(view) -> list[str]:
    return [view.tabs.tabText(i) for i in range(view.tabs.count()) if view.tabs.isTabVisible(i)]


def _interval(f: dict) -> str:
    return f"{100 * f['value']:.1f}% ({100 * f['low']:.1f}–{100 * f['high']:.1f}%)"


def test_the_findings_tabs_replace_the_single_label_tabs(view):
    assert view.clinical.multilabel
    assert _visible(view) == ["Findings", "Mistakes and heatmaps", "Subgroups"]
    assert view.tabs.currentWidget() is view.findings.panel
    assert view.findings.subgroups_note.text() == SUBGROUPS_NOTE and "single-label runs only" in SUBGROUPS_NOTE
    assert view.run_label.text().startswith(f"Run: {view.clinical.run_dir.name} · evaluation of the best checkpoint")
    assert view.clinical.checkpoint_label() in view.run_label.text().replace("evaluation of the ", "")


def test_the_findings_table_is_the_stored_evaluation(view, stored):
    clinical, summary = stored
    table = view.findings.panel.table
    assert table.rowCount() == len(clinical.names) == 2
    for r, name in enumerate(clinical.names):
        entry, auc = summary["per_label"][name], summary["roc_auc"][name]
        assert entry["auc"]["auc"] == auc
        assert _row(table, r) == [
            name, str(entry["n_pos"]), str(entry["n_neg"]),
            f"{auc:.3f} ({entry['auc']['low']:.2f}–{entry['auc']['high']:.2f})",
            f"{entry['average_precision']:.3f}", f"{summary['thresholds'][name]:.3f}",
            _interval(entry["sensitivity"]), _interval(entry["specificity"])]
    y, _ = clinical.probs("test")  # the counts are the stored labels' own
    assert [int(y[:, j].sum()) for j in range(len(clinical.names))] == [int(_row(table, r)[1]) for r in range(2)]


def test_the_headline_and_lines_are_the_stored_test_figures(view, stored):
    clinical, summary = stored
    figures = clinical.data["multilabel"]
    assert view.figures["n"].text() == str(summary["n"])
    assert view.figures["accuracy"].text() == f"{100 * summary['subset_accuracy']:.1f} %"
    assert view.figures["auc"].text() == f"{summary['roc_auc']['macro']:.3f}"
    assert "exact match" in view.headline.captions["accuracy"].text()
    assert "Multi-label: 2 findings (seven, zero)" in view.headline.point.text()
    text = view.findings.panel.lines.text()
    for line in summary_lines(figures):
        assert line.replace("&", "&amp;") in text
    assert "chosen on the" in view.findings.panel.rule.text() and "validation images" in view.findings.panel.rule.text()


def test_every_finding_has_its_roc_curve_in_one_plot(view, stored):
    clinical, _ = stored
    panel = view.findings.panel
    labels = clinical.data["multilabel"]["labels"]
    assert panel.legend_texts == [f"{n}: AUC {labels[n]['auc']['auc']:.3f} (95% CI {labels[n]['auc']['low']:.3f}–"
                                  f"{labels[n]['auc']['high']:.3f})" for n in clinical.names]
    for curve, name in zip(panel._curves, clinical.names, strict=True):
        x, y = curve.getData()
        assert list(x) == labels[name]["roc"]["fpr"] and list(y) == labels[name]["roc"]["tpr"]


def test_mistakes_list_the_wrong_images_and_explain_a_finding(view, stored, qtbot):
    _, summary = stored
    mistakes = view.findings.mistakes
    wrong = summary["misclassified"]
    assert [_row(mistakes.table, r)[0] for r in range(mistakes.table.rowCount())] == [w["path"] for w in wrong]
    if not wrong:
        assert mistakes.note.text().startswith("Every finding decision is right")
        pytest.skip("this run made no wrong finding decision")
    first = wrong[0]
    cells = _row(mistakes.table, 0)
    assert cells[1] == (", ".join(first["true"]) or "no finding")
    assert cells[2] == (", ".join(f"{n} {100 * first['probabilities'][n]:.0f} %" for n in first["predicted"])
                        or "no finding")
    assert cells[3] == str(first["errors"]) and first["errors"] >= 1
    view.tabs.setCurrentWidget(mistakes)
    mistakes.table.selectRow(0)
    top = max(first["probabilities"], key=first["probabilities"].get)
    qtbot.waitUntil(lambda: "speaks for" in mistakes.heatmap.info.text(), timeout=60_000)
    info = mistakes.heatmap.info.text()
    assert f"speaks for <b>{top}</b>" in info and "true findings:" in info
    index = mistakes.heatmap.target.findData("zero")
    mistakes.heatmap.target.setCurrentIndex(index)  # another finding explained on request
    qtbot.waitUntil(lambda: "speaks for <b>zero</b>" in mistakes.heatmap.info.text(), timeout=60_000)
    qtbot.waitUntil(lambda: not (mistakes.heatmap.worker and mistakes.heatmap.worker.is_running()), timeout=10_000)


def test_a_single_label_run_afterwards_gets_its_own_tabs_back(view, qtbot, finished_run):
    view.session.select_run(str(finished_run))
    qtbot.waitUntil(lambda: view.clinical is not None and not view.clinical.multilabel, timeout=30_000)
    qtbot.waitUntil(lambda: not view.busy(), timeout=10_000)
    assert _visible(view) == ["Overview", "Curves and class of interest", "Calibration and “not sure”",
                              "Images and heatmaps", "Subgroups"]
    assert view.overview.table.rowCount() == 3 and view.findings.panel.table.rowCount() == 0
    assert view.figures["balanced"].text().endswith("%")
