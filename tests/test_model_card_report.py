"""The report's model card and reporting checklist, on the shared real run (digits 3 vs 8, tests/evaluation_run.py):
the card's figures are the evaluation's, checklist items tick from what the run recorded, the user's text is
escaped, and both JSON files are in the audit folder's SHA256SUMS."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.evaluation_run import two_digit_run
from tl_desktop.cli import main
from tl_desktop.core.project import project_file as proj
from tl_desktop.core.project.intended_use import IntendedUse

HOSTILE = IntendedUse(intended_use="<script>alert('x')</script> second reader & <b>triage</b>",
                      intended_users='=HYPERLINK("http://evil","click") radiologists',
                      out_of_scope="+cmd|' /C calc'!A0; children", limitations="Only <i>one</i> site.\nNo CT.")
CLI_CARD = {"intended_use": "Screening digits for an eight", "intended_users": "Postal clerks",
            "out_of_scope": "Letters", "limitations": ""}


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """The shared run inside a project whose model card holds hostile text; reported twice: through
    write_report (the window's way: the project's card) and through the CLI with --model-card and --positive."""
    from tl_desktop.report import write_report

    source = two_digit_run(tmp_path_factory)
    base = tmp_path_factory.mktemp("model_card")
    project = proj.create(base / "project")
    run = project.runs_dir / "run"
    shutil.copytree(source, run, ignore=shutil.ignore_patterns("report"))
    project.add_run(run)
    project.model_card = HOSTILE
    proj.save(project)
    window = write_report(run, base / "window", heatmaps=False)
    cli_card = base / "card.json"
    cli_card.write_text(json.dumps(CLI_CARD))
    assert main(["report", str(run), "--out", str(base / "cli"), "--model-card", str(cli_card), "--positive",
                 "digit_8", "--no-heatmaps"]) == 0
    return run, Path(window.pdf).parent, base / "cli"


def _json(out: Path, name: str) -> dict:
    return json.loads((out / "audit" / name).read_text(encoding="utf-8"))


def _items(out: Path) -> dict[str, dict]:
    return {i["id"]: i for i in _json(out, "checklist.json")["items"]}


def test_the_card_figures_are_the_evaluations(reported):
    from tl_desktop.core.evaluation.stored_result import class_figures, summary
    from tl_desktop.report.document import page_break, with_ci

    _, out, _ = reported
    card, clinical = _json(out, "model_card.json"), _json(out, "clinical.json")
    ev, figures = card["evaluation"], summary(clinical)
    right = sum(figures["confusion_matrix"][i][i] for i in range(2))
    assert (ev["accuracy"]["k"], ev["accuracy"]["n"]) == (right, figures["n"]) == (right, clinical["n"]["test"])
    assert ev["accuracy"]["value"] == pytest.approx(figures["accuracy"])
    assert ev["balanced_accuracy"] == pytest.approx(figures["balanced_accuracy"])
    assert ev["roc_auc_macro"] == pytest.approx(figures["roc_auc"]["macro"])
    assert ev["per_class"] == json.loads(json.dumps(class_figures(figures)))
    op = clinical["operating_point"]["test"]
    assert ev["decision"]["sensitivity"] == op["sensitivity"] and ev["decision"]["threshold"] == clinical["decision_threshold"]
    # the same strings on page 1 (the summary) and in the card
    html = (out / "report.html").read_text(encoding="utf-8")
    page1, card_page = html.split(page_break())[0], html[html.index(">Model card<"):]
    for shown in (with_ci(ev["accuracy"]), with_ci(op["sensitivity"]), with_ci(op["specificity"])):
        assert shown in page1 and shown in card_page
    # data and training from the run's manifest and config
    manifest = json.loads((reported[0] / "manifest.json").read_text())
    assert sum(sum(v.values()) for v in card["data"]["images"].values()) == len(manifest["files"])
    assert card["data"]["images"]["test"] == {"digit_3": 9, "digit_8": 9}
    assert card["training"]["model"] == "tf_efficientnet_lite0" and card["training"]["image_size"] == "64 x 64"
    assert card["subgroups"] is None and "No subgroup analysis was run" in card_page
    assert any(i["id"] == "no-subgroups" for i in card["limitations"])


def test_the_card_and_checklist_are_pages_of_the_report_and_files_of_the_audit(reported):
    _, out, _ = reported
    html = (out / "report.html").read_text(encoding="utf-8")
    assert ">Model card<" in html and ">Reporting checklist<" in html
    assert html.index(">Model card<") < html.index(">Reporting checklist<") < html.index(">Audit folder<")
    import re
    from html import unescape

    page = html[html.index(">Reporting checklist<"):html.index(">Audit folder<")]
    rows = [[unescape(re.sub("<[^>]+>", "", cell)).strip() for cell in re.findall("<td>(.*?)</td>", row)]
            for row in re.findall("<tr>(.*?)</tr>", page)[1:]]
    items = _json(out, "checklist.json")["items"]
    assert len(rows) == len(items) and all(len(r) == 4 for r in rows)  # one row of 4 cells per item
    for row, item in zip(rows, items, strict=True):  # id, topic, status and evidence each in its own column
        assert row[0] == item["id"].replace("-", "\u2011") and row[1] == item["topic"] and row[2].endswith(item["status"])
        assert row[3].startswith(item["evidence"])
    sums = dict(reversed(line.split("  ", 1)) for line in (out / "audit" / "SHA256SUMS").read_text().splitlines())
    for name in ("model_card.json", "checklist.json"):
        assert sums[name] == hashlib.sha256((out / "audit" / name).read_bytes()).hexdigest()
        assert f"<li>audit/{name}</li>" in html  # listed on the audit page


def test_the_users_text_comes_from_the_project_and_is_escaped(reported):
    _, out, _ = reported
    card = _json(out, "model_card.json")
    assert card["intended"] == {**HOSTILE.to_dict(), "filled_in": True}  # stored as typed
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "<b>triage</b>" not in html and "<i>one</i>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "Only &lt;i&gt;one&lt;/i&gt; site.<br>No CT." in html  # line breaks kept, tags not
    assert {"id": "user", "text": HOSTILE.limitations} in card["limitations"]
    for table in (out / "audit").rglob("*.csv"):  # the user's text goes to no spreadsheet file
        text = table.read_text(encoding="utf-8")
        assert "HYPERLINK" not in text and "calc" not in text, table.name


def test_the_cli_model_card_file_wins_over_the_project(reported):
    _, _, out = reported
    card = _json(out, "model_card.json")
    assert card["intended"] == {**CLI_CARD, "filled_in": True}
    assert [i for i in card["limitations"] if i["id"] == "user"] == []  # no limitations of the user's
    items = _items(out)
    assert items["EVAL-5"]["status"] == "done" and items["EVAL-5"]["what_to_add"] == ""  # --positive: the user's
    assert items["LIM-1"]["status"] == "partly"


def test_checklist_items_follow_what_the_run_recorded(reported):
    _, out, _ = reported
    items = _items(out)
    assert 20 <= len(items) <= 30
    assert {i["status"] for i in items.values()} <= {"done", "partly", "open"}
    for done in ("USE-1", "USE-2", "USE-3", "SPLIT-1", "SPLIT-3", "MODEL-1", "MODEL-2", "EVAL-1", "EVAL-2",
                 "EVAL-4", "SW-2", "SW-3"):
        assert items[done]["status"] == "done", done
    # this run: no patient grouping, 18 test images, suggested threshold, no review, no export, no heatmaps
    for still_open in ("SPLIT-2", "EVAL-3", "DATA-4", "SAFE-1", "SW-1", "EVAL-6", "EVAL-7", "EVAL-8", "EVAL-9"):
        assert items[still_open]["status"] == "open" and items[still_open]["what_to_add"], still_open
    assert items["EVAL-5"]["status"] == "partly" and "suggested" in items["EVAL-5"]["what_to_add"]
    assert "Group the split by patient" in items["SPLIT-2"]["what_to_add"]
    card = _json(out, "model_card.json")
    ids = [i["id"] for i in card["limitations"]]
    assert {"small-test", "small-test-class", "no-external-validation", "no-grouping", "no-unfamiliar-check",
            "suggested-threshold", "user"} <= set(ids)
    assert "class-imbalance" not in ids and "leakage" not in ids  # 42 and 42 training images; nothing crossed


@pytest.fixture(scope="module")
def run_data(reported):
    """The report's RunData of the run, to change one recorded fact at a time."""
    from tl_desktop.core import runs
    from tl_desktop.core.fsutil import read_json
    from tl_desktop.report import _figures
    from tl_desktop.report.sections import RunData

    run = reported[0]
    clinical = read_json(run / "clinical.json")
    return RunData(run, runs.load_config(run), runs.load_manifest(run),
                   _figures(clinical, read_json(run / "metrics.json")), clinical, runs.read_history(run), {},
                   lambda rel: rel)


