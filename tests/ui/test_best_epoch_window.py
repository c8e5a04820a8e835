"""Stop after two epochs, "Continue run" to the end: the live plot keeps every epoch, and its best marker, the
log, the run list and Evaluate name the epoch that ``runs.best_epoch`` finds in history.csv."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.ui.training_stop import stopped_after_epoch
from tl_desktop.core import runs
from tl_desktop.core.events import EpochEnded
from tl_desktop.core.project import project_file as proj
from tl_desktop.ui.main_window import MainWindow
from tl_desktop.workers import tasks

EPOCHS, STOP_AFTER = 5, 2


@pytest.fixture
def project(tmp_path, digits_dir) -> Path:
    project = proj.create(tmp_path / "p", "Best epoch")
    project.set_source(digits_dir)
    s = project.settings
    s.epochs, s.strategy, s.image_size, s.batch_size, s.augmentation, s.device = (
        EPOCHS, "linear-probe", 32, 16, "none", "cpu")
    s.patience = 0
    proj.save(project)
    return project.folder


def test_stop_then_continue_shows_every_epoch_and_one_best_epoch(qtbot, project, monkeypatch):
    monkeypatch.setattr(tasks, "train_task", stopped_after_epoch(STOP_AFTER))
    window = MainWindow(warm_up=False)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    window.open_path(str(project))
    qtbot.waitUntil(lambda: window.session.split is not None, timeout=30_000)
    train = window.views["train"]
    window.show_step("train")
    with qtbot.waitSignal(train.run_ended, timeout=120_000):
        train.start_button.click()
    run_dir = proj.load(project).run_path(proj.load(project).runs[0])
    assert runs.read_status(run_dir)["state"] == "cancelled"
    assert train.plots.epochs_shown() == [1, 2]

    train.history.setCurrentRow(0)
    assert train.plots.epochs_shown() == [1, 2]  # reopened: the same two epochs
    resumed: list[list[int]] = []
    with qtbot.waitSignal(train.run_ended, timeout=120_000):
        train.resume_button.click()
        train.worker.progressed.connect(  # what the plot holds as each continued epoch arrives
            lambda e: resumed.append(train.plots.epochs_shown()) if isinstance(e, EpochEnded) else None)
    assert resumed[0] == [1, 2, 3], resumed  # the epochs before the stop stayed on screen

    history = runs.read_history(run_dir)
    best = runs.best_epoch(history)
    assert [int(r["epoch"]) for r in history] == list(range(1, EPOCHS + 1))
    assert json.loads((run_dir / "metrics.json").read_text())["best_epoch"] == best
    assert train.plots.epochs_shown() == list(range(1, EPOCHS + 1))
    qtbot.waitUntil(lambda: train.plots.best_label() == f"best: epoch {best}", timeout=5_000)
    assert f"Finished. Best epoch: {best}." in train.log_pane.toPlainText()
    assert proj.load(project).runs[0].best_epoch == best
    assert f"best epoch {best}" in train.history.item(0).text()
    evaluate = window.views["evaluate"]
    train.evaluation_button.click()  # the run ended on the Train step: the user goes on
    named = re.compile(rf"\bepoch {best}\b")  # "best checkpoint, epoch N, sha256 …"
    qtbot.waitUntil(lambda: "sha256" in evaluate.run_label.text(), timeout=90_000)
    assert named.search(evaluate.run_label.text()), evaluate.run_label.text()
    window.show_step("train")
    if os.environ.get("TL_SCREENSHOTS"):
        train.grab().save(os.path.join(os.environ["TL_SCREENSHOTS"], "train_after_continue.png"))

    train.history.setCurrentRow(0)  # reopened after the end: the same curve and the same best epoch
    assert train.plots.epochs_shown() == list(range(1, EPOCHS + 1)) and train.plots.best_epoch == best
    window.close()
