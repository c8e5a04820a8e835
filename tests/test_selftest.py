"""``tl-desktop --self-test``: the real run in a subprocess (Qt never imported), and its failure reporting."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest

from tl_desktop import selftest


def test_self_test_passes_headless_and_never_imports_qt(tmp_path):
    env = {**os.environ, "TL_DESKTOP_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    env.pop("QT_QPA_PLATFORM", None)  # no Qt platform at all: the self-test must not need one
    # -X importtime lists every module the process imports (on stderr): proof that Qt stays out.
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "tl_desktop", "--self-test"],
                          capture_output=True, text=True, env=env, timeout=240)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-3000:]
    lines = out.strip().splitlines()
    assert lines[-1].startswith("PASS"), out
    for step in ("sample", "engine", "train", "export", "predict"):
        assert re.search(rf"^\[{step}\] .* \(\d+\.\d s\)$", out, re.M), f"no timed [{step}] line:\n{out}"
    assert re.search(r"max \|prob diff\| \d\.\d+e-\d\d", out), out
    accuracy = float(re.search(r"sample accuracy (\d\.\d+)", lines[-1]).group(1))
    assert accuracy >= selftest.MIN_ACCURACY
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" in imported and "onnxruntime" in imported
    assert not {m for m in imported if m.split(".")[0] in ("PySide6", "shiboken6", "pyqtgraph")}
    log = (tmp_path / "home" / "log" / "self-test.log").read_text(encoding="utf-8")
    assert log.strip().splitlines()[-1] == lines[-1]


def test_a_failed_check_prints_fail_and_returns_non_zero(monkeypatch, capsys):
    def broken(report, work):
        raise selftest.SelfTestFailure("predictor accuracy 0.200 on the sample is below 0.6")

    monkeypatch.setattr(selftest, "_run", broken)
    assert selftest.run_self_test() == 1
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "FAIL: predictor accuracy 0.200 on the sample is below 0.6")


def test_an_unexpected_error_is_one_fail_line_after_the_traceback(monkeypatch, capsys):
    def crash(report, work):
        raise RuntimeError("operator torchvision::nms does not exist\nmore detail")

    monkeypatch.setattr(selftest, "_run", crash)
    assert selftest.run_self_test() == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "FAIL: RuntimeError: operator torchvision::nms does not exist"
    assert any("Traceback" in line for line in lines)


@pytest.mark.parametrize("code", [0, 1])
def test_no_console_still_writes_the_log(monkeypatch, tmp_path, code):
    """A windowed frozen app has sys.stdout None: no crash, and the report lands in the log folder."""
    def run(report, work):
        if code:
            raise selftest.SelfTestFailure("boom")
        return "figures"

    monkeypatch.setattr(selftest, "_run", run)
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setenv("TL_DESKTOP_HOME", str(tmp_path))
    assert selftest.run_self_test() == code
    last = (tmp_path / "log" / "self-test.log").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert last.startswith("FAIL: boom" if code else "PASS")


def test_write_sample_makes_class_folders_of_small_pngs(tmp_path):
    from PIL import Image

    assert selftest.write_sample(tmp_path, classes=(3, 5), per_class=4, size=16) == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digit_3", "digit_5"]
    with Image.open(next((tmp_path / "digit_5").iterdir())) as image:
        assert image.size == (16, 16)


def test_report_survives_a_closed_stream(tmp_path):
    stream = io.StringIO()
    report = selftest._Report(tmp_path / "log.txt")
    report.streams.insert(0, stream)
    stream.close()
    report.line("still logged")
    report.close()
    assert (tmp_path / "log.txt").read_text(encoding="utf-8") == "still logged\n"
