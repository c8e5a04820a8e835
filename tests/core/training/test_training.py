"""The training engine on real images (scikit-learn digits): transfer, cancel/resume, faults, CLI."""

from __future__ import annotations

import json

import pytest

from tests.helpers import write_digits_folder
from tl_desktop.core import runs
from tl_desktop.core.errors import TrainingError
from tl_desktop.core.events import CancelToken, EpochEnded, FitStarted, Notice
from tl_desktop.core.models import run_model
from tl_desktop.core.training.run import TrainConfig, resume, train

TINY = dict(image_size=32, batch_size=16, seed=3, patience=0, workers=0)


@pytest.fixture(scope="module")
def five_digits(tmp_path_factory):
    """5 classes x 40 real digits: small enough for CPU tests, big enough to tell transfer from none."""
    return write_digits_folder(tmp_path_factory.mktemp("d5"), classes=(0, 1, 2, 3, 4), per_class=40, size=32)


def _events(store):
    return lambda event: store.append(event)


def test_transfer_beats_scratch_with_the_same_budget(five_digits, tmp_path):
    scores = {}
    for strategy in ("linear-probe", "fine-tune", "scratch"):
        result = train(TrainConfig(data=str(five_digits), out=str(tmp_path / strategy), strategy=strategy,
                                   epochs=4, lr={"linear-probe": 2e-2}.get(strategy), **TINY))
        scores[strategy] = result.test_metrics["balanced_accuracy"]
    print(scores)
    assert scores["linear-probe"] >= scores["scratch"] + 0.25
    assert scores["fine-tune"] >= scores["scratch"] + 0.25
    assert scores["linear-probe"] >= 0.7


def test_run_folder_contents_and_warm_embedding_cache(digits_dir, tmp_path):
    notes: list = []
    result = train(TrainConfig(data=str(digits_dir), out=str(tmp_path / "a"), strategy="linear-probe", epochs=2,
                               **TINY), _events(notes))
    run = tmp_path / "a"
    config = json.loads((run / "config.json").read_text())
    assert config["strategy"] == "linear-probe" and config["class_names"] == ["digit_0", "digit_1", "digit_2"]
    assert config["data_config"]["mean"] == [0.5, 0.5, 0.5] and config["data_config"]["input_size"] == [3, 32, 32]
    assert "ImageNet" in config["weights_source"] and config["versions"]["torch"]
    assert len(runs.read_history(run)) == 2
    assert runs.read_status(run)["state"] == "finished"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == result.test_metrics["n"] > 0
    assert len(metrics["confusion_matrix"]) == 3
    assert {"precision", "recall", "f1", "support"} <= set(metrics["per_class"]["digit_0"])
    assert (run / "checkpoints" / "best.safetensors").is_file()
    assert json.loads((run / "hardware.json").read_text())["device"].startswith("cpu")
    stored = runs.read_predictions(run)
    assert stored["class_names"] == config["class_names"] and len(stored["paths"]) == metrics["n"]
    assert sum(t == p for t, p in zip(stored["true"], stored["predicted"], strict=True)) == round(metrics["accuracy"] * metrics["n"])
    first = [n.message for n in notes if isinstance(n, Notice) and n.message.startswith("Image features ready")]
    assert any(", 0 reused from the cache" in m for m in first)
    notes.clear()
    train(TrainConfig(data=str(digits_dir), out=str(tmp_path / "b"), strategy="linear-probe", epochs=1, **TINY),
          _events(notes))
    again = [n.message for n in notes if isinstance(n, Notice) and n.message.startswith("Image features ready")]
    assert again and all(": 0 computed" in m for m in again), again
    loaded = run_model.load_run(run)
    assert loaded.class_names == ["digit_0", "digit_1", "digit_2"] and len(loaded.files("test")) == metrics["n"]


def _cancel_at(epoch: int, step: int, token: CancelToken):
    def callback(event):
        if type(event).__name__ == "BatchEnded" and event.epoch == epoch and event.step == step:
            token.cancel()
    return callback


@pytest.mark.parametrize("strategy", ["fine-tune", "linear-probe"])
def test_cancelled_mid_epoch_resumes_to_the_same_result(digits_dir, tmp_path, strategy):
    base = dict(data=str(digits_dir), strategy=strategy, epochs=3, **TINY)
    straight = train(TrainConfig(out=str(tmp_path / "straight"), **base))
    token = CancelToken()
    stopped = train(TrainConfig(out=str(tmp_path / "cut"), **base), _cancel_at(1, 1, token), token)
    assert stopped.cancelled
    assert runs.read_status(tmp_path / "cut")["state"] == "cancelled"
    assert len(runs.read_history(tmp_path / "cut")) == 1
    events: list = []
    resumed = resume(tmp_path / "cut", _events(events))
    assert any(isinstance(e, FitStarted) and e.start_epoch == 1 for e in events)
    assert [e.epoch for e in events if isinstance(e, EpochEnded)] == [2, 3]
    h1, h2 = runs.read_history(tmp_path / "straight"), runs.read_history(tmp_path / "cut")
    for a, b in zip(h1, h2, strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-5)
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
    assert resumed.test_metrics["accuracy"] == straight.test_metrics["accuracy"]


