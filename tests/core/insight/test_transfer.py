"""Transfer insight on real images (scikit-learn digits): the check's verdicts, the model table, the label curve.

Positive case: digits drawn at a random place of the frame, as objects are in photos (raw pixels cannot cope
with that; pretrained features can). Mismatched case: the same kind of digits with every image's pixels
shuffled by one fixed permutation, which destroys exactly the spatial structure ImageNet features rely on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import write_digits_folder
from tl_desktop.cli import main
from tl_desktop.core.config import DataSource
from tl_desktop.core.events import EpochEnded
from tl_desktop.core.insight.label_budget import answer_of, curve_from_embeddings, label_budget_curve
from tl_desktop.core.insight.transfer import (
    TransferProgress,
    bootstrap_scores,
    compare_models,
    paired_difference,
    reach,
    transfer_check,
    verdict_of,
)

LITE0 = "tf_efficientnet_lite0"
CHECK = dict(model=LITE0, budget_epochs=3, image_size=32, batch_size=16, lr={"linear-probe": 2e-2}, workers=0)


def write_moved_digits(root: Path, classes=(0, 1, 2, 3, 4), per_class: int = 40, seed: int = 5) -> Path:
    """Real digits shrunk to 16 px and pasted at a random place of a black 32 px frame."""
    from sklearn.datasets import load_digits

    digits, rng = load_digits(), np.random.default_rng(seed)
    for cls in classes:
        folder = root / f"digit_{cls}"
        folder.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(digits.images[digits.target == cls][:per_class]):
            small = Image.fromarray((img / 16 * 255).astype(np.uint8)).resize((16, 16), Image.BILINEAR)
            frame = np.zeros((32, 32), np.uint8)
            x, y = rng.integers(0, 17, 2)
            frame[y:y + 16, x:x + 16] = np.asarray(small)
            Image.fromarray(frame).save(folder / f"{cls}_{i:03d}.png")
    return root


def write_shuffled_copy(src: Path, dst: Path, seed: int = 1) -> Path:
    """Every PNG of ``src`` with its pixels reordered by one fixed permutation, as new PNGs under ``dst``."""
    perm = None
    for path in sorted(src.rglob("*.png")):
        pixels = np.asarray(Image.open(path))
        perm = np.random.default_rng(seed).permutation(pixels.size) if perm is None else perm
        out = dst / path.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.reshape(-1)[perm].reshape(pixels.shape)).save(out)
    return dst


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One user home for the module-scoped checks (the autouse per-test home comes too late for them)."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("transfer_home")
        mp.setenv("TL_DESKTOP_HOME", str(path))
        yield path


@pytest.fixture
def warm_home(home, monkeypatch):
    """This test uses the module's home, whose embedding cache the checks already filled."""
    monkeypatch.setenv("TL_DESKTOP_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    return write_moved_digits(tmp_path_factory.mktemp("moved"), per_class=60)  # 45 val + 45 test images


@pytest.fixture(scope="module")
def positive(home, moved, tmp_path_factory):
    events: list = []
    report = transfer_check(DataSource(data=str(moved), seed=3), out_dir=tmp_path_factory.mktemp("pos") / "check", callback=events.append,
                            **CHECK)
    return report, events


@pytest.fixture(scope="module")
def mismatched(home, tmp_path_factory):
    digits = write_digits_folder(tmp_path_factory.mktemp("plain"), classes=(0, 1, 2, 3, 4), per_class=40, size=32)
    shuffled = write_shuffled_copy(digits, tmp_path_factory.mktemp("shuffled"))
    return transfer_check(DataSource(data=str(shuffled), seed=3), out_dir=tmp_path_factory.mktemp("neg") / "check", **CHECK)


def test_positive_transfer_on_a_natural_image_like_task(positive):
    report, events = positive
    print(report.summary)
    assert report.verdict == "positive", report.summary
    arms = report.arms
    assert set(arms) == {"linear-probe", "fine-tune", "scratch", "thumbnail"}
    # indicator 1: the pretrained features alone are far above chance (20%)
    assert arms["linear-probe"].test_balanced_accuracy["value"] >= 0.5
    # indicator 2: transfer reaches the target, scratch does not (or later)
    assert arms["linear-probe"].epochs_to_target is not None
    assert arms["scratch"].epochs_to_target is None or (
        arms["scratch"].epochs_to_target >= min(arms[a].epochs_to_target or 99 for a in ("linear-probe", "fine-tune")))
    # indicator 3: intervals around every final score, and the paired difference above 0
    for arm in arms.values():
        ci = arm.test_balanced_accuracy
        assert 0 <= ci["low"] <= ci["value"] <= ci["high"] <= 1
    assert report.difference["low"] > 0 and report.best_transfer in ("linear-probe", "fine-tune")
    saved = json.loads((Path(report.out_dir) / "transfer.json").read_text())
    assert saved["verdict"] == "positive" and saved["rule"] and saved["arms"]["fine-tune"]["curve"]
    assert (Path(report.out_dir) / "transfer.txt").read_text().startswith("Transfer helped")
    for arm in ("linear-probe", "fine-tune", "scratch"):
        assert (Path(report.out_dir) / arm / "metrics.json").is_file()
        # same split in every arm
        manifest = json.loads((Path(report.out_dir) / arm / "manifest.json").read_text())
        assert manifest["split"] == json.loads((Path(report.out_dir) / "fine-tune" / "manifest.json").read_text())[
            "split"]
    # live curves: each epoch of (b) and (c) arrives tagged with its arm
    epochs = [(e.arm, e.event.epoch) for e in events if isinstance(e, TransferProgress)
              and isinstance(e.event, EpochEnded)]
    assert [ep for arm, ep in epochs if arm == "fine-tune"] == [1, 2, 3]
    assert [ep for arm, ep in epochs if arm == "scratch"] == [1, 2, 3]


def test_mismatched_task_is_not_called_positive(mismatched):
    print(mismatched.summary)
    assert mismatched.verdict in ("neutral", "negative"), mismatched.summary
    # the thumbnail baseline ignores pixel order, so shuffling cannot hurt it; the pretrained features suffer
    assert mismatched.arms["thumbnail"].test_balanced_accuracy["value"] >= 0.9
    assert mismatched.arms["linear-probe"].test_balanced_accuracy["value"] < \
        mismatched.arms["thumbnail"].test_balanced_accuracy["value"]


def test_label_budget_curve_rises_and_answers(warm_home, positive, moved, tmp_path):
    curve = label_budget_curve(DataSource(data=str(moved), seed=3), model=LITE0, image_size=32, repeats=3,
                               out_dir=tmp_path)
    means = [p.mean for p in curve.points]
    print([(round(p.images_per_class), round(p.mean, 3)) for p in curve.points], curve.explanation)
    assert curve.points[0].shots == 1 and curve.points[-1].shots is None
    assert means[-1] >= means[0] + 0.15                      # more labels help overall
    assert all(b >= a - 0.1 for a, b in zip(means, means[1:], strict=False))   # monotone-ish
    assert curve.answer in ("likely", "maybe", "unlikely") and "images per class" in curve.explanation
    saved = json.loads((tmp_path / "label_budget.json").read_text())
    assert len(saved["points"]) == len(curve.points) and saved["rule"]


def test_compare_models_has_one_row_per_model_and_cli(warm_home, positive, moved, tmp_path, capsys):
    rows = compare_models(DataSource(data=str(moved), seed=3), models=[LITE0, "tf_efficientnet_lite1"], budget_epochs=1,
                          out_dir=tmp_path / "c", image_size=32, batch_size=16, lr=2e-2, workers=0)
    assert [r["model"] for r in rows] == [LITE0, "tf_efficientnet_lite1"]
    assert rows[0]["params"] < rows[1]["params"] and rows[0]["weights_mb"] == pytest.approx(rows[0]["params"] * 4e-6)
    assert all(r["wall_seconds"] > 0 and r["checkpoint_mb"] > 0 for r in rows)
    assert json.loads((tmp_path / "c" / "compare_models.json").read_text())["rows"][1]["model"] == rows[1]["model"]
    code = main(["compare-models", str(moved), "--models", LITE0, "--budget", "1", "--image-size", "32",
                 "--seed", "3", "--workers", "0", "--out", str(tmp_path / "cli"), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["model"] for r in out["rows"]] == [LITE0]


def test_label_budget_cli_prints_a_table_and_the_answer(warm_home, positive, moved, capsys):
    assert main(["label-budget", str(moved), "--image-size", "32", "--shots", "1,5,all", "--repeats", "2"]) == 0
    text = capsys.readouterr().out
    assert "(all)" in text and "Is labelling more images likely to pay off?" in text
    assert main(["label-budget", str(moved), "--shots", "1,zero"]) == 2


# --- the statistics on their own (instant) ---------------------------------------------------------------

def test_bootstrap_intervals_and_verdict_rule():
    y = np.repeat(["a", "b"], 50)
    perfect, coin = y.copy(), np.where(np.arange(100) % 2 == 0, "a", "b")
    scores = bootstrap_scores(y, coin)
    assert scores["balanced_accuracy"]["value"] == pytest.approx(0.5)
    assert scores["balanced_accuracy"]["low"] < 0.5 < scores["balanced_accuracy"]["high"]
    diff = paired_difference(y, perfect, coin)
    assert diff["value"] == pytest.approx(0.5) and diff["low"] > 0.3
    assert verdict_of(diff) == "positive"
    assert verdict_of(paired_difference(y, coin, perfect)) == "negative"
    assert verdict_of(paired_difference(y, coin, coin)) == "neutral"
    assert verdict_of({"value": 0.015, "low": 0.001, "high": 0.03}) == "neutral"   # too small to claim


def test_patients_with_several_images_widen_the_transfer_intervals():
    """20 patients imaged 5 times, each right or wrong on all its images: the intervals are about as wide as
    for 20 images, not 100 (resampling images would pretend 100 independent cases)."""
    rng = np.random.default_rng(2)
    truth = np.repeat(["a", "b"], 10)
    wrong = rng.random(20) < 0.3
    guess = np.where(wrong, np.where(truth == "a", "b", "a"), truth)
    y, pred, groups = np.repeat(truth, 5), np.repeat(guess, 5), np.repeat(np.arange(20), 5)

    def width(interval):
        return interval["high"] - interval["low"]

    per_image = bootstrap_scores(y, pred, seed=0)["balanced_accuracy"]
    per_patient = bootstrap_scores(y, pred, seed=0, groups=groups)["balanced_accuracy"]
    once = bootstrap_scores(truth, guess, seed=0)["balanced_accuracy"]  # one image per patient
    assert per_patient["value"] == per_image["value"] == once["value"]
    assert width(per_patient) > 1.7 * width(per_image)  # sqrt(5) ~ 2.2 in theory
    assert abs(width(per_patient) - width(once)) < 0.35 * width(once)
    paired = paired_difference(y, y, pred, seed=0, groups=groups)
    assert width(paired) > 1.7 * width(paired_difference(y, y, pred, seed=0))
    assert abs(width(paired) - width(paired_difference(truth, truth, guess, seed=0))) < 0.35 * width(once)
    # every image its own patient: the stratified bootstrap, as without groups
    assert bootstrap_scores(y, pred, seed=0, groups=np.arange(100)) == bootstrap_scores(y, pred, seed=0)


def test_reach_counts_epoch_seconds_until_the_target():
    history = [{"epoch": 1, "val_balanced_acc": 0.5, "seconds": 2.0},
               {"epoch": 2, "val_balanced_acc": 0.9, "seconds": 3.0}]
    assert reach(history, 0.9) == (2, 5.0)
    assert reach(history, 0.95) == (None, None)


def test_label_budget_answer_from_the_last_doubling():
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 4
    x = np.concatenate([c + rng.normal(size=(40, 3)) for c in centres])
    y = np.repeat(["a", "b", "c"], 40)
    points = curve_from_embeddings(x[::2], y[::2], x[1::2], y[1::2], shots=(1, 2, 5, None), repeats=2)
    assert [p.shots for p in points] == [1, 2, 5, 10, None]     # half of all (10) added for the answer
    gain, answer, text = answer_of(points)
    assert answer == "unlikely" and abs(gain) < 0.05 and "10 to 20 images per class" in text
