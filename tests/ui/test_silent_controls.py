"""Controls that used to do nothing or speak too late (issue 19): a disabled step says what to do first, and
Predict asks for a model before the user picks images, not after; the line goes once a model is chosen."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QFileDialog

from tl_desktop.ui.main_window import STEPS, MainWindow
from tl_desktop.ui.predict_view import CHOOSE_MODEL_FIRST, PredictView
from tl_desktop.ui.session import Session


def test_a_disabled_step_says_to_open_a_project_first(qtbot, tmp_path):
    win = MainWindow(warm_up=False)
    qtbot.addWidget(win)
    rows = {key: row for row, (key, *_rest) in enumerate(STEPS)}
    train = win.steps.item(rows["train"])
    assert "create or open a project first" in train.toolTip()
    assert "project first" not in win.steps.item(rows["predict"]).toolTip()  # Predict needs no project
    win.session.create(tmp_path / "p", "P")
    assert "project first" not in train.toolTip() and train.toolTip().startswith("Train (")
    win.close()


def test_predict_asks_for_the_model_before_any_image_and_forgets_it_after(qtbot, monkeypatch, tmp_path):
    view = PredictView(Session())
    qtbot.addWidget(view)

    def no_dialog(*args, **kwargs):
        pytest.fail("the image chooser opened although no model is chosen")

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", no_dialog)
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", no_dialog)
    view._choose_folder()
    assert view.summary.text() == CHOOSE_MODEL_FIRST
    view._choose_files()
    assert view.summary.text() == CHOOSE_MODEL_FIRST
    missing = tmp_path / "gone.onnx"
    view.set_model(str(missing))
    assert view.summary.text() == ""  # the request belongs to no model any more
    qtbot.waitUntil(lambda: view.model_problem.isVisible() or view.model_error is not None, timeout=30_000)
    view.shutdown()