def test_exception_in_callback_fails_cleanly_and_can_resume(digits_dir, tmp_path):
    def explode(event):
        if isinstance(event, EpochEnded) and event.epoch == 1:
            raise RuntimeError("plot widget crashed")

    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="plot widget crashed"):
        train(TrainConfig(data=str(digits_dir), out=str(run), strategy="linear-probe", epochs=2, **TINY), explode)
    status = runs.read_status(run)
    assert status["state"] == "failed" and "plot widget crashed" in status["message"]
    assert (run / "config.json").is_file() and (run / "checkpoints" / "last.safetensors").is_file()
    assert resume(run).test_metrics["n"] > 0


def test_file_that_becomes_unreadable_mid_run_gives_a_clear_error(tmp_path):
    from tl_desktop.core.errors import UnreadableImage

    data = write_digits_folder(tmp_path / "data", classes=(0, 1), per_class=12, size=32)
    victim = sorted((data / "digit_1").iterdir())

    def corrupt(event):
        if isinstance(event, FitStarted):
            for path in victim:
                path.write_bytes(b"not an image any more")

    run = tmp_path / "run"
    with pytest.raises(UnreadableImage, match=r"1_0\d\d\.png"):
        train(TrainConfig(data=str(data), out=str(run), strategy="fine-tune", epochs=1, **TINY), corrupt)
    assert runs.read_status(run)["state"] == "failed"
    assert json.loads((run / "manifest.json").read_text())["files"]


def test_refuses_to_overwrite_and_rejects_bad_options(digits_dir, tmp_path):
    keep = tmp_path / "busy" / "notes.txt"
    keep.parent.mkdir()
    keep.write_text("mine")
    with pytest.raises(TrainingError, match="not empty"):
        train(TrainConfig(data=str(digits_dir), out=str(keep.parent), epochs=1, **TINY))
    assert keep.read_text() == "mine" and len(list(keep.parent.iterdir())) == 1
    with pytest.raises(TrainingError, match="strategy"):
        train(TrainConfig(data=str(digits_dir), out=str(tmp_path / "x"), strategy="magic", **TINY))
    with pytest.raises(TrainingError, match="no CUDA"):
        train(TrainConfig(data=str(digits_dir), out=str(tmp_path / "y"), strategy="fine-tune", device="cuda",
                          **TINY))


