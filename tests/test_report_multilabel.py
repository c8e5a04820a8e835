"""The report of a real multi-label run (``findings_run``: digits 0 and 7 composed into one image), through the CLI:
a findings page with the Evaluate step's table and lines, every finding's ROC curve, the thresholds' rule, no
single-label pages, ``audit/findings.json``, and a model card and checklist that say "multi-label: 2 findings"."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from tl_desktop.cli import main
from tl_desktop.core.evaluation import multilabel_run
from tl_desktop.core.evaluation.multilabel import summary_lines
from tl_desktop.core.evaluation.run_evaluation import load_clinical
from tl_desktop.core.evaluation.stored_result import ClinicalResult


@pytest.fixture(scope="module")
def reported(findings_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("findings_report") / "report"
    assert main(["report", str(findings_run), "--out", str(out)]) == 0
    clinical = load_clinical(findings_run)
    return out, clinical, ClinicalResult(clinical).summary()


def _audit(out, name: str) -> dict:
    return json.loads((out / "audit" / name).read_text(encoding="utf-8"))


def _cells(html: str, heading: str) -> list[list[str]]:
    """The rows (cell texts, tags removed) of the first table after ``heading``."""
    part = html.split(heading, 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", part, flags=re.S)
    return [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, flags=re.S)]
            for r in rows]


def test_the_report_is_written_with_a_findings_page_and_no_single_label_pages(reported):
    out, clinical, summary = reported
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF") and (out / "report.pdf").stat().st_size > 10_000
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "multi-label: 2 findings (seven, zero)" in html
    for line in summary_lines(clinical["multilabel"]):
        assert line.replace("'", "&#x27;") in html
    assert multilabel_run.rule_text(clinical).replace("'", "&#x27;") in html
    for name in clinical["class_names"]:
        auc = summary["per_label"][name]["auc"]
        assert f"{auc['auc']:.3f} ({auc['low']:.2f}–{auc['high']:.2f})" in html
    for absent in ("confusion_argmax.png", "Most probable class", "Calibration and abstaining", "Per class (most",
                   "At threshold", "heatmap_0.png"):
        assert absent not in html, absent
    assert (out / "figures" / "roc.png").is_file() and "figures/roc.png" in html and "figures/pr.png" in html
    assert "Grad-CAM examples are not included" in html and "single-label runs only" in html


def test_the_findings_table_holds_the_evaluate_steps_cells(reported):
    out, clinical, summary = reported
    rows = _cells((out / "report.html").read_text(encoding="utf-8"), "Findings on the test images")
    evaluate = multilabel_run.table_rows(summary)  # the cells of the Evaluate step's findings table
    assert [r[0] for r in rows[1:]] == clinical["class_names"]
    for row, cells, name in zip(rows[1:], evaluate, clinical["class_names"], strict=True):
        entry = summary["per_label"][name]
        assert row[1] == f"{entry['n_pos']} / {entry['n_neg']}"
        assert row[2] == cells[3] == f"{summary['roc_auc'][name]:.3f} ({entry['auc']['low']:.2f}–" \
                                     f"{entry['auc']['high']:.2f})"
        assert row[3:] == cells[4:]
        assert row[4] == f"{clinical['thresholds'][name]:.3f}"


def test_the_audit_folder_has_the_findings_figures(reported):
    out, clinical, summary = reported
    found = _audit(out, "findings.json")
    assert found["findings"] == clinical["class_names"] and found["thresholds"] == clinical["thresholds"]
    assert found["checkpoint"] == clinical["checkpoint"]
    for name in clinical["class_names"]:
        stored = clinical["multilabel"]["labels"][name]
        assert found["test"]["labels"][name]["auc"] == stored["auc"] == summary["per_label"][name]["auc"]
        assert found["test"]["labels"][name]["sensitivity"] == stored["sensitivity"]
        assert "roc" not in found["test"]["labels"][name]
    assert found["test"]["subset_accuracy"] == summary["subset_accuracy"]
    sums = (out / "audit" / "SHA256SUMS").read_text()
    assert f"{hashlib.sha256((out / 'audit' / 'findings.json').read_bytes()).hexdigest()}  findings.json" in sums


def test_the_model_card_and_checklist_state_the_findings(reported):
    out, clinical, summary = reported
    card = _audit(out, "model_card.json")
    assert card["task"].startswith("multi-label: 2 findings")
    ev = card["evaluation"]
    assert ev["task"] == "multi-label" and ev["findings"] == clinical["class_names"]
    for name in clinical["class_names"]:
        assert ev["per_finding"][name]["auc"] == summary["per_label"][name]["auc"]
    assert ev["accuracy"]["k"] == round(summary["subset_accuracy"] * summary["n"])
    assert card["data"]["images"]["test"] == {n: summary["per_label"][n]["n_pos"] for n in clinical["class_names"]}
    assert card["data"]["source"] == "CSV list of files and labels"
    items = {i["id"]: i for i in _audit(out, "checklist.json")["items"]}
    assert items["DATA-2"]["evidence"].startswith("multi-label: 2 findings")
    assert items["EVAL-5"]["status"] == "done" and "one threshold per finding" in items["EVAL-5"]["evidence"]
    html = (out / "report.html").read_text(encoding="utf-8")
    card_part = html.split("<h2>Model card</h2>", 1)[1]
    for name in clinical["class_names"]:
        auc = summary["per_label"][name]["auc"]
        assert f"AUC of {name}</td><td>{auc['auc']:.3f} ({auc['low']:.2f}–{auc['high']:.2f})" in card_part


def test_the_findings_page_renders(reported):
    from tests.test_model_card_report import render_pages

    out, _, _ = reported
    pages = render_pages(out, ("Findings on the test images", "Discrimination of each finding", "Model card"))
    assert set(pages) == {"Findings on the test images", "Discrimination of each finding", "Model card"}
    for name, (_page, image) in pages.items():
        assert len({image.pixelColor(x, y).name() for x in range(0, image.width(), 37)
                    for y in range(0, image.height(), 37)}) > 3, name
    assert pages["Findings on the test images"][0] == 0  # page 1