def _checked(d, intended: IntendedUse | None = None, onnx=()) -> tuple[dict, dict]:
    from tl_desktop.report import checklist, model_card

    card = model_card.build(d, intended, list(onnx))
    return card, {i.id: i for i in checklist.build(d, card)}


def test_a_grouped_split_ticks_independence_and_a_crossing_group_opens_leakage(run_data):
    manifest = json.loads(json.dumps(run_data.manifest))
    _, items = _checked(run_data)
    assert items["SPLIT-2"].status == "open" and items["SPLIT-3"].status == "done"
    manifest["split"]["group_by"] = "csv"
    manifest["split"]["groups"] = {f["path"]: f["path"] for f in manifest["files"]}  # one patient per image
    card, items = _checked(dataclasses.replace(run_data, manifest=manifest))
    assert items["SPLIT-2"].status == "done" and items["SPLIT-2"].what_to_add == ""
    assert "by the CSV column group" in items["SPLIT-2"].evidence
    assert card["evaluation"]["grouped_bootstrap"] is True
    train = next(f for f in manifest["files"] if f["subset"] == "train")
    test = next(f for f in manifest["files"] if f["subset"] == "test")
    manifest["split"]["groups"][test["path"]] = manifest["split"]["groups"][train["path"]]  # a patient in both
    test["sha256"] = train["sha256"]  # and the same file twice
    card, items = _checked(dataclasses.replace(run_data, manifest=manifest))
    assert items["SPLIT-3"].status == "open" and "1 identical files and 1 groups" in items["SPLIT-3"].evidence
    assert any(i["id"] == "leakage" for i in card["limitations"])