def test_cli_train_evaluate_resume_end_to_end(digits_dir, tmp_path, capsys):
    from tl_desktop.cli import main

    run = tmp_path / "cli-run"
    code = main(["train", str(digits_dir), "--out", str(run), "--strategy", "linear-probe", "--epochs", "2",
                 "--image-size", "32", "--batch-size", "16"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "epoch 2:" in out and "test: accuracy" in out
    assert main(["evaluate", str(run), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n"] > 0 and 0 <= metrics["accuracy"] <= 1
    assert main(["resume", str(run)]) == 2
    assert "already finished" in capsys.readouterr().err
    assert main(["train", str(digits_dir), "--out", str(run), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not empty" in err
    assert main(["train", str(tmp_path / "missing"), "--out", str(tmp_path / "r2")]) == 2
    assert main(["train", str(digits_dir), "--out", str(tmp_path / "r3"), "--model", "nope"]) == 2


def test_continue_training_with_a_new_class_keeps_old_order_and_reports_forgetting(tmp_path):
    old_data = write_digits_folder(tmp_path / "old", classes=(0, 1), per_class=20, size=32)
    first = train(TrainConfig(data=str(old_data), out=str(tmp_path / "first"), strategy="linear-probe", epochs=3,
                              lr=2e-2, **TINY))
    old_manifest = json.loads((tmp_path / "first" / "manifest.json").read_text())
    old_test = {f["sha256"] for f in old_manifest["files"] if f["subset"] == "test"}
    new_data = write_digits_folder(tmp_path / "new", classes=(0, 1), per_class=20, size=32)
    write_digits_folder(new_data, classes=(7,), per_class=20, size=32)
    second = train(TrainConfig(data=str(new_data), out=str(tmp_path / "second"), strategy="linear-probe",
                               epochs=3, lr=2e-2, init_from=str(tmp_path / "first"), **TINY))
    config = json.loads((tmp_path / "second" / "config.json").read_text())
    assert config["class_names"] == ["digit_0", "digit_1", "digit_7"]
    assert config["weights_source"].startswith("continued from run first")
    manifest = json.loads((tmp_path / "second" / "manifest.json").read_text())
    assert all(f["subset"] == "test" for f in manifest["files"] if f["sha256"] in old_test)
    cont = second.test_metrics["continued"]
    assert cont["old_test_images"] == first.test_metrics["n"]
    assert cont["old_test_accuracy_before"] == first.test_metrics["accuracy"]
    assert cont["old_test_accuracy_after"] >= 0.7
    assert cont["forgetting"] == pytest.approx(cont["old_test_accuracy_before"] - cont["old_test_accuracy_after"])
    with pytest.raises(TrainingError, match="tf_efficientnet_lite0"):
        train(TrainConfig(data=str(new_data), out=str(tmp_path / "third"), model="tf_efficientnet_lite1",
                          init_from=str(tmp_path / "first"), **TINY))


@pytest.mark.parametrize("balance", ["auto", "sampler"])
def test_imbalanced_classes_are_balanced_automatically_or_by_sampler(tmp_path, balance):
    data = write_digits_folder(tmp_path / "data", classes=(0,), per_class=48, size=32)
    write_digits_folder(data, classes=(1,), per_class=10, size=32)
    notes: list = []
    result = train(TrainConfig(data=str(data), out=str(tmp_path / "run"), strategy="linear-probe", epochs=3,
                               lr=2e-2, balance=balance, **TINY), _events(notes))
    weighted = [n for n in notes if isinstance(n, Notice) and "imbalanced" in n.message]
    assert bool(weighted) == (balance == "auto")
    assert result.test_metrics["per_class"]["digit_1"]["recall"] >= 0.5


def test_continuing_keeps_each_patient_of_the_earlier_test_split_in_test(tmp_path):
    """A patient with an old test image and a new image: both are test images in the continued run."""
    import re
    import shutil

    full = write_digits_folder(tmp_path / "all", classes=(0, 1), per_class=24, size=32)
    for png in sorted(full.rglob("*.png")):  # two images per patient: P<class><n>_a/_b
        cls, i = png.stem.split("_")
        png.rename(png.with_name(f"P{cls}{int(i) // 2:02d}_{'ab'[int(i) % 2]}.png"))
    first_visit = tmp_path / "first"
    for png in full.rglob("*_a.png"):
        (first_visit / png.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, first_visit / png.parent.name / png.name)
    group = r"regex:(P\d+)_"
    train(TrainConfig(data=str(first_visit), out=str(tmp_path / "r1"), strategy="linear-probe", epochs=1,
                      group_by=group, **TINY))
    second = train(TrainConfig(data=str(full), out=str(tmp_path / "r2"), strategy="linear-probe", epochs=1,
                               group_by=group, init_from=str(tmp_path / "r1"), **TINY))
    assert second.test_metrics["continued"]["old_test_images"] > 0
    subset_of = {}
    for f in json.loads((tmp_path / "r2" / "manifest.json").read_text())["files"]:
        patient = re.search(r"(P\d+)_", f["path"]).group(1)
        subset_of.setdefault(patient, set()).add(f["subset"])
    assert all(len(s) == 1 for s in subset_of.values()), subset_of  # no patient in two parts
    old_test = {re.search(r"(P\d+)_", f["path"]).group(1)
                for f in json.loads((tmp_path / "r1" / "manifest.json").read_text())["files"] if f["subset"] == "test"}
    assert old_test and all(subset_of[p] == {"test"} for p in old_test)
    groups = json.loads((tmp_path / "r2" / "manifest.json").read_text())["split"]["groups"]
    assert not any("P" in g for g in groups.values())  # patient IDs only as keyed hashes


def test_out_of_memory_halves_the_batch_and_reruns_the_epoch_from_its_start(digits_dir, tmp_path, monkeypatch):
    """Simulated CUDA OOM in the first epoch: the run then equals one started with half the batch size."""
    import torch

    from tl_desktop.core.training.loop import Loop

    base = {**TINY, "batch_size": 16}
    config = dict(data=str(digits_dir), strategy="fine-tune", epochs=2, **base)
    real_step, calls = Loop._step, []

    def flaky(self, x, y, scaler):
        calls.append(1)
        if len(calls) == 2:  # after one real step changed the weights
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_step(self, x, y, scaler)

    monkeypatch.setattr(Loop, "_step", flaky)
    notes: list = []
    train(TrainConfig(out=str(tmp_path / "oom"), **config), _events(notes))
    monkeypatch.setattr(Loop, "_step", real_step)
    train(TrainConfig(out=str(tmp_path / "half"), **{**config, "batch_size": 8}))
    assert any(isinstance(n, Notice) and "batch size 8" in n.message for n in notes)
    for a, b in zip(runs.read_history(tmp_path / "oom"), runs.read_history(tmp_path / "half"), strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-5)


def test_evaluating_on_another_folder_leaves_out_images_the_model_trained_on(digits_dir, tmp_path):
    import shutil

    from tl_desktop.core.training.run import evaluate_run

    run = tmp_path / "run"
    train(TrainConfig(data=str(digits_dir), out=str(run), strategy="linear-probe", epochs=1, **TINY))
    other = shutil.copytree(digits_dir, tmp_path / "other")  # the same images under another folder
    manifest = json.loads((run / "manifest.json").read_text())
    metrics = evaluate_run(run, str(other))
    used = sum(f["subset"] in ("train", "val") for f in manifest["files"])
    assert len(metrics["excluded_seen_in_training"]) == used
    assert metrics["n"] == len(manifest["files"]) - used  # only the run's test images remain
