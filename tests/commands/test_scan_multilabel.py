"""``tl-desktop scan`` on multi-label CSVs (real digits composed by ``helpers.write_findings_csv``): the plain
summary lists images per finding and the scan's sentences on the findings, ``--json`` carries the task and the
multi-label summary, and ``--label-columns`` picks the 0/1 columns, refusing bad names in one line (exit 2)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import write_findings_csv
from tl_desktop import cli
from tl_desktop.core.data.scan import scan


@pytest.fixture(autouse=True)
def _only_scan(monkeypatch):
    """The dispatcher imports every command module; test scan even while others are being written."""
    monkeypatch.setattr(cli, "COMMANDS", {k: v for k, v in cli.COMMANDS.items() if k == "scan"})


@pytest.fixture(scope="module")
def separated(tmp_path_factory):
    return write_findings_csv(tmp_path_factory.mktemp("separated"), n=40)


@pytest.fixture(scope="module")
def columns(tmp_path_factory):
    return write_findings_csv(tmp_path_factory.mktemp("columns"), n=40, columns=True)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_lists_findings_and_the_multilabel_sentences(separated, capsys):
    code, out, err = _run(capsys, "scan", str(separated.parent), "--csv", str(separated), "--no-cache")
    assert code == 0 and err == ""
    report = scan(separated.parent, csv=separated, cache=False)
    assert "\nFindings (images per finding):\n  seven      20\n  zero       20\n" in out
    assert "Classes:" not in out
    for line in report.multilabel_lines():
        assert f"\n{line}\n" in out
    # 40 images: a quarter without a finding, a quarter with both (write_findings_csv's pattern)
    assert "Images without any finding: 10 of 40 (25%)." in out and "seven + zero: 10" in out


def test_json_carries_the_task_and_the_multilabel_summary(separated, capsys):
    code, out, _ = _run(capsys, "scan", str(separated), "--json", "--no-cache")
    doc = json.loads(out)
    assert code == 0 and doc["task"] == "multi-label" and doc["classes"] == ["seven", "zero"]
    assert doc["counts"] == {"seven": 20, "zero": 20}
    assert doc["multilabel"]["no_finding"] == 10 and doc["multilabel"]["co_occurrence"]["seven"] == {"zero": 10}
    both = [s for s in doc["samples"] if s["findings"] == ["seven", "zero"]]
    assert len(both) == 10 and all(s["label"] == "seven;zero" for s in both)


def test_label_columns_pick_the_findings(columns, capsys):
    code, out, _ = _run(capsys, "scan", str(columns.parent), "--csv", str(columns), "--json", "--no-cache")
    assert code == 0 and json.loads(out)["counts"] == {"seven": 20, "zero": 20}  # every 0/1 column, unasked
    code, out, _ = _run(capsys, "scan", str(columns.parent), "--csv", str(columns), "--label-columns", " zero ",
                        "--json", "--no-cache")
    doc = json.loads(out)
    assert code == 0 and doc["task"] == "multi-label" and doc["counts"] == {"zero": 20}
    assert doc["multilabel"]["no_finding"] == 20
    code, out, _ = _run(capsys, "scan", str(columns.parent), "--csv", str(columns), "--label-columns", "zero",
                        "--no-cache")
    assert code == 0 and "Multi-label: 1 finding read as one 0/1 column per label (zero)" in out


@pytest.mark.parametrize("value, message", [
    ("zero,nine", "findings.csv has no column 'nine' (its columns: path, group, seven, zero)"),
    ("zero,,seven", "--label-columns takes distinct column names separated by commas (got 'zero,,seven')"),
    ("zero,ZERO", "--label-columns takes distinct column names separated by commas (got 'zero,ZERO')"),
])
def test_bad_label_columns_are_one_line(columns, capsys, value, message):
    code, out, err = _run(capsys, "scan", str(columns.parent), "--csv", str(columns), "--label-columns", value)
    assert code == 2 and out == "" and err == f"tl-desktop scan: {message}\n"


def test_label_columns_need_a_csv(columns, capsys):
    code, _, err = _run(capsys, "scan", str(columns.parent), "--label-columns", "zero")
    assert code == 2 and err == "tl-desktop scan: --label-columns names columns of a CSV: give the CSV with --csv\n"
