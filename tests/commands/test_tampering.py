"""Integrity (issue 13): a run is used only with the images and checkpoint it was trained with. A changed test
image, a changed training image before resume and a modified checkpoint each give exit code 2 with one line
naming the file and no traceback, from ``evaluate``, ``resume``, ``export`` and ``report``; an unchanged run
passes all four, and ``--allow-changed`` evaluates and reports on the files as they are now, saying so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import _photo, write_digits_folder
from tl_desktop import cli
from tl_desktop.core import runs
from tl_desktop.core.events import CancelToken

TINY = dict(strategy="linear-probe", lr=2e-2, image_size=32, batch_size=16, seed=3, patience=0, workers=0)


def _cancel_after_first_batch(token: CancelToken):
    def callback(event):
        if type(event).__name__ == "BatchEnded" and event.epoch == 1 and event.step == 1:
            token.cancel()
    return callback


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(data folder, finished run, cancelled run) trained once for the module, with their own user home."""
    from tl_desktop.core.training.run import TrainConfig, train

    base = tmp_path_factory.mktemp("tampering")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TL_DESKTOP_HOME", str(base / "home"))
        data = write_digits_folder(base / "data", classes=(0, 1, 2), per_class=12, size=32)
        train(TrainConfig(data=str(data), out=str(base / "run"), epochs=1, **TINY))
        token = CancelToken()
        cut = train(TrainConfig(data=str(data), out=str(base / "cut"), epochs=2, **TINY),
                    _cancel_after_first_batch(token), token)
        assert cut.cancelled
    return data, base / "run", base / "cut"


@pytest.fixture
def copy(trained, tmp_path):
    """A private copy of the data and both runs (manifests pointed at the copied data): tests may damage it."""
    data = tmp_path / "data"
    shutil.copytree(trained[0], data)
    copies = []
    for run in trained[1:]:
        target = tmp_path / run.name
        shutil.copytree(run, target)
        manifest = json.loads((target / "manifest.json").read_text())
        manifest["root"] = str(data.resolve())
        (target / "manifest.json").write_text(json.dumps(manifest))
        copies.append(target)
    return data, *copies


def _files(run: Path, subset: str) -> list[str]:
    return [f["path"] for f in runs.load_manifest(run)["files"] if f["subset"] == subset]


def _refused(capsys, *argv: str) -> str:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.startswith(f"tl-desktop {argv[0]}: ") and err.count("\n") == 1, err
    assert "Traceback" not in err + out
    return err


def _passes(capsys, *argv: str) -> str:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, (out, err)
    return out


def _overwrite(path: Path) -> None:
    """Another picture under the same name (what a user copying a new export over the folder does)."""
    _photo("camera", 32).convert("L").save(path)


def _uses_of(run: Path, tmp_path: Path) -> list[tuple[str, ...]]:
    return [("evaluate", str(run)), ("export", str(run), "--out", str(tmp_path / "m.onnx")),
            ("report", str(run), "--out", str(tmp_path / "report"), "--no-heatmaps")]


def test_unchanged_run_passes_evaluate_export_report_and_resume(copy, tmp_path, capsys):
    data, run, cut = copy
    out = _passes(capsys, "evaluate", str(run))
    assert "test: accuracy" in out
    _passes(capsys, "export", str(run), "--out", str(tmp_path / "m.onnx"))
    _passes(capsys, "report", str(run), "--out", str(tmp_path / "report"), "--no-heatmaps")
    _passes(capsys, "resume", str(cut))
    assert runs.read_status(cut)["state"] == "finished"


def test_changed_test_image_refuses_evaluate_export_and_report(copy, tmp_path, capsys):
    data, run, _ = copy
    first = _files(run, "test")[0]
    _overwrite(data / first)
    for argv in _uses_of(run, tmp_path):
        err = _refused(capsys, *argv)
        assert f"1 image of this run changed since it was trained (first: {first})" in err, err
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "report").exists()


def test_missing_test_images_are_named(copy, tmp_path, capsys):
    data, run, _ = copy
    gone = _files(run, "test")[:2]
    for name in gone:
        (data / name).unlink()
    err = _refused(capsys, "evaluate", str(run))
    assert f"2 images of this run are missing (first: {gone[0]})" in err


