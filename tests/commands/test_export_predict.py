"""The CLI end to end on real images: train -> export -> predict, CSV/JSON output, one-line errors."""

from __future__ import annotations

import csv
import json

from tests.onnx_run import exported
from tl_desktop.cli import main


def test_train_export_predict_through_the_cli(digits_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(digits_dir), "--out", str(run), "--strategy", "linear-probe", "--epochs", "2",
                 "--lr", "0.02", "--image-size", "32", "--batch-size", "16", "--workers", "0"]) == 0
    capsys.readouterr()
    model = tmp_path / "out" / "digits.onnx"
    assert main(["export", str(run), "--out", str(model)]) == 0
    printed = capsys.readouterr().out
    assert "digits.onnx: fp32" in printed and "max |p_onnx - p_torch|" in printed and "top-1 agreement 1.000" in printed
    figures = json.loads((tmp_path / "out" / "digits.verification.json").read_text())
    assert figures["max_abs_diff"] <= 1e-4
    table = tmp_path / "predictions.csv"
    assert main(["predict", str(model), str(digits_dir / "digit_2"), str(tmp_path / "nope.png"),
                 "--top-k", "2", "--csv", str(table)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 31 and "nope.png\terror:" in lines[-1]
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["path", "decision", "top1", "p_top1", "top2", "p_top2", "unfamiliar", "unfamiliarity",
                             "error"]
    assert all(r["decision"] == r["top1"] for r in rows[:-1]) and rows[-1]["decision"] == ""
    assert len(rows) == 31 and rows[-1]["error"] and not rows[0]["error"]
    correct = sum(r["top1"] == "digit_2" for r in rows[:-1])
    assert correct >= 20, f"only {correct}/30 training-set digits of class 2 recognised"


def test_predict_json_lines(tmp_path_factory, digits_dir, capsys):
    model = exported(tmp_path_factory, digits_dir).path
    assert main(["predict", str(model), str(digits_dir / "digit_0"), "--json", "--top-k", "9"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 30 and all(r["error"] is None and len(r["top"]) == 3 for r in records)
    assert abs(sum(t["probability"] for t in records[0]["top"]) - 1) < 1e-5


def test_truncated_model_is_one_line_exit_2(tmp_path_factory, digits_dir, tmp_path, capsys):
    model = exported(tmp_path_factory, digits_dir).path
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(model.read_bytes()[:100_000])
    assert main(["predict", str(cut), str(digits_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a readable ONNX model" in err


def test_export_of_a_non_run_folder_is_one_line_exit_2(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a run folder" in err
