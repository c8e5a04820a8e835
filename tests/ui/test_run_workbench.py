"""The Train step's run list as a workbench, on real tiny runs (three digits at 32 px, linear probe): rename
(kept after reopening, refused in place), delete (to the trash, refused while the run trains), compare (the
figures of each run's metrics.json, one curve per run), a selected run's settings and epochs; Evaluate's
mistakes name the true class; after a run ends the Train step stays with its final curves."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tl_desktop.core import runs
from tl_desktop.core.evaluation.stored_result import ImageResult
from tl_desktop.core.project import project_file as proj
from tl_desktop.ui.evaluate.images import ImagesPane
from tl_desktop.ui.main_window import MainWindow
from tl_desktop.ui.session import Session
from tl_desktop.ui.train import runs_panel
from tl_desktop.ui.train.view import TrainView


def _shot(widget, name: str) -> None:
    folder = os.environ.get("TL_SCREENSHOTS")
    if folder:
        widget.grab().save(str(Path(folder) / name))


@pytest.fixture(scope="session")
def _two_runs_template(_finished_project_template, tmp_path_factory) -> Path:
    """The finished project (a 2-epoch run) plus a second run of 3 epochs at 64 px, trained by the engine."""
    from tl_desktop.core.training.run import train

    folder = tmp_path_factory.mktemp("two_runs") / "digits"
    shutil.copytree(_finished_project_template, folder)
    project = proj.load(folder)
    s = project.settings
    s.epochs, s.image_size = 3, 64
    run_dir = project.new_run_dir("bigger")
    result = train(project.train_config(run_dir))
    project.add_run(run_dir, model=s.model, strategy="linear-probe", best_epoch=result.best_epoch,
                    metrics={"accuracy": result.test_metrics["accuracy"]})
    proj.save(project)
    return folder


@pytest.fixture
def two_runs(_two_runs_template, tmp_path) -> Path:
    copy = tmp_path / "digits"
    shutil.copytree(_two_runs_template, copy)
    return copy


@pytest.fixture
def view(qtbot, two_runs):
    session = Session()
    widget = TrainView(session)
    qtbot.addWidget(widget)
    widget.resize(1366, 768)
    widget.show()
    session.open_path(two_runs)
    qtbot.waitUntil(lambda: widget.form.ready, timeout=60_000)  # the device list, queried when shown
    yield widget
    widget.shutdown()


def _folders(project_folder: Path) -> list[Path]:
    project = proj.load(project_folder)
    return [project.run_path(e) for e in project.runs]


def test_rename_is_kept_after_reopening_and_an_empty_name_is_refused_in_place(qtbot, view, two_runs):
    older, newer = _folders(two_runs)
    view.history.setCurrentRow(1)  # the list is newest first: row 1 is the older run
    dialog = view.runs_panel.rename()
    qtbot.addWidget(dialog)
    dialog.name.setText("   ")
    dialog.rename_button.click()
    assert dialog.isVisible() and dialog.problem.isVisible() and "Type a name" in dialog.problem.text()
    assert proj.load(two_runs).runs[0].name == ""
    dialog.name.setText("Small images")
    dialog.rename_button.click()
    assert not dialog.isVisible()
    assert view.history.item(1).text().startswith("Small images")
    view.history.setCurrentRow(0)
    duplicate = view.runs_panel.rename()
    qtbot.addWidget(duplicate)
    duplicate.name.setText("small IMAGES")
    duplicate.rename_button.click()
    assert duplicate.isVisible() and "already named" in duplicate.problem.text()
    duplicate.reject()

    reopened = TrainView(Session())
    qtbot.addWidget(reopened)
    reopened.session.open_path(two_runs)
    assert reopened.history.item(1).text().startswith("Small images")
    assert _folders(two_runs) == [older, newer] and older.is_dir()  # the folder keeps its name
    reopened.shutdown()


def test_delete_moves_the_run_to_the_trash_and_forgets_it(qtbot, view, two_runs, tmp_path, monkeypatch):
    trash = tmp_path / "trash"
    trash.mkdir()
    monkeypatch.setattr(runs_panel, "move_to_trash", lambda folder: bool(shutil.move(folder, trash / folder.name)))
    older, newer = _folders(two_runs)
    view.history.setCurrentRow(0)
    view.runs_panel.delete_button.click()
    assert view.history.count() == 1 and not newer.exists() and (trash / newer.name).is_dir()
    assert [proj.load(two_runs).run_path(e) for e in proj.load(two_runs).runs] == [older]
    assert "moved to the trash" in view.runs_panel.note.text()
    assert Path(view.history.currentItem().data(Qt.ItemDataRole.UserRole)) == older  # the one left is shown


def test_without_a_trash_delete_asks_and_names_the_folder(qtbot, view, two_runs, monkeypatch):
    asked = []
    monkeypatch.setattr(runs_panel, "move_to_trash", lambda folder: False)
    monkeypatch.setattr(runs_panel, "confirm_permanent_delete",
                        lambda parent, names, folders: asked.append((names, folders)) or False)
    older, newer = _folders(two_runs)
    view.history.setCurrentRow(0)
    view.runs_panel.delete_button.click()
    assert asked and asked[0][1] == [newer] and newer.is_dir() and view.history.count() == 2  # "no": kept
    monkeypatch.setattr(runs_panel, "confirm_permanent_delete", lambda parent, names, folders: True)
    view.runs_panel.delete_button.click()
    assert not newer.exists() and view.history.count() == 1 and len(proj.load(two_runs).runs) == 1


def test_compare_shows_each_runs_metrics_and_one_curve_per_run(qtbot, view, two_runs):
    view.runs_panel.compare()  # one run selected: says what to do, in place
    assert "Select two or more runs" in view.runs_panel.note.text()
    view.history.selectAll()
    window = view.runs_panel.compare()
    qtbot.addWidget(window)
    window.resize(1366, 768)
    folders = list(reversed(_folders(two_runs)))  # list order: newest first
    for column, folder in enumerate(folders, start=1):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert window.figures.item(0, 0).text() == "Test accuracy"
        assert window.figures.item(0, column).text() == f"{100 * metrics['accuracy']:.1f} %"
        assert window.figures.item(1, column).text() == f"{100 * metrics['balanced_accuracy']:.1f} %"
        history = runs.read_history(folder)
        curve = window.curves["val_acc"][column - 1]
        assert list(curve.xData) == [row["epoch"] for row in history]
        assert list(curve.yData) == pytest.approx([100 * row["val_acc"] for row in history])
    assert len(window.curves["val_acc"]) == len(window.curves["val_loss"]) == 2
    assert {"Image size", "Epochs (at most)"} <= set(window.differing())
    assert "Network" not in window.differing()
    row = [window.settings.item(r, 0).text() for r in range(window.settings.rowCount())].index("Image size")
    assert window.settings.item(row, 1).text() == "64 × 64 px" and window.settings.item(row, 2).text() == "32 × 32 px"
    assert window.settings.item(row, 1).background().color().alpha() > 0  # highlighted
    window.only_differences.setChecked(True)
    hidden = [window.settings.isRowHidden(r) for r in range(window.settings.rowCount())]
    assert any(hidden) and not window.settings.isRowHidden(row)
    window.only_differences.setChecked(False)
    window.show()
    _shot(window, "compare_runs.png")


def test_selecting_a_run_shows_its_settings_epochs_and_facts(view, two_runs):
    older, _newer = _folders(two_runs)
    view.history.setCurrentRow(1)
    settings = {view.details.settings.item(r, 0).text(): view.details.settings.item(r, 1).text()
                for r in range(view.details.settings.rowCount())}
    assert settings["Image size"] == "32 × 32 px" and settings["Epochs (at most)"] == "2"
    assert settings["Training method"].startswith("Train only the last layer")
    history = runs.read_history(older)
    assert view.details.history.rowCount() == len(history) == 2
    best = runs.best_epoch(history)
    assert view.details.history.item(best - 1, 0).text() == f"{best} (best)"
    assert view.details.history.item(0, 1).text() == f"{history[0]['train_loss']:.3f}"
    text = view.history.item(1).text()
    metrics = json.loads((older / "metrics.json").read_text())
    assert "32 px" in text and "2 of 2 epochs" in text and f"best epoch {best}" in text
    assert "Train only the last layer" in text and f"test accuracy {100 * metrics['accuracy']:.1f} %" in text
    view.details.setCurrentWidget(view.details.settings)
    _shot(view, "train_run_list.png")


def test_the_mistakes_name_the_true_class(qtbot, finished_project):
    project = proj.load(finished_project)
    root = project.source_path()
    images = sorted(root.rglob("*.png"))[:2]
    pane = ImagesPane()
    qtbot.addWidget(pane)
    pane.resize(1366, 600)
    pane.set_run(None, root, ["digit_0", "digit_1", "digit_2"])
    answers = [ImageResult(str(images[0].relative_to(root)), "digit_0", "digit_2",
                           {"digit_0": 0.1, "digit_1": 0.2, "digit_2": 0.7}),
               ImageResult(str(images[1].relative_to(root)), "digit_0", "not sure",
                           {"digit_0": 0.4, "digit_1": 0.3, "digit_2": 0.3})]
    pane.show_images(answers, "2 mistakes")
    model = pane.gallery.model
    texts = [model.data(model.index(r), Qt.ItemDataRole.DisplayRole) for r in range(model.rowCount())]
    assert texts == ["true: digit_0\nmodel: digit_2 70%", "true: digit_0\nmodel: not sure 40%"]
    pane.show()
    if os.environ.get("TL_SCREENSHOTS"):
        qtbot.wait(1500)  # the thumbnails load in the background
    _shot(pane, "evaluate_mistakes.png")
    pane.shutdown()


def test_after_a_run_ends_the_train_step_stays_with_its_final_curves(qtbot, finished_project):
    window = MainWindow(warm_up=False)
    qtbot.addWidget(window)
    window.resize(1366, 768)
    window.show()
    window.open_path(str(finished_project))
    qtbot.waitUntil(lambda: window.session.split is not None, timeout=30_000)
    train = window.views["train"]
    window.show_step("train")
    settings = window.session.project.settings
    settings.epochs, settings.device = 2, "cpu"
    train.form.load(settings)
    with qtbot.waitSignal(train.run_ended, timeout=180_000):
        train.start_button.click()
        qtbot.waitUntil(lambda: train.history.count() == 2, timeout=120_000)  # recorded when the fit starts
        training = Path(train.history.item(0).data(Qt.ItemDataRole.UserRole))
        train.history.setCurrentRow(0)
        train.runs_panel.delete_button.click()  # refused while it trains
        assert "is training now" in train.runs_panel.note.text() and training.is_dir()
        assert train.history.count() == 2
    assert runs.read_status(training)["state"] == "finished"
    assert window.stack.currentWidget() is train  # no jump: the final curves first
    assert train.plots.epochs_shown() == [1, 2] and train.evaluation_button.isVisible()
    assert train.details.run_dir == training and train.details.history.rowCount() == 2
    _shot(window, "train_after_run.png")
    train.evaluation_button.click()
    assert window.stack.currentWidget() is window.views["evaluate"]
    window.close()