def test_allow_changed_evaluates_the_current_files_and_the_report_says_so(copy, tmp_path, capsys):
    data, run, _ = copy
    before = json.loads(_passes(capsys, "evaluate", str(run), "--json"))
    test = _files(run, "test")
    for name in test:  # every test image replaced by the same other picture
        _overwrite(data / name)
    out = _passes(capsys, "evaluate", str(run), "--allow-changed")
    assert f"note: {len(test)} images of this run changed since it was trained" in out
    after = json.loads(_passes(capsys, "evaluate", str(run), "--allow-changed", "--json"))
    assert after["confusion_matrix"] != before["confusion_matrix"]  # really evaluated on the new files
    assert after["changed_files"][0] == {"path": test[0], "kind": "changed"}
    out = _passes(capsys, "report", str(run), "--out", str(tmp_path / "report"), "--no-heatmaps",
                  "--allow-changed")
    assert f"note:   {len(test)} images of this run changed since it was trained (first: {test[0]}): evaluated on the images as they are now" in out
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "evaluated on the images as they are now" in html
    err = _refused(capsys, "evaluate", str(run))  # the override is per command, never remembered
    assert "changed since it was trained" in err


def test_changed_training_image_refuses_resume(copy, capsys):
    data, _, cut = copy
    first = _files(cut, "train")[0]
    _overwrite(data / first)
    err = _refused(capsys, "resume", str(cut))
    assert f"1 image of this run changed since it was trained (first: {first})" in err
    assert "put the original files back" in err
    assert runs.read_status(cut)["state"] == "cancelled"  # nothing was trained on the changed file


def _swap_classifier_rows(path: Path) -> None:
    """Swap two rows of the classifier weight, keeping every other tensor and the header's metadata."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(path), framework="np") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        metadata = handle.metadata()
    name = next(k for k, v in reversed(tensors.items()) if k.startswith("model.") and v.ndim == 2
                and v.shape[0] == 3)
    weight = tensors[name].copy()
    weight[[0, 1]] = weight[[1, 0]]
    assert not np.array_equal(weight, tensors[name])
    tensors[name] = weight
    save_file(tensors, str(path), metadata=metadata)


def test_modified_checkpoint_refuses_evaluate_export_and_report(copy, tmp_path, capsys):
    _, run, _ = copy
    _swap_classifier_rows(run / "checkpoints" / "best.safetensors")
    for argv in _uses_of(run, tmp_path):
        err = _refused(capsys, *argv)
        assert "checkpoints/best.safetensors was modified after training" in err, err
    assert not (tmp_path / "m.onnx").exists()


def test_modified_last_checkpoint_refuses_resume(copy, capsys):
    _, _, cut = copy
    if not (cut / "checkpoints" / "last.safetensors").is_file():
        pytest.skip("the cancelled run stopped before its first checkpoint")
    _swap_classifier_rows(cut / "checkpoints" / "last.safetensors")
    err = _refused(capsys, "resume", str(cut))
    assert "checkpoints/last.safetensors was modified after training" in err


def test_runs_without_a_recorded_checkpoint_hash_still_load(copy):
    _, run, _ = copy
    sidecar = run / "checkpoints" / "best.json"
    record = json.loads(sidecar.read_text())
    record.pop("sha256")
    sidecar.write_text(json.dumps(record))
    state, _, _ = runs.load_checkpoint(run, "best")
    assert state


def test_unchanged_images_are_not_read_again(copy, monkeypatch):
    """Only files whose size or time changed are hashed: the second check reads nothing."""
    from tl_desktop.core.data import integrity, scancache

    data, run, _ = copy
    assert integrity.check_run_images(run) == []
    read: list[Path] = []
    real = scancache._examine
    monkeypatch.setattr(scancache, "_examine", lambda path, *a: (read.append(path), real(path, *a))[1])
    assert integrity.check_run_images(run) == []
    assert read == []
    changed = _files(run, "val")[0]
    _overwrite(data / changed)
    problems = integrity.check_run_images(run, ("val",), allow_changed=True)
    assert [p.path for p in problems] == [changed] and read == [data / changed]


def test_window_shows_the_same_line_and_offers_a_rescan(copy, qtbot):
    """The Failure a worker emits carries the RunIntegrityError; the dialog shows its line without CLI advice."""
    from tl_desktop.core.data.integrity import check_run_images
    from tl_desktop.core.errors import RunIntegrityError
    from tl_desktop.ui.widgets.errors import task_failed
    from tl_desktop.workers import Failure

    data, run, _ = copy
    first = _files(run, "test")[0]
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(data / first)
    with pytest.raises(RunIntegrityError) as info:
        check_run_images(run, ("test",))
    box = task_failed(None, "evaluate", Failure.of(info.value))
    qtbot.addWidget(box)
    assert f"(first: {first})" in box.text() and "--allow-changed" not in box.text()
    assert "scan the images again" in box.informativeText().lower()


def test_a_moved_data_folder_is_named_as_such(copy, tmp_path, capsys):
    data, run, _ = copy
    data.rename(tmp_path / "elsewhere")
    err = _refused(capsys, "evaluate", str(run))
    assert f"none of the run's {len(_files(run, 'val')) + len(_files(run, 'test'))} images are under {data.resolve()}" in err
