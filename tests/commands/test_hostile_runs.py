"""Hostile run folders, project files, weights files and disks through the CLI: every probe ends in exactly one
line on stderr with the documented exit code, no traceback, and nothing else changed (issue 14).

The probes run ``cli.main`` in this process on copies of one tiny trained run (``tests.onnx_run``); the
concurrency probes hold the lock from a real second process.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.onnx_run import trained_run
from tl_desktop.cli import main
from tl_desktop.core import runlock
from tl_desktop.core.project import project_file

REPO = Path(__file__).resolve().parents[2]
TRAIN = ["--epochs", "1", "--image-size", "32", "--strategy", "linear-probe", "--batch-size", "16",
         "--workers", "0"]


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory, digits_dir) -> Path:
    return trained_run(tmp_path_factory, digits_dir)


@pytest.fixture
def run(shared_run, tmp_path) -> Path:
    """A private copy of the tiny finished run (its manifest still points at the shared digits)."""
    copy = tmp_path / "run"
    shutil.copytree(shared_run, copy)
    return copy


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (hidden ones too) with its SHA-256."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(capsys, argv: list[str], code: int = 2) -> str:
    """Run the CLI; assert the exit code, exactly one stderr line and no traceback; return that line."""
    capsys.readouterr()
    assert main(argv) == code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("note:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- run folders are owned -------------------------------------------------------------------------------

def _holder(folder: Path, purpose: str = "training") -> subprocess.Popen:
    """Another process that holds ``folder``'s lock until killed."""
    code = ("import sys, time; from tl_desktop.core.runlock import run_lock\n"
            f"with run_lock({str(folder)!r}, {purpose!r}, create=True):\n"
            "    print('held', flush=True); time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.stdout.readline().strip() == "held"
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()
    proc.stdout.close()


def test_a_second_writer_is_refused_with_the_owner_and_changes_nothing(run, digits_dir, tmp_path, capsys):
    holder = _holder(run, "training")
    try:
        before = snapshot(run)
        line = refused(capsys, ["export", str(run), "--out", str(tmp_path / "m.onnx")])
        assert f"being written by process {holder.pid} on host {socket.gethostname()} since" in line
        assert "(training); wait for it or stop it" in line
        refused(capsys, ["report", str(run), "--threshold", "0.5", "--out", str(tmp_path / "rep")])
        assert snapshot(run) == before and not (tmp_path / "m.onnx").exists() and not (tmp_path / "rep").exists()

        new = tmp_path / "new"
        other = _holder(new)
        try:  # a training into a folder another training is setting up: one line, nothing of its own left
            refused(capsys, ["train", str(digits_dir), "--out", str(new), *TRAIN])
            assert [p.name for p in new.iterdir()] == [runlock.LOCK_NAME]
        finally:
            _stop(other)
    finally:
        _stop(holder)


def test_a_stale_lock_is_taken_over_and_killed_writers_temp_files_removed(digits_dir, tmp_path, capsys):
    out = tmp_path / "run"
    holder = _holder(out)
    _stop(holder)  # killed: its lock stays behind, as after a crash
    leftover = out / ".manifest.json.k1ll3d_0.tmp"  # what a killed atomic write leaves
    leftover.write_bytes(b"\0" * 1000)
    os.utime(leftover, (time.time() - 60, time.time() - 60))
    assert runlock.lock_owner(out).pid == holder.pid
    assert main(["train", str(digits_dir), "--out", str(out), *TRAIN]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert not (out / runlock.LOCK_NAME).exists() and not leftover.exists()
    assert json.loads((out / "status.json").read_text())["state"] == "finished"


def test_a_lock_of_another_host_is_reported_with_the_way_out(run, tmp_path, capsys):
    (run / runlock.LOCK_NAME).write_text(json.dumps(
        {"pid": 1, "host": "scanner-pc", "started": time.time(), "purpose": "training", "token": "x"}))
    before = snapshot(run)
    line = refused(capsys, ["export", str(run), "--out", str(tmp_path / "m.onnx")])
    assert "process 1 on host scanner-pc" in line and f"delete {run / runlock.LOCK_NAME}" in line
    assert snapshot(run) == before


def test_two_processes_share_no_lock_and_one_process_reenters_it(tmp_path):
    with runlock.run_lock(tmp_path, "training"):
        with runlock.run_lock(tmp_path, "exporting"):  # export inside a training window
            assert runlock.lock_owner(tmp_path).pid == os.getpid()
        assert (tmp_path / runlock.LOCK_NAME).exists()
    assert not (tmp_path / runlock.LOCK_NAME).exists()
    missing = tmp_path / "new"
    with runlock.run_lock(missing, "training", create=True):
        pass
    assert not missing.exists()  # a refused or empty new run leaves no folder behind


# --- weights files are checked before the run folder exists ---------------------------------------------

def _safetensors(header: bytes, length: int | None = None, tail: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header) if length is None else length) + header + tail


WEIGHTS = {
    "garbage.safetensors": _safetensors(b"not json at all!", tail=b"x" * 10),
    "huge-header.safetensors": _safetensors(b"{}", length=2 ** 62),
    "past-the-end.safetensors": _safetensors(
        json.dumps({"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}).encode(), tail=b"\0" * 16),
    "empty.safetensors": b"",
    "pickle.pth": b"\x80\x04cos\nsystem\n(S'echo owned'\ntR.",
}


@pytest.mark.parametrize("name", [*WEIGHTS, "missing.safetensors"])
def test_a_bad_weights_file_is_refused_before_anything_is_written(name, digits_dir, tmp_path, capsys):
    weights = tmp_path / name
    if name in WEIGHTS:
        weights.write_bytes(WEIGHTS[name])
    out = tmp_path / "run"
    line = refused(capsys, ["train", str(digits_dir), "--out", str(out), *TRAIN, "--strategy", "fine-tune",
                            "--weights-file", str(weights)])
    assert name in line and not out.exists()


# --- damaged run files -----------------------------------------------------------------------------------

def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change(data)))


MANIFESTS = {
    "not JSON": lambda p: p.write_text("{not json"),
    "a list": lambda p: p.write_text("[1, 2]"),
    "no files": lambda p: _edit_json(p, lambda m: {k: v for k, v in m.items() if k != "files"}),
    "an entry without a subset": lambda p: _edit_json(p, lambda m: {**m, "files": [
        {k: v for k, v in m["files"][0].items() if k != "subset"}, *m["files"][1:]]}),
    "a label that is no class": lambda p: _edit_json(p, lambda m: {**m, "files": [
        {**m["files"][0], "label": "cat"}, *m["files"][1:]]}),
    "a path that is a number": lambda p: _edit_json(p, lambda m: {**m, "files": [
        {**m["files"][0], "path": 5}, *m["files"][1:]]}),
}


@pytest.mark.parametrize("damage", list(MANIFESTS))
@pytest.mark.parametrize("command", ["evaluate", "export", "report"])
def test_a_damaged_manifest_is_one_line_naming_it(damage, command, run, tmp_path, capsys):
    MANIFESTS[damage](run / "manifest.json")
    before = snapshot(run)
    extra = {"export": ["--out", str(tmp_path / "m.onnx")], "report": ["--out", str(tmp_path / "rep")]}
    line = refused(capsys, [command, str(run), *extra.get(command, [])])
    assert "manifest.json" in line
    assert snapshot(run) == before and not (tmp_path / "m.onnx").exists() and not (tmp_path / "rep").exists()


STATUSES = {"not JSON": "garbage", "a list": "[]", "an unknown state": '{"state": 5, "message": ""}',
            "a 10 MB message": json.dumps({"state": "cancelled", "message": "x" * 10_000_000})}


@pytest.mark.parametrize("damage", list(STATUSES))
def test_a_damaged_status_is_one_line_naming_it(damage, run, capsys):
    (run / "status.json").write_text(STATUSES[damage])
    before = snapshot(run)
    assert "status.json" in refused(capsys, ["resume", str(run)])
    assert snapshot(run) == before


def test_nan_weights_are_refused_at_evaluate(run, capsys):
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = run / "checkpoints" / "best.safetensors"
    with safe_open(str(path), "pt") as handle:
        meta = handle.metadata()
    tensors = load_file(str(path))
    name = next(k for k, v in tensors.items() if k.startswith("model.") and v.is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, str(path), metadata=meta)  # as a diverged training wrote it: recorded as written
    _edit_json(run / "checkpoints" / "best.json",
               lambda info: {**info, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    before = snapshot(run)
    line = refused(capsys, ["evaluate", str(run)])
    assert "weights contain NaN" in line and "retrain or resume from an earlier checkpoint" in line
    assert snapshot(run) == before


def test_moved_data_folder_and_deleted_test_image(run, digits_dir, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(digits_dir, data)
    _edit_json(run / "manifest.json", lambda m: {**m, "root": str(data)})
    test_image = next(f["path"] for f in json.loads((run / "manifest.json").read_text())["files"]
                      if f["subset"] == "test")
    (data / test_image).unlink()
    before = snapshot(run)
    assert Path(test_image).name in refused(capsys, ["report", str(run), "--out", str(tmp_path / "rep")])
    shutil.move(data, tmp_path / "elsewhere")
    refused(capsys, ["evaluate", str(run)])
    assert snapshot(run) == before and not (tmp_path / "rep").exists()


# --- project files ---------------------------------------------------------------------------------------

def _projects(good: dict) -> dict[str, bytes]:
    variants = {
        "schema_version two": {**good, "schema_version": "two"}, "schema_version null": {**good, "schema_version": None},
        "schema_version -1": {**good, "schema_version": -1}, "schema_version 999": {**good, "schema_version": 999},
        "schema_version true": {**good, "schema_version": True}, "a list": [good], "a text": "project",
        "a list as source": {**good, "source": ["a", "b"]}, "a source without path": {**good, "source": {"kind": "csv"}},
        "an unknown source kind": {**good, "source": {"kind": "url", "path": "x"}}, "runs: [5]": {**good, "runs": [5]},
        "runs as text": {**good, "runs": "abc"}, "a run without path": {**good, "runs": [{}]},
        "settings as a list": {**good, "settings": [1]}, "epochs as text": {**good, "settings": {"epochs": "ten"}},
        "name as number": {**good, "name": 5}, "created as text": {**good, "created": "yesterday"},
        "split as text": {**good, "split": "x"},
        "pre-release with runs: [5]": {"version": 1, "runs": [5]},
    }
    raw = {name: json.dumps(v).encode() for name, v in variants.items()}
    return raw | {"empty": b"", "not JSON": b"{not json", "Latin-1 bytes": b'{"name": "caf\xe9"}', "deep": b"[" * 50_000}


def test_malformed_project_files_are_one_project_error_line(tmp_path, capsys):
    good = project_file.create(tmp_path / "good").to_dict()
    variants = _projects(good)
    assert len(variants) >= 19
    for name, data in variants.items():
        folder = tmp_path / name.replace(" ", "_").replace(":", "")
        folder.mkdir()
        (folder / "project.json").write_bytes(data)
        with pytest.raises(project_file.ProjectError) as caught:
            project_file.load(folder)
        assert "\n" not in str(caught.value), name
        line = refused(capsys, ["job", "create", str(folder), "--out", str(tmp_path / f"job-{folder.name}")])
        assert line == f"tl-desktop job: {caught.value}", name
        assert not (tmp_path / f"job-{folder.name}").exists()
        assert (folder / "project.json").read_bytes() == data


# --- full and read-only disks, internal errors ------------------------------------------------------------

def _disk_error(monkeypatch, code: int) -> None:
    """Every atomic write fails as on a full (ENOSPC) or read-only (EROFS) drive, after its temp file exists."""
    def fail(fd):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr("tl_desktop.core.fsutil.os.fsync", fail)


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "read-only")])
def test_full_or_read_only_disk_is_one_line_and_leaves_no_temp_files(code, words, run, digits_dir, tmp_path,
                                                                      capsys, monkeypatch):
    model = tmp_path / "m.onnx"
    assert main(["export", str(run), "--out", str(model)]) == 0
    _disk_error(monkeypatch, code)
    line = refused(capsys, ["predict", str(model), str(digits_dir / "digit_0"), "--csv", str(tmp_path / "p.csv")])
    assert line.startswith(f"tl-desktop predict: cannot write {tmp_path / 'p.csv'}: ") and words in line
    out = tmp_path / "new"
    line = refused(capsys, ["train", str(digits_dir), "--out", str(out), *TRAIN])
    assert f"cannot write {out}" in line and words in line
    leftovers = [p for p in tmp_path.rglob("*.tmp")]
    assert leftovers == [] and not (out / "config.json").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0, reason="mounting needs root")
def test_a_real_3_mb_disk_fills_up_with_one_line(digits_dir, tmp_path, capsys):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("tmpfs cannot be mounted here")
    try:
        out = disk / "run"
        line = refused(capsys, ["train", str(digits_dir), "--out", str(out), *TRAIN])
        assert "the disk is full" in line and str(out) in line
        assert not list(disk.rglob("*.tmp")) and not (out / runlock.LOCK_NAME).exists()
        assert not (out / "checkpoints" / "best.safetensors").exists()
        assert json.loads((out / "status.json").read_text())["state"] == "failed"
    finally:
        subprocess.run(["umount", str(disk)])


def test_an_internal_error_is_one_line_with_the_traceback_in_the_log(run, capsys, monkeypatch, _isolated_home):
    def broken(*args, **kwargs):
        raise KeyError("nobody expected this")

    monkeypatch.setattr("tl_desktop.core.training.run.evaluate_run", broken)
    line = refused(capsys, ["evaluate", str(run)], code=1)
    log = _isolated_home / "log" / "tl-desktop.log"
    assert line == f"tl-desktop evaluate: internal error: KeyError: 'nobody expected this'; details in {log}"
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "nobody expected this" in text


def test_a_data_loader_workers_error_is_shown_by_its_own_message():
    from tl_desktop.core.errors import UnreadableImage, user_line

    wrapped = UnreadableImage("Caught UnreadableImage in DataLoader worker process 0.\nOriginal Traceback (most "
                              "recent call last):\n  File \"x.py\", line 1, in f\ntl_desktop.core.errors."
                              "UnreadableImage: 0_004.png: cannot read the file: No such file or directory\n")
    assert user_line(wrapped) == "0_004.png: cannot read the file: No such file or directory"
    assert user_line(KeyError("x")) is None
    assert user_line(OSError(errno.ENOSPC, "No space", "runs/x/config.json")) == (
        "cannot write runs/x/config.json: the disk is full; free some space or choose another folder")
