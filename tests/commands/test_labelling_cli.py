"""``tl-desktop simulate-labelling`` and ``tl-desktop labels`` through the real dispatcher: the JSON shape,
the fixed held-out part, the CSV of a project's labels, and one-line refusals (exit 2)."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.helpers import write_digits_folder
from tl_desktop import cli
from tl_desktop.core.data.labels import Labels
from tl_desktop.core.data.scan import scan
from tl_desktop.core.project import project_file


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits_folder(tmp_path_factory.mktemp("digits"), classes=(0, 1, 2), per_class=20, size=24)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_is_a_list_of_labels_accuracy_seed(digits, capsys):
    code, out, err = _run(capsys, "simulate-labelling", str(digits), "--order", "uncertainty", "--budgets",
                          "6,12", "--seeds", "2", "--image-size", "32", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["labels"], r["seed"]) for r in rows] == [(6, 0), (12, 0), (6, 1), (12, 1)]
    assert all(set(r) == {"labels", "accuracy", "seed"} and 0 <= r["accuracy"] <= 1 for r in rows)
    assert max(r["accuracy"] for r in rows) > 0.5  # three real digit classes from 12 labels: well above chance


def test_the_table_names_the_held_out_part_and_the_ceiling(digits, capsys):
    code, out, err = _run(capsys, "simulate-labelling", str(digits), "--order", "random", "--budgets", "6",
                          "--seeds", "1", "--image-size", "32")
    assert code == 0, err
    assert "42 images to label, 18 held out for testing (3 classes)" in out
    assert "every image labelled (42):" in out


@pytest.mark.parametrize("argv, words", [
    (["--budgets", "10,x"], "--budgets must be whole numbers"),
    (["--budgets", "0"], "from 1 to"),
    (["--budgets", "500"], "more than the 42 images left to label"),
    (["--seeds", "0"], "--seeds"),
    (["--test-fraction", "0.95"], "--test-fraction"),
])
def test_bad_options_are_one_line_exit_2(digits, capsys, argv, words):
    code, out, err = _run(capsys, "simulate-labelling", str(digits), "--image-size", "32", *argv)
    assert code == 2 and err.count("\n") == 1 and words in err and "Traceback" not in err


def test_labels_writes_the_projects_labels_as_a_csv_the_scan_reads(digits, tmp_path, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in sorted(digits.rglob("*.png")):
        shutil.copy(path, flat / path.name)
    project = project_file.create(tmp_path / "p", name="bench")
    project.set_source(flat)
    project.labels = Labels(classes=["zero", "one"])
    project_file.save(project)
    code, out, err = _run(capsys, "labels", str(tmp_path / "p"), "--csv", str(tmp_path / "l.csv"))
    assert code == 2 and "no image is labelled yet" in err
    for sample in scan(flat, labels=project.labels).unlabelled[:10]:
        project.labels.label(sample.path, "zero" if sample.path.startswith("0_") else "one")
    project_file.save(project)
    code, out, err = _run(capsys, "labels", str(tmp_path / "p"), "--csv", str(tmp_path / "l.csv"), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["labelled"] == doc["rows"] == 10 and doc["unlabelled"] == 50
    again = scan(tmp_path, csv=tmp_path / "l.csv")
    assert sum(again.counts.values()) == 10 and again.counts == doc["counts"]
