"""Sane limits with clear refusals (issue 14): each bad value or data set gives one line on stderr, exit code 2,
no traceback, and nothing written (no run folder, nothing new in the image folder)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import write_digits_folder
from tl_desktop import cli


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _refused(capsys, *argv: str) -> str:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.startswith(f"tl-desktop {argv[0]}: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err + out
    return err


@pytest.fixture(scope="module")
def tiny_classes(tmp_path_factory):
    """3 classes of 2 images: the split is 3 training / 0 validation / 3 test images."""
    return write_digits_folder(tmp_path_factory.mktemp("tiny") / "d", classes=(0, 1, 2), per_class=2)


@pytest.mark.parametrize("option, value, words", [
    ("--label-smoothing", "5", "label smoothing must be a number from 0 to 0.5 (got 5.0)"),
    ("--label-smoothing", "nan", "label smoothing must be a number from 0 to 0.5 (got nan)"),
    ("--lr", "nan", "learning rate must be a number"),
    ("--lr", "-1", "learning rate must be a number"),
    ("--epochs", "0", "epochs must be a whole number from 1 to 10,000 (got 0)"),
    ("--batch-size", "0", "batch size must be a whole number from 1 to 4,096"),
    ("--val-split", "nan", "validation fraction must be a number from 0 to 0.9 (got nan)"),
    ("--test-split", "inf", "test fraction must be a number from 0 to 0.9 (got inf)"),
    ("--patience", "-1", "patience (epochs) must be"),
    ("--workers", "-2", "data loader workers must be"),
    ("--image-size", "8", "image size (px) must be a whole number from 16 to 1,024 (got 8)"),
    ("--seed", "-1", "seed must be a whole number from 0 to 4,294,967,295"),
])
def test_train_refuses_values_outside_their_range(digits_dir, tmp_path, capsys, option, value, words):
    err = _refused(capsys, "train", str(digits_dir), "--out", str(tmp_path / "run"), option, value)
    assert words in err
    assert not (tmp_path / "run").exists()


def test_train_refuses_a_class_without_validation_images(tiny_classes, tmp_path, capsys):
    err = _refused(capsys, "train", str(tiny_classes), "--out", str(tmp_path / "run"), "--image-size", "32")
    assert "3 classes have too few images to split: 'digit_0' (1 training, 0 validation, 1 test)" in err
    assert "add images" in err
    assert not (tmp_path / "run").exists()


def test_train_refuses_more_classes_than_the_limit(tmp_path, capsys):
    rng = np.random.default_rng(1)
    data = tmp_path / "many"
    for i in range(1001):
        (data / f"c{i:04d}").mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(data / f"c{i:04d}" / "a.png")
    err = _refused(capsys, "train", str(data), "--out", str(tmp_path / "run"))
    assert "1,001 classes have usable images; at most 1,000 are supported" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [
    ["train", "--image-size", "32"], ["transfer-check", "--budget", "1"], ["compare-models", "--budget", "1"],
    ["label-budget"],
])
def test_an_output_folder_inside_the_image_folder_is_refused(tmp_path, capsys, command):
    data = write_digits_folder(tmp_path / "images", classes=(0, 1), per_class=4)
    before = _tree(data)
    err = _refused(capsys, command[0], str(data), "--out", str(data / "results"), *command[1:])
    assert "is inside the image folder" in err and "choose a folder outside it" in err
    assert _tree(data) == before


def test_a_relative_output_folder_inside_the_images_is_refused_too(tmp_path, capsys, monkeypatch):
    data = write_digits_folder(tmp_path / "images", classes=(0, 1), per_class=4)
    monkeypatch.chdir(data / "digit_0")
    before = _tree(data)
    err = _refused(capsys, "train", str(data), "--out", "run")
    assert "inside the image folder" in err
    assert _tree(data) == before


@pytest.mark.parametrize("argv, words", [
    (["transfer-check", "--budget", "0"], "epochs must be a whole number from 1 to 10,000 (got 0)"),
    (["transfer-check", "--probe-lr", "nan"], "learning rate must be a number"),
    (["compare-models", "--batch-size", "0"], "batch size must be"),
    (["label-budget", "--repeats", "0"], "--repeats must be a whole number from 1 to 100 (got 0)"),
    (["label-budget", "--image-size", "100000"], "image size (px) must be"),
])
def test_insight_commands_refuse_values_before_making_a_folder(digits_dir, tmp_path, capsys, argv, words):
    err = _refused(capsys, argv[0], str(digits_dir), "--out", str(tmp_path / "out"), *argv[1:])
    assert words in err
    assert not (tmp_path / "out").exists()


def test_the_csv_layout_may_write_next_to_its_csv(tmp_path):
    """A CSV lists its files, so a run folder beside it is never scanned: not refused."""
    from tl_desktop.core.config import DataSource, check_output_folder

    data = write_digits_folder(tmp_path / "images", classes=(0, 1), per_class=2)
    (data / "labels.csv").write_text("path,label\n")
    check_output_folder(data / "run", DataSource(data=str(data), csv="labels.csv"))
    check_output_folder(tmp_path / "run", DataSource(data=str(data)))
    assert os.listdir(tmp_path) == ["images"]
