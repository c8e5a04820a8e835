"""Continue training from a finished run with new images and a new class, from the Train step."""

from __future__ import annotations

import json
import os
import shutil

from tests.helpers import write_digits_folder
from tl_desktop.core import runs
from tl_desktop.core.project import project_file as proj
from tl_desktop.ui.main_window import MainWindow


def test_continue_with_a_new_class_from_the_train_step(qtbot, finished_project, finished_run, digits_dir, tmp_path):
    images = shutil.copytree(digits_dir, tmp_path / "more-images")  # same files: their old subsets are kept
    write_digits_folder(images, classes=(7,), per_class=30, size=32)
    project = proj.load(finished_project)
    project.set_source(images)
    project.split = None
    proj.save(project)

    window = MainWindow(warm_up=False)
    qtbot.addWidget(window)
    window.show()
    window.open_path(str(finished_project))
    qtbot.waitUntil(lambda: window.session.split is not None, timeout=30_000)
    train = window.views["train"]
    window.show_step("train")
    train.history.setCurrentRow(0)
    assert train.further_button.isEnabled() and not train.resume_button.isEnabled()
    with qtbot.waitSignal(train.run_ended, timeout=120_000):
        train.further_button.click()
    saved = proj.load(finished_project)
    assert len(saved.runs) == 2
    new_run = saved.run_path(saved.runs[1])
    config = runs.load_config(new_run)
    assert config.init_from is not None and config.init_from.run_dir == str(finished_run.resolve())
    assert config.class_names == ["digit_0", "digit_1", "digit_2", "digit_7"]
    metrics = json.loads((new_run / "metrics.json").read_text())
    assert metrics["continued"]["old_test_images"] > 0
    assert "forgetting" in train.log_pane.toPlainText()
    earlier_rows, new_rows = runs.read_history(finished_run), runs.read_history(new_run)
    window.show_step("train")
    for _shown in ("live", "reopened"):  # the earlier run's curve first (dashed), then this run's epochs
        assert train.plots.earlier_run == finished_run.name
        assert train.plots.earlier["val_loss"][1] == [r["val_loss"] for r in earlier_rows]
        assert max(train.plots.earlier["val_loss"][0]) < 1 <= min(train.plots.epochs_shown())
        assert train.plots.epochs_shown() == [int(r["epoch"]) for r in new_rows]
        assert train.plots.best_epoch == runs.best_epoch(new_rows) == metrics["best_epoch"]
        if os.environ.get("TL_SCREENSHOTS"):
            train.grab().save(os.path.join(os.environ["TL_SCREENSHOTS"], f"continued_{_shown}.png"))
        train.history.setCurrentRow(0)  # the new run, listed first
    window.close()
