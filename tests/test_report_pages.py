"""The report's pages: a section meant for a new page follows on where a page would otherwise hold only a few
leftover rows, and the report is titled with the project's name (the run ID second)."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.evaluation_run import two_digit_run
from tl_desktop.core.project import project_file as proj
from tl_desktop.report.document import document, page_break
from tl_desktop.report.pages import NEAR_EMPTY, pack, page_fills


def _rows(n: int, label: str) -> str:
    return f"<h2>{label}</h2><table border=1>" + "".join(f"<tr><td>{label} row {i}</td></tr>" for i in range(n)) + \
        "</table>"


def test_a_few_leftover_rows_share_their_page_with_the_next_section():
    long_section = _rows(45, "long")  # a page and a bit
    fills = page_fills(document("", [long_section]))
    assert len(fills) == 2 and fills[-1] < NEAR_EMPTY, "the fixture must leave a few rows on page 2"
    parts = [long_section, page_break(), _rows(20, "next"), page_break(), _rows(20, "third")]
    planned = page_fills(document("", parts))
    packed = page_fills(document("", pack(parts)))
    assert len(packed) < len(planned)
    assert all(fill >= NEAR_EMPTY for fill in packed[:-1]), packed


def test_a_section_that_fits_no_leftover_space_still_starts_its_own_page():
    parts = [_rows(30, "most of a page"), page_break(), _rows(34, "most of another")]
    assert pack(parts).count(page_break()) == 1


@pytest.fixture(scope="module")
def project_report(tmp_path_factory):
    from tl_desktop.report import write_report

    base = tmp_path_factory.mktemp("titled")
    project = proj.create(base / "project", "Chest digits")
    run = project.runs_dir / "run-20240101"
    shutil.copytree(two_digit_run(tmp_path_factory), run, ignore=shutil.ignore_patterns("report"))
    project.add_run(run)
    proj.save(project)
    return run, write_report(run, base / "report", heatmaps=False)


def test_the_report_is_titled_with_the_projects_name_then_the_run(project_report):
    run, result = project_report
    html = result.html.read_text(encoding="utf-8")
    assert re.search(r"<title>Chest digits: model report \(run run-20240101\)</title>", html)
    assert "<h1>Chest digits: model report</h1>" in html and "Run run-20240101." in html


def test_no_page_of_the_report_is_near_empty(project_report, monkeypatch, tmp_path):
    """As planned (a new page for each group of sections) this report leaves a near-empty page; packed, none."""
    import tl_desktop.report.pages as pages
    from tl_desktop.report import write_report

    run, result = project_report
    packed = page_fills(result.html.read_text(encoding="utf-8"))
    assert all(fill >= NEAR_EMPTY for fill in packed[:-1]), [round(f, 2) for f in packed]
    monkeypatch.setattr(pages, "pack", lambda parts, fills=None: [p for p in parts if p])
    planned = page_fills(write_report(run, tmp_path / "planned", heatmaps=False).html.read_text(encoding="utf-8"))
    assert any(fill < NEAR_EMPTY for fill in planned[:-1]) and len(packed) < len(planned)
