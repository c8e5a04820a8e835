"""``predict`` marks images unlike the training images (text, --json, CSV); ``export --unfamiliar not-sure``."""

from __future__ import annotations

import csv
import json
import shutil

import onnx

from tests.core.export.test_unfamiliar import _edited, foreign_images, held_out_digits
from tests.onnx_run import exported, trained_run
from tl_desktop.cli import main


def test_json_rows_carry_unfamiliar_and_its_score(tmp_path_factory, digits_dir, tmp_path, capsys):
    model = exported(tmp_path_factory, digits_dir).path
    held = held_out_digits(tmp_path / "held")
    foreign = foreign_images(tmp_path / "foreign")
    assert main(["predict", str(model), str(held), str(tmp_path / "foreign"), "--json"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert len(rows) == 120 + len(foreign["photos"]) + len(foreign["noise"])
    assert all(isinstance(r["unfamiliar"], bool) and isinstance(r["unfamiliarity"], float) for r in rows)
    digits = [r for r in rows if "/held/" in r["path"]]
    others = [r for r in rows if "/foreign/" in r["path"]]
    assert sum(r["unfamiliar"] for r in digits) <= 0.25 * len(digits)
    assert sum(r["unfamiliar"] for r in others) >= 0.9 * len(others)
    unlike = sum(r["unfamiliar"] for r in rows)
    assert f"{unlike} of {len(rows)} images are unlike the model's training images" in captured.err
    assert "marked unfamiliar" in captured.err and captured.err.count("\n") == 1


def test_text_lines_and_csv_mark_unfamiliar_rows(tmp_path_factory, digits_dir, tmp_path, capsys):
    model = exported(tmp_path_factory, digits_dir).path
    noise = foreign_images(tmp_path / "foreign")["noise"][:3]
    digit = sorted((digits_dir / "digit_0").glob("*.png"))[0]
    table = tmp_path / "out.csv"
    assert main(["predict", str(model), str(digit), *map(str, noise), "--top-k", "1", "--csv", str(table)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(line.endswith(")") and "\tunfamiliar: unlike the training images (score " in line
               for line in lines[1:])
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["path", "decision", "top1", "p_top1", "unfamiliar", "unfamiliarity", "error"]
    assert [r["unfamiliar"] for r in rows[1:]] == ["yes"] * 3 and float(rows[1]["unfamiliarity"]) > 0
    assert ("unfamiliar: unlike" in lines[0]) == (rows[0]["unfamiliar"] == "yes")


def test_an_old_model_gives_null_and_keeps_the_old_csv(tmp_path_factory, digits_dir, tmp_path, capsys):
    model = exported(tmp_path_factory, digits_dir).path
    keys = {k: None for k in ("unfamiliar_threshold", "unfamiliar_action", "feature_dim", "unfamiliar_reference")}
    old = _edited(model, tmp_path / "old.onnx", drop_outputs=("features", "unfamiliarity"), **keys)
    table = tmp_path / "old.csv"
    assert main(["predict", str(old), str(digits_dir / "digit_2"), "--json", "--csv", str(table)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and all(r["unfamiliar"] is None and r["unfamiliarity"] is None for r in rows)
    assert "unfamiliar" not in table.read_text().splitlines()[0]


def test_tampered_threshold_exits_2_in_one_line(tmp_path_factory, digits_dir, tmp_path, capsys):
    bad = _edited(exported(tmp_path_factory, digits_dir).path, tmp_path / "bad.onnx", unfamiliar_threshold="nan")
    assert main(["predict", str(bad), str(digits_dir / "digit_2")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.onnx" in err and "unfamiliar_threshold" in err


def test_export_option_not_sure_is_stored_and_abstains(tmp_path_factory, digits_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run(tmp_path_factory, digits_dir), run)
    model = tmp_path / "abstain.onnx"
    assert main(["export", str(run), "--out", str(model), "--unfamiliar", "not-sure"]) == 0
    printed = capsys.readouterr().out
    assert 'Images unlike the training images (unfamiliarity above' in printed and 'answered "not sure"' in printed
    meta = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert meta["unfamiliar_action"] == "not sure"
    noise = foreign_images(tmp_path / "foreign")["noise"][:4]
    assert main(["predict", str(model), *map(str, noise), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(r["decision"] == "not sure" for r in rows if r["unfamiliar"]) and any(r["unfamiliar"] for r in rows)