def test_items_tick_from_the_form_review_transfer_and_export(run_data, tmp_path):
    card, items = _checked(run_data)
    assert all(items[i].status == "open" for i in ("USE-1", "USE-2", "USE-3"))
    assert card["intended"]["filled_in"] is False
    from tl_desktop.report.model_card import section

    assert section(card).count("not filled in") == 3
    manifest = {**run_data.manifest, "review": {"counts": {"excluded": 2}}, "labels_in_app": {"files": 7}}
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"")
    (tmp_path / "m.verification.json").write_text(json.dumps({"unfamiliarity": {
        "threshold": 1.234, "validation_flagged": 0.05, "probes_flagged": 1.0}}))
    d = dataclasses.replace(run_data, manifest=manifest, transfer={"verdict": "neutral"}, heatmaps=[{}],
                            onnx=[{"file": "m.onnx", "passed": True}])
    card, items = _checked(d, IntendedUse(intended_use="a", intended_users="b", out_of_scope="c",
                                          limitations="d"), [onnx])
    for done in ("USE-1", "USE-2", "USE-3", "DATA-4", "EVAL-6", "EVAL-9", "SAFE-1", "SW-1", "LIM-1"):
        assert items[done].status == "done", done
    assert "1.234" in items["SAFE-1"].evidence and "7 images labelled in the app" in items["DATA-3"].evidence
    assert any(i["id"] == "unfamiliar-threshold" and "1.234" in i["text"] for i in card["limitations"])
    assert not any(i["id"] == "no-unfamiliar-check" for i in card["limitations"])


