"""``tl-desktop scan`` and ``tl-desktop models`` through the real dispatcher in ``tl_desktop.cli``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import write_digits_folder, write_mixed_folder
from tl_desktop import cli

MINE = ("scan", "models")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _only_my_commands(monkeypatch):
    """The dispatcher imports every command module; test scan/models even while others are being written."""
    monkeypatch.setattr(cli, "COMMANDS", {k: v for k, v in cli.COMMANDS.items() if k in MINE})


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    return root, write_mixed_folder(root)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_accounts_for_every_file_and_hides_patient_names(mixed, capsys):
    root, expected = mixed
    code, out, err = _run(capsys, "scan", str(root), "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    listed = [s["path"] for s in doc["samples"]] + [s["path"] for s in doc["skipped"]]
    assert sorted(listed) == sorted(expected) and doc["files_seen"] == len(expected)
    assert doc["usable"] is True and doc["counts"] == {"cat": 6, "person": 4, "scan": 4}
    for name in ("CompressedSamples", "MR1", "CT1"):  # PatientName of pydicom's CT_small / MR_small
        assert name not in out


def test_human_summary(mixed, capsys):
    code, out, _ = _run(capsys, "scan", str(mixed[0]))
    assert code == 0
    assert "24 files, 14 usable images, 10 skipped" in out
    assert "cat/empty.png: empty file (0 bytes)" in out
    assert "scan/MR_small.dcm = scan/mr_export_without_extension" in out
    assert "\n1 group of identical images (1 of identical files).\n" in out
    assert "Warnings (2)" in out and "Ünïcødé" not in out  # usable files are counted, not listed


def test_subprocess_json_is_clean_stdout(mixed, tmp_path):
    code = ("import sys, tl_desktop.cli as c; c.COMMANDS = {k: v for k, v in c.COMMANDS.items() "
            f"if k in {MINE!r}}}; sys.exit(c.main(sys.argv[1:]))")
    env = {**os.environ, "TL_DESKTOP_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code, "scan", str(mixed[0]), "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["files_seen"] == 24 and proc.stderr == ""


@pytest.mark.parametrize(("make", "words"), [
    (lambda p: p / "does-not-exist", "folder not found"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no files found"),
    (lambda p: write_digits_folder(p / "one", classes=(4,), per_class=6), "only one class"),
])
def test_unusable_exits_2_with_one_line(tmp_path, capsys, make, words):
    code, _, err = _run(capsys, "scan", str(make(tmp_path)))
    assert code == 2 and words in err and err.count("\n") == 1 and err.startswith("tl-desktop scan: ")


def test_bad_csv_header_exits_2(tmp_path, capsys):
    (tmp_path / "labels.csv").write_text("filename,class\na.png,cat\n")
    code, out, err = _run(capsys, "scan", str(tmp_path), "--csv", "labels.csv")
    assert code == 2 and out == "" and "path,label[,group]" in err and err.count("\n") == 1


def test_max_pixels_option(digits_dir, capsys):
    code, out, err = _run(capsys, "scan", str(digits_dir), "--json", "--max-pixels", "500")
    assert code == 2 and "no usable images" in err
    assert all("too large" in s["reason"] for s in json.loads(out)["skipped"])


def test_models_table_and_json(capsys):
    code, out, _ = _run(capsys, "models")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["name", "params", "M", "input", "px", "ImageNet", "top-1", "offline"]
    lite0 = next(line for line in lines if line.startswith("tf_efficientnet_lite0 "))
    assert lite0.split()[1:] == ["4.7", "224", "74.8", "yes"]
    assert any(line.startswith("resnet18 ") and line.endswith("no") for line in lines)
    code, out, _ = _run(capsys, "models", "--json")
    doc = json.loads(out)
    assert code == 0 and doc[0]["name"] == "tf_efficientnet_lite0" and doc[0]["offline"] is True
