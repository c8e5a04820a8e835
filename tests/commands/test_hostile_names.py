"""File names of any bytes: scanned, trained on, exported and predicted with the real name kept."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import write_digits_folder
from tl_desktop.core.fsutil import read_json

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, TL_DESKTOP_HOME=str(home), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "tl_desktop", *args], capture_output=True, cwd=cwd, env=env,
                          timeout=600)


def test_a_file_name_that_is_not_utf8_goes_through_scan_train_export_and_predict(tmp_path):
    root = write_digits_folder(tmp_path / "d", classes=(0, 1), per_class=12, size=32)
    src = sorted((root / "digit_0").glob("*.png"))[0]
    odd = os.fsencode(root / "digit_0") + b"/caf\xe9_\xff.png"  # Latin-1 bytes, as an old Windows share gives
    shutil.copy(src, odd)
    from PIL import Image

    with Image.open(src) as im:  # make it a distinct image so it is not an identical-file pair
        im.rotate(90).save(odd.decode("utf-8", "surrogateescape"), format="PNG")
    home, cwd = tmp_path / "home", tmp_path

    scan = _cli("scan", "d", home=home, cwd=cwd)
    assert scan.returncode == 0, scan.stderr
    assert b"25 usable images" in scan.stdout and "caf\ufffd_\ufffd.png".encode() not in scan.stderr

    train = _cli("train", "d", "--out", "run", "--epochs", "1", "--image-size", "32", "--strategy",
                 "linear-probe", "--val-split", "0.25", "--test-split", "0.25", home=home, cwd=cwd)
    assert train.returncode == 0, train.stderr[-2000:]
    manifest = read_json(tmp_path / "run" / "manifest.json")
    names = [f["path"] for f in manifest["files"] if "caf" in f["path"]]
    assert len(names) == 1 and os.fsencode(Path(manifest["root"]) / names[0]) == odd  # the real bytes

    assert _cli("export", "run", "--out", "m.onnx", home=home, cwd=cwd).returncode == 0
    predict = _cli("predict", "m.onnx", "d/digit_0", "--csv", "out.csv", home=home, cwd=cwd)
    assert predict.returncode == 0, predict.stderr[-2000:]
    assert b"Traceback" not in predict.stderr
    rows = (tmp_path / "out.csv").read_bytes().splitlines()
    assert sum(b"caf\xe9_\xff.png" in row for row in rows) == 1  # the CSV names the file by its own bytes
    assert len(rows) == 14  # header + 13 images
