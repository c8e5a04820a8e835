"""The Evaluate step's Subgroups tab: only non-identifying attributes offered, tables from the stored breakdown,
flagged rows marked, the project keeps the choice; the report's subgroup page shows the very same numbers."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.subgroup_run import subgroup_run
from tl_desktop.core.evaluation import run_evaluation
from tl_desktop.core.evaluation import subgroup_tables as tables
from tl_desktop.core.fsutil import atomic_write_json
from tl_desktop.core.project import project_file
from tl_desktop.ui.evaluate.view import EvaluateView
from tl_desktop.ui.session import Session

SHOT = Path("/tmp/subgroups-shots")


@pytest.fixture
def run(tmp_path_factory, tmp_path):
    return shutil.copytree(subgroup_run(tmp_path_factory), tmp_path / "run")


def _harder_for_women(run: Path) -> None:
    """The stored artefact with every test image of a woman answered wrongly (and every other rightly): a
    subgroup of 10+ images that is clearly worse, as a poorly transferring site would be."""
    import pydicom

    from tl_desktop.core import runs

    data = run_evaluation.load_clinical(run)
    preds, root = data["predictions"]["test"], runs.load_manifest(run)["root"]
    women = [str(pydicom.dcmread(f"{root}/{p}", stop_before_pixels=True).PatientSex) == "F" for p in preds["paths"]]
    assert sum(women) >= 10
    preds["logits"] = [[5.0 if (c == y) != w else -5.0 for c in range(2)]
                       for y, w in zip(preds["labels"], women, strict=True)]
    atomic_write_json(run_evaluation.clinical_path(run), data)


def _view(qtbot, run: Path, project=None) -> EvaluateView:
    session = Session()
    session.project = project
    view = EvaluateView(session)
    qtbot.addWidget(view)
    view.resize(1180, 800)
    view.show()
    session.select_run(str(run))
    qtbot.waitUntil(lambda: view.clinical is not None, timeout=60_000)
    view.tabs.setCurrentWidget(view.subgroups)
    qtbot.waitUntil(lambda: bool(view.subgroups.boxes), timeout=30_000)
    return view


def _shown(view) -> dict[str, list[list[str]]]:
    return {name: [[t.item(r, c).text() for c in range(t.columnCount())] for r in range(t.rowCount())]
            for name, t in view.subgroups.tables.items()}


def test_the_tab_offers_only_non_identifying_attributes_and_shows_the_stored_figures(qtbot, run, tmp_path):
    _harder_for_women(run)
    project = project_file.create(tmp_path / "project")
    view = _view(qtbot, run, project)
    panel = view.subgroups
    assert set(panel.boxes) == {"site", "PatientSex", "PatientAge", "Manufacturer"}
    assert "mrn: identifies" in panel.refused.text() and "PatientID" not in panel.refused.text()
    for name in ("site", "PatientSex"):
        panel.boxes[name].setChecked(True)
    panel.show_button.click()
    qtbot.waitUntil(lambda: set(panel.tables) == {"site", "PatientSex"}, timeout=30_000)
    qtbot.waitUntil(lambda: not view.busy() and not any(w.is_running() for w in panel.workers.values()))
    block = run_evaluation.load_clinical(run)["subgroups"]
    assert view.clinical.data["subgroups"] == block  # the window's artefact is the stored one
    shown = _shown(view)
    for name in shown:
        assert shown[name] == [row["cells"] for row in tables.table_rows(block, name)]
    women = next(r for r in shown["PatientSex"] if r[0].endswith("F"))
    assert women[0] == "⚠ F" and "worse than the rest" in women[-1]
    table = panel.tables["PatientSex"]
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "⚠ F")
    assert table.item(row, 0).background().color().name() == "#fbe3e1"
    assert "flagged" in panel.decision.text() and "do not overlap" in panel.rule.text()
    assert project.subgroups == ["site", "PatientSex"]
    SHOT.mkdir(exist_ok=True)
    view.grab().save(str(SHOT / "evaluate-subgroups.png"))
    _the_report_shows_the_same_numbers(run, tmp_path / "report", shown)
    view.shutdown()


def _the_report_shows_the_same_numbers(run: Path, out: Path, shown: dict[str, list[list[str]]]) -> None:
    """report.html's subgroup tables hold exactly the window's cells; audit/subgroups.json is the stored block."""
    from tl_desktop.report import write_report

    write_report(run, out, heatmaps=False)
    page = (out / "report.html").read_text(encoding="utf-8")
    section = page[page.index("<h2>Subgroups</h2>"):]
    for name, rows in shown.items():
        part = section[section.index(f"<h3>{name} "):]
        part = part[:part.index("</table>")]
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td>(.*?)</td>", part)]
        assert np.array(cells).reshape(len(rows), -1).tolist() == rows
    audit = json.loads((out / "audit" / "subgroups.json").read_text(encoding="utf-8"))
    stored = run_evaluation.load_clinical(run)["subgroups"]
    assert audit["figures"] == stored["figures"] and audit["rule"] == stored["rule"]
    assert audit["checkpoint"]["sha256"] == run_evaluation.load_clinical(run)["checkpoint"]["sha256"]
    _render_subgroup_page(out)


def _render_subgroup_page(report: Path) -> None:
    """The report page that starts with "Subgroups", laid out as the PDF prints it, saved to look at."""
    from PySide6.QtCore import QRectF, QSizeF
    from PySide6.QtGui import QColor, QFont, QImage, QPainter, QTextDocument

    width, height = 794, 1123
    doc = QTextDocument()
    doc.setDefaultFont(QFont("DejaVu Sans", 9))
    doc.setDocumentMargin(76)
    doc.setPageSize(QSizeF(width, height))
    doc.setHtml((report / "report.html").read_text(encoding="utf-8"))
    block = doc.begin()
    while block.isValid() and block.text() != "Subgroups":
        block = block.next()
    assert block.isValid()
    page = int(doc.documentLayout().blockBoundingRect(block).top() // height)
    image = QImage(int(width * 1.5), int(height * 1.5), QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.scale(1.5, 1.5)
    painter.translate(0, -page * height)
    doc.drawContents(painter, QRectF(0, page * height, width, height))
    painter.end()
    assert len({image.pixelColor(x, y).name() for x in range(0, image.width(), 37)
                for y in range(0, image.height(), 37)}) > 3  # text and tables, not a blank page
    image.save(str(SHOT / "report-subgroups.png"))


def test_the_projects_choice_is_computed_when_the_run_is_shown(qtbot, run, tmp_path):
    project = project_file.create(tmp_path / "project")
    project.subgroups = ["Manufacturer"]
    view = _view(qtbot, run, project)
    qtbot.waitUntil(lambda: set(view.subgroups.tables) == {"Manufacturer"}, timeout=30_000)
    qtbot.waitUntil(lambda: not any(w.is_running() for w in view.subgroups.workers.values()))
    assert view.subgroups.boxes["Manufacturer"].isChecked()
    assert run_evaluation.load_clinical(run)["subgroups"]["attributes"] == ["Manufacturer"]
    view.shutdown()
