"""Every CSV the app writes is safe to open in a spreadsheet, and the ones it reads back round-trip (issue 14)."""

from __future__ import annotations

import csv
import io

import pytest

from tl_desktop.core import runs
from tl_desktop.core.fsutil import csv_cell, csv_safe_cell, csv_text

HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "'=quoted",
           "'", "''"]


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_cells_get_an_apostrophe_and_read_back_exactly(text):
    safe = csv_safe_cell(text)
    assert safe == "'" + text
    assert csv_cell(safe) == text


@pytest.mark.parametrize("value", ["-0.5", "+3", "-1e-05", "12", "0.1250000", "nan", "-inf", "cat", "a=b", "", 0.5,
                                   -0.5, 3, None])
def test_numbers_and_plain_text_are_unchanged(value):
    assert csv_safe_cell(value) == value
    if isinstance(value, str):
        assert csv_cell(value) == value


def test_csv_text_quotes_by_rfc_4180_and_neutralises_every_cell():
    text = csv_text([["path", "label", "p"], ['a "b", c.png', "=1+1", -0.25], ["x\ny.png", "@me", "-0.5"]])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [["path", "label", "p"], ['a "b", c.png', "'=1+1", "-0.25"], ["x\ny.png", "'@me", "-0.5"]]


def test_test_predictions_with_formula_class_names_round_trip(tmp_path):
    names = ["=cmd", "-minus", "ok"]
    runs.write_predictions(tmp_path, ["=a.png", "b.png"], ["=cmd", "ok"], [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], names)
    raw = (tmp_path / runs.PREDICTIONS_FILE).read_text()
    assert not any(cell.startswith(("=", "-", "+", "@")) for row in csv.reader(io.StringIO(raw)) for cell in row)
    back = runs.read_predictions(tmp_path)
    assert back["class_names"] == names and back["paths"] == ["=a.png", "b.png"]
    assert back["true"] == ["=cmd", "ok"] and back["predicted"] == ["=cmd", "ok"]
    assert back["probs"] == [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]


def test_history_round_trips_with_negative_numbers(tmp_path):
    rows = [{"epoch": 0, "train_loss": -0.5, "train_acc": 0.25, "val_loss": 1.5, "val_acc": 0.5,
             "val_balanced_acc": 0.5, "lr": 1e-05, "seconds": 2.0, "images_per_s": 10.0}]
    runs.write_history(tmp_path, rows)
    assert "-0.5" in (tmp_path / "history.csv").read_text()
    assert runs.read_history(tmp_path) == [{k: float(v) for k, v in rows[0].items()}]


def test_predict_csv_neutralises_labels_and_paths():
    from types import SimpleNamespace

    from tl_desktop.commands.predict import csv_text as predict_csv

    p = SimpleNamespace(path="=evil.png", label="@risk", top=[("@risk", 0.75), ("-x", 0.25)], error=None)
    rows = list(csv.reader(io.StringIO(predict_csv([p], 2))))
    assert rows[1] == ["'=evil.png", "'@risk", "'@risk", "0.750000", "'-x", "0.250000", ""]
