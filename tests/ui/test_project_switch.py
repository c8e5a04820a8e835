"""State belongs to a project: opening or creating another project resets Train, Evaluate, Export, Predict and
Data, Predict starts from the open project's latest verified export, and choosing another model clears the
answers of the previous one at once. Each step is rendered after the switch (to $TL_SCREENSHOTS when set)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from tl_desktop.core.project import project_file as proj
from tl_desktop.ui.evaluate.view import NO_RUN
from tl_desktop.ui.main_window import MainWindow
from tl_desktop.ui.predict_view import NO_EXPORT


@pytest.fixture
def window(qtbot):
    win = MainWindow(warm_up=False)
    qtbot.addWidget(win)
    win.resize(1280, 860)
    win.show()
    yield win
    win.close()


def _open(window, qtbot, folder: Path) -> None:
    window.open_path(str(folder))
    qtbot.waitUntil(lambda: window.session.split is not None, timeout=30_000)


def _train_one_epoch(window, qtbot) -> None:
    settings = window.session.project.settings
    settings.epochs, settings.strategy, settings.image_size, settings.batch_size = 1, "linear-probe", 32, 16
    settings.augmentation, settings.device = "none", "cpu"
    train = window.views["train"]
    train.form.load(settings)
    window.show_step("train")
    with qtbot.waitSignal(train.run_ended, timeout=180_000):
        train.start_button.click()


def _new_project(window, monkeypatch, parent: Path, name: str) -> None:
    """File > New project with its dialog answered: the name typed, the folder changed to ``parent``."""
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(parent)))
    dialog = window.new_project()
    dialog.name.setText(name)
    dialog.row.change.click()
    dialog.create_button.click()


def _predict(window, qtbot, folder: Path) -> None:
    predict = window.views["predict"]
    predict.predict([str(folder)])
    qtbot.waitUntil(lambda: predict.results.rowCount() > 0, timeout=60_000)


def _reliability_legend(evaluate) -> list[str]:
    legend = evaluate.calibration.plots.reliability.getPlotItem().legend
    return [label.text for _sample, label in legend.items]


def _screenshot(window, name: str) -> None:
    if os.environ.get("TL_SCREENSHOTS"):
        window.grab().save(os.path.join(os.environ["TL_SCREENSHOTS"], f"switch_{name}.png"))


def _screenshots(window, qtbot, tag: str) -> None:
    """Every step (and every Evaluate tab) as the user would see it now."""
    for key in ("data", "train", "evaluate", "export", "predict"):
        window.show_step(key)
        qtbot.wait(50)
        _screenshot(window, f"{tag}_{key}")
    tabs = window.views["evaluate"].tabs
    window.show_step("evaluate")
    for index in range(1, tabs.count()):
        tabs.setCurrentIndex(index)
        qtbot.wait(50)
        _screenshot(window, f"{tag}_evaluate_tab{index}")
    tabs.setCurrentIndex(0)


def test_a_new_project_shows_nothing_of_the_previous_one(window, qtbot, monkeypatch, finished_project,
                                                         digits_dir, tmp_path):
    # Project A: trained in the window, evaluated, exported and used in Predict.
    _open(window, qtbot, finished_project)
    _train_one_epoch(window, qtbot)
    views = window.views
    train, evaluate, export, predict = (views[k] for k in ("train", "evaluate", "export", "predict"))
    assert train.plots.point_count() > 0 and train.log_pane.toPlainText() and "Done" in train.status.text()
    train.evaluation_button.click()  # the run ended on the Train step: the user goes on
    qtbot.waitUntil(lambda: evaluate.metrics is not None, timeout=60_000)
    assert evaluate.matrix.rowCount() == 3 and evaluate.threshold.plots.legend_texts
    assert any("ECE" in text for text in _reliability_legend(evaluate))
    window.show_step("export")
    with qtbot.waitSignal(window.session.runs_changed, timeout=120_000):
        export.button.click()
    exported = Path(export.result.path)
    assert exported.parent == finished_project / "exports" and "verified" in export.table.item(0, 5).text()
    assert predict.model_path.text() == str(exported)  # the project's latest verified export
    _predict(window, qtbot, digits_dir / "digit_1")
    assert predict.save_button.isEnabled()

    _screenshots(window, qtbot, "a")

    # Project B: new and untrained.
    _new_project(window, monkeypatch, tmp_path, "Bears")
    assert window.session.project.folder == tmp_path / "Bears"
    assert train.plots.point_count() == 0 and train.plots.best_label() is None
    assert train.log_pane.toPlainText() == "" and train.status.text() == "Not started."
    assert train.history.count() == 0 and train.progress.value() == 0
    assert evaluate.run_label.text() == NO_RUN and evaluate.metrics is None and not evaluate.banner.isVisible()
    assert evaluate.figures["accuracy"].text() == "–" and evaluate.matrix.rowCount() == 0
    assert evaluate.table.rowCount() == 0 and evaluate.images.shown == []
    assert evaluate.threshold.plots.legend_texts == [] and evaluate.threshold.table.rowCount() == 0
    assert evaluate.threshold.matrix.rowCount() == 0 and evaluate.threshold.positive.count() == 0
    assert evaluate.calibration.ece.text() == "" and evaluate.calibration.figures.text() == ""
    assert not any("ECE" in text for text in _reliability_legend(evaluate))
    assert export.result is None and export.table.rowCount() == 0 and export.where.text() == ""
    assert export.out.text() == "" and not export.button.isEnabled()
    assert predict.model_path.text() == "" and predict.results.rowCount() == 0
    assert not predict.save_button.isEnabled() and predict.model_note.text() == NO_EXPORT
    assert predict.heatmaps.run_dir is None and predict.summary.text() == ""
    data = views["data"]
    assert data.classes.rowCount() == 0 and data.grid.model.rowCount() == 0 and data.report.summary.text() == "No scan yet."
    assert data.split_panel.counts.rowCount() == 0 and data.split_panel.leak.text() == ""
    assert data.source.text() == "No images chosen yet."
    _screenshots(window, qtbot, "new")

    # Back to A: its latest verified export is Predict's model again, named with its run.
    _open(window, qtbot, finished_project)
    run_name = Path(window.session.project.runs[-1].path).name
    assert predict.model_path.text() == str(exported) and predict.results.rowCount() == 0
    assert f"latest verified export, from run {run_name}" in predict.model_note.text()
    qtbot.waitUntil(lambda: "3 classes" in predict.model_note.text(), timeout=30_000)
    assert export.out.text() == str(finished_project / "exports" / exported.name)
    _predict(window, qtbot, digits_dir / "digit_2")
    window.show_step("predict")
    predict.table.clicked.emit(predict.results.index(0, 0))  # a heatmap of the results on screen
    assert predict.heatmaps.run_dir is not None
    qtbot.waitUntil(lambda: predict.heatmaps.current() is not None, timeout=60_000)
    _screenshot(window, "back_predict")

    # Another model file that cannot be opened: nothing of the old model's answers stays, the problem is shown.
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not an onnx model")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(broken), "")))
    predict.choose_model.click()
    assert predict.results.rowCount() == 0 and not predict.save_button.isEnabled()  # at once, before it loads
    assert predict.heatmaps.run_dir is None and predict.summary.text() == ""
    qtbot.waitUntil(lambda: predict.model_problem.isVisible(), timeout=30_000)
    assert "cannot be used" in predict.model_problem.text() and "broken.onnx" in predict.model_problem.text()
    predict.predict([str(digits_dir / "digit_0")])
    assert predict.worker is None and predict.results.rowCount() == 0 and not predict.save_button.isEnabled()
    assert "cannot be used" in predict.summary.text()
    _screenshot(window, "broken_model")


def test_switching_while_training_asks_and_stops_first(window, qtbot, monkeypatch, finished_project, tmp_path):
    other = proj.create(tmp_path / "other", "Other")
    _open(window, qtbot, finished_project)
    settings = window.session.project.settings
    settings.epochs, settings.strategy, settings.image_size, settings.batch_size = 40, "linear-probe", 32, 16
    settings.augmentation, settings.device = "none", "cpu"
    train = window.views["train"]
    train.form.load(settings)
    asked: list[str] = []
    answer = [QMessageBox.StandardButton.No]
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda _p, _t, text: asked.append(text) or answer[0]))
    train.start_button.click()
    assert train.is_training()
    window.open_path(str(other.folder))
    assert asked == [f"Training is running in project {window.session.project.name}: stop it and switch?\n\n"
                     "The epochs finished so far are kept; you can continue the run later."]
    assert window.session.project.folder == finished_project and train.is_training()  # "No": nothing changes
    answer[0] = QMessageBox.StandardButton.Yes
    training_when_switched: list[bool] = []
    window.session.project_changed.connect(lambda _p: training_when_switched.append(train.is_training()))
    window.open_path(str(other.folder))
    assert window.session.project.folder == finished_project  # not before training has stopped
    qtbot.waitUntil(lambda: window.session.project.name == "Other", timeout=120_000)
    assert training_when_switched == [False] and len(asked) == 2
    assert train.log_pane.toPlainText() == "" and train.plots.point_count() == 0 and train.history.count() == 0