def test_subgroup_figures_in_the_artefact_tick_the_subgroup_item(run_data):
    """In the shape core/evaluation/subgroups.attach stores; the card keeps the summary, not the per-image values."""
    rows = [{"value": "F", "n": 9, "accuracy": {"value": 0.5, "low": 0.2, "high": 0.8}, "flagged": True,
             "flags": ["sensitivity"], "rest": {}}, {"value": "M", "n": 9, "accuracy": {"value": 1.0}, "flagged": False,
                                                    "flags": []}]
    block = {"attributes": ["PatientSex"], "values": {"PatientSex": ["F"] * 9 + ["M"] * 9}, "decision": "rule",
             "rule": "worse beyond the interval", "figures": {"PatientSex": rows}}
    card, items = _checked(dataclasses.replace(run_data, clinical={**run_data.clinical, "subgroups": block}))
    assert items["EVAL-7"].status == "done" and "by PatientSex, 1 flagged" in items["EVAL-7"].evidence
    assert card["subgroups"]["figures"]["PatientSex"][0] == {k: rows[0][k] for k in ("value", "n", "accuracy",
                                                                                      "flagged", "flags")}
    assert "values" not in card["subgroups"]
    assert {"id": "subgroup-flagged", "text": "Worse in a subgroup than in the other test images, beyond the "
            "interval: PatientSex = F (sensitivity)."} in card["limitations"]
    from tl_desktop.report.model_card import section

    assert "2 subgroups, <span class='warn'>1 flagged" in section(card)


def test_report_pages_render(reported):
    """The model card and checklist pages laid out as in the PDF (``render_pages``; docs/model-card.md shows
    them): each starts a page of its own and is drawn."""
    _, out, _ = reported
    pages = render_pages(out, ("Model card", "Reporting checklist", "Audit folder"))
    assert set(pages) == {"Model card", "Reporting checklist", "Audit folder"}
    for name, (_page, image) in pages.items():
        assert not image.isNull() and image.pixelColor(10, 10).name() == "#ffffff", name
        assert len({image.pixelColor(x, y).name() for x in range(0, image.width(), 37)
                    for y in range(0, image.height(), 37)}) > 3, name  # text and tables, not a blank page
    assert pages["Model card"][0] < pages["Reporting checklist"][0] < pages["Audit folder"][0]
    if folder := os.environ.get("TL_SCREENSHOTS"):  # docs/screenshots/model-card.png and checklist.png
        pages["Model card"][1].save(str(Path(folder) / "model-card.png"))
        pages["Reporting checklist"][1].save(str(Path(folder) / "checklist.png"))


def render_pages(report: Path, headings: tuple[str, ...], scale: float = 1.5) -> dict:
    """Heading -> (page number, QImage of that A4 page) for each heading of report.html, laid out as
    ``report._pdf`` prints it (QTextDocument, 96 px per inch, 2 cm margins)."""
    from PySide6.QtCore import QRectF, QSizeF, QUrl
    from PySide6.QtGui import QColor, QFont, QImage, QPainter, QTextDocument

    from tl_desktop.report.figures import ensure_gui

    ensure_gui()
    width, height = 794, 1123
    doc = QTextDocument()
    doc.setDefaultFont(QFont("DejaVu Sans", 9))
    for png in (report / "figures").glob("*.png"):
        doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(f"figures/{png.name}"), QImage(str(png)))
    doc.setDocumentMargin(76)
    doc.setPageSize(QSizeF(width, height))
    doc.setHtml((report / "report.html").read_text(encoding="utf-8"))
    out, block = {}, doc.begin()
    while block.isValid():
        if block.text() in headings and block.text() not in out:
            page = int(doc.documentLayout().blockBoundingRect(block).top() // height)
            image = QImage(int(width * scale), int(height * scale), QImage.Format.Format_RGB32)
            image.fill(QColor("white"))
            painter = QPainter(image)
            painter.scale(scale, scale)
            painter.translate(0, -page * height)
            doc.drawContents(painter, QRectF(0, page * height, width, height))
            painter.end()
            out[block.text()] = (page, image)
        block = block.next()
    return out
