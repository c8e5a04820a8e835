"""The report's audit folder lists the review decisions a run applied (``review_decisions.csv``)."""

from __future__ import annotations

import csv
import json
import shutil

from tests.evaluation_run import two_digit_run
from tl_desktop.cli import main

REVIEW = {"excluded": [{"path": "digit_3/3_001.png", "reason": "near-duplicate", "of": "=HYPERLINK(\"x\")"}],
          "relabelled": [{"path": "digit_8/8_002.png", "from": "digit_8", "to": "-digit_3"}],
          "together": [["digit_3/3_004.png", "digit_8/8_004.png"]],
          "moved": [{"path": "digit_8/8_004.png", "from": "val", "to": "test"}],
          "counts": {"excluded": 1, "relabelled": 1, "together_groups": 1, "together_files": 2, "not_found": 0,
                     "moved": 1}}


def _run_with_review(tmp_path_factory, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(two_digit_run(tmp_path_factory), run, ignore=shutil.ignore_patterns("report"))
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "review": REVIEW}))
    return run


def test_review_decisions_csv_lists_every_decision_with_safe_cells(tmp_path_factory, tmp_path):
    run = _run_with_review(tmp_path_factory, tmp_path)
    out = tmp_path / "report"
    assert main(["report", str(run), "--out", str(out)]) == 0
    rows = list(csv.reader((out / "audit" / "review_decisions.csv").read_text().splitlines()))
    assert rows[0] == ["decision", "file", "reason", "other_file", "given_label", "new_label", "group"]
    assert rows[1] == ["excluded", "digit_3/3_001.png", "near-duplicate", "'=HYPERLINK(\"x\")", "", "", ""]
    assert rows[2] == ["relabelled", "digit_8/8_002.png", "label error", "", "digit_8", "'-digit_3", ""]
    assert rows[3:] == [["kept together", "digit_3/3_004.png", "", "", "", "", "1"],
                        ["kept together", "digit_8/8_004.png", "", "", "", "", "1"],
                        ["moved", "digit_8/8_004.png", "from val to test, with its group", "", "", "", ""]]
    assert "review_decisions.csv" in (out / "audit" / "SHA256SUMS").read_text()
    split = json.loads((out / "audit" / "split.json").read_text())
    assert split["review_decisions"] == REVIEW["counts"]


def test_hidden_file_names_hide_the_reviewed_files_too(tmp_path_factory, tmp_path):
    run = _run_with_review(tmp_path_factory, tmp_path)
    out = tmp_path / "report"
    assert main(["report", str(run), "--out", str(out), "--hide-file-names"]) == 0
    text = (out / "audit" / "review_decisions.csv").read_text()
    assert "3_001.png" not in text and "8_004.png" not in text and text.count("sha256:") == 6


def test_a_run_without_decisions_has_no_review_file(tmp_path_factory, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(two_digit_run(tmp_path_factory), run, ignore=shutil.ignore_patterns("report"))
    out = tmp_path / "report"
    assert main(["report", str(run), "--out", str(out)]) == 0
    assert not (out / "audit" / "review_decisions.csv").exists()
    assert json.loads((out / "audit" / "split.json").read_text())["review_decisions"] is None
