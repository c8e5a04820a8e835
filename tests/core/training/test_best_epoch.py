"""One best-epoch rule: the loop's ``best`` checkpoint, metrics.json, the checkpoint sidecars and
``runs.best_epoch`` over history.csv name the same epoch, and a resumed run's history holds every epoch once."""

from __future__ import annotations

import json
import math

from tl_desktop.core import runs
from tl_desktop.core.events import CancelToken, EpochEnded
from tl_desktop.core.training.run import TrainConfig, resume, train


def _row(epoch: int, score: float, loss: float, **extra) -> dict:
    return {"epoch": epoch, "val_balanced_acc": score, "val_loss": loss, **extra}


def test_the_rule_prefers_score_then_lower_loss_then_the_earliest_epoch():
    assert runs.best_epoch([]) is None
    assert runs.best_epoch([_row(1, 0.5, 1.0), _row(2, 0.9, 2.0), _row(3, 0.8, 0.1)]) == 2  # score first
    assert runs.best_epoch([_row(1, 0.9, 0.7), _row(2, 0.9, 0.4), _row(3, 0.9, 0.6)]) == 2  # tie: lower loss
    assert runs.best_epoch([_row(1, 0.9, 0.4), _row(2, 0.9, 0.4), _row(3, 0.5, 0.1)]) == 1  # full tie: earliest
    assert runs.best_epoch([_row(1, 1.0, 0.3), _row(2, 1.0, 0.2), _row(3, 1.0, 0.2)]) == 2


def test_the_rule_reads_older_rows_and_history_files(tmp_path):
    older = [{"epoch": 1, "val_acc": 0.6, "val_loss": 0.9}, {"epoch": 2, "val_acc": 0.7, "val_loss": 1.1}]
    assert runs.best_epoch(older) == 2  # no balanced accuracy recorded: plain validation accuracy
    rows = [_row(e, s, loss, train_loss=1.0, train_acc=0.5, val_acc=s, lr=0.1, seconds=1.0, images_per_s=9.0)
            for e, s, loss in ((1, 0.8, 0.5), (2, 0.95, 1 / 3), (3, 0.95, 0.3333))]
    runs.write_history(tmp_path, rows)
    assert runs.best_epoch(runs.read_history(tmp_path)) == 3  # floats survive the CSV exactly
    assert runs.best_key(rows[2]) > runs.best_key(rows[1]) > (-math.inf, -math.inf)


def test_the_earlier_history_of_a_run_that_continued_none_is_none(tmp_path):
    assert runs.earlier_history(tmp_path) is None  # not a run folder: no curve, no failure


def _stop_after(epoch: int, token: CancelToken, seen: list):
    def callback(event):
        seen.append(event)
        if isinstance(event, EpochEnded) and event.epoch == epoch:
            token.cancel()
    return callback


def _recorded_best(run_dir) -> dict[str, int]:
    folder = run_dir / "checkpoints"
    return {"history": runs.best_epoch(runs.read_history(run_dir)),
            "metrics.json": json.loads((run_dir / "metrics.json").read_text())["best_epoch"],
            "best.json": json.loads((folder / "best.json").read_text())["epoch"],
            "best.safetensors": runs.load_checkpoint(run_dir, "best")[2]["epoch"],
            "last.json": json.loads((folder / "last.json").read_text())["loop"]["best_epoch"]}


def test_resume_after_a_stop_keeps_every_epoch_once_and_one_best_epoch(digits_dir, tmp_path):
    run = tmp_path / "run"
    config = TrainConfig(data=str(digits_dir), out=str(run), strategy="linear-probe", epochs=5, image_size=32,
                         batch_size=16, seed=5, patience=0, workers=0, lr=2e-2)
    token, first = CancelToken(), []
    assert train(config, _stop_after(2, token, first), token).cancelled
    assert [int(r["epoch"]) for r in runs.read_history(run)] == [1, 2]
    later: list = []
    result = resume(run, later.append)
    history = runs.read_history(run)
    assert [int(r["epoch"]) for r in history] == [1, 2, 3, 4, 5]
    live = [e for e in first + later if isinstance(e, EpochEnded)]
    assert [e.epoch for e in live] == [1, 2, 3, 4, 5]
    for row, event in zip(history, live, strict=True):  # the file holds what the window was told
        assert row["val_loss"] == event.val_loss and row["val_balanced_acc"] == event.val_balanced_acc
    recorded = _recorded_best(run)
    assert set(recorded.values()) == {result.best_epoch}, recorded
    assert live[-1].best_epoch == result.best_epoch
    assert [e.epoch for e in live if e.is_best][-1] == result.best_epoch
