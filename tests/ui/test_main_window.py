"""The main window: opens, offers the sample project, opens projects, remembers them, closes cleanly."""

from __future__ import annotations

import functools

import pytest

from tl_desktop.core.project import project_file as proj
from tl_desktop.ui.main_window import STEPS, MainWindow
from tl_desktop.ui.settings import recent_projects


@pytest.fixture
def window(qtbot):
    win = MainWindow(warm_up=False)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def test_first_start_offers_the_sample_and_locks_project_steps(window):
    assert window.stack.currentWidget() is window.welcome
    assert window.welcome.has_sample_offer()
    assert window.welcome.sample_button.isVisible()
    enabled = {key: bool(window.steps.item(i).flags() & window.steps.item(i).flags().ItemIsEnabled)
               for i, (key, *_rest) in enumerate(STEPS)}
    assert enabled == {"start": True, "data": False, "label": False, "model": False, "train": False, "evaluate": False,
                       "export": False, "predict": True}


def test_every_setting_has_a_tooltip(window):
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractItemView,
        QAbstractSpinBox,
        QComboBox,
        QLineEdit,
        QTabBar,
    )

    internal = (QComboBox, QAbstractSpinBox, QTabBar, QAbstractItemView)  # Qt's own sub-widgets

    missing = []
    for view in window.views.values():
        for cls in (QComboBox, QAbstractSpinBox, QLineEdit, QAbstractButton):
            for widget in view.findChildren(cls):
                if isinstance(widget.parent(), internal) or widget.objectName().startswith("qt_"):
                    continue
                if not widget.toolTip():
                    missing.append(f"{type(view).__name__}: {type(widget).__name__} {getattr(widget, 'text', lambda: '')()}")
    assert not missing, missing


def test_sample_button_builds_and_opens_the_sample(window, qtbot, monkeypatch):
    import tl_desktop.sample as sample

    monkeypatch.setattr(sample, "build_sample_project",
                        functools.partial(sample.build_sample_project, size=32, per_class=12))
    window.welcome.sample_button.click()
    qtbot.waitUntil(lambda: window.session.project is not None, timeout=20_000)
    assert window.session.project.name == sample.SAMPLE_NAME
    assert window.stack.currentWidget() is window.views["data"]
    qtbot.waitUntil(lambda: window.session.split is not None, timeout=30_000)
    report = window.session.report
    assert len(report.classes) == 10 and len(report.samples) == 120
    assert window.views["data"].grid.model.rowCount() == 120
    assert recent_projects()[0] == window.session.project.folder
    # where the user looks for it (the projects folder), with its visible runs/ exports/ reports/, never the
    # hidden data folder
    from tl_desktop import paths
    from tl_desktop.ui.settings import projects_folder

    folder = window.session.project.folder
    assert folder.parent == projects_folder() and folder.name == sample.SAMPLE_FOLDER
    assert paths.data_dir() not in folder.parents
    assert all((folder / name).is_dir() for name in ("runs", "exports", "reports"))


def test_project_round_trip_through_the_window(window, qtbot, tmp_path, digits_dir):
    project = proj.create(tmp_path / "p", "Digits")
    project.set_source(digits_dir)
    proj.save(project)
    window.open_path(str(project.folder))
    qtbot.waitUntil(lambda: window.session.split is not None, timeout=30_000)
    window.views["train"].form.epochs.setValue(7)
    window.session.save()
    assert proj.load(project.folder).settings.epochs == 7
    assert proj.load(project.folder).split["assignment"] == window.session.split.to_dict()["assignment"]
    window.close()
    # Reopening restores the stored split instead of making a new one.
    again = MainWindow(warm_up=False)
    qtbot.addWidget(again)
    again.open_path(str(project.folder))
    qtbot.waitUntil(lambda: again.session.split is not None, timeout=30_000)
    assert again.session.split.to_dict() == window.session.split.to_dict()
    assert again.views["train"].form.epochs.value() == 7
    again.close()


def test_unreadable_project_gives_a_readable_dialog(window, tmp_path):
    (tmp_path / "project.json").write_text("{ broken")
    window.open_path(str(tmp_path))
    assert window.session.project is None
    from PySide6.QtWidgets import QMessageBox

    boxes = window.findChildren(QMessageBox, "errorDialog")
    assert boxes and "cannot be read" in boxes[-1].text()
    assert boxes[-1].informativeText()


def test_the_selected_steps_icon_stays_visible_on_the_selection(window, qtbot):
    """The step icons are drawn blue; on the blue selection the selected one is drawn white, at the size the
    step list draws it (an icon that was white only at 32 px showed blue on blue in the 22 px list)."""
    from PySide6.QtGui import QIcon

    from tl_desktop.ui.widgets.common import ICON_BLUE, icon

    def colours(mode, size):
        image = icon("train").pixmap(size, size, mode).toImage()
        return {image.pixelColor(x, y).name() for x in range(size) for y in range(size)
                if image.pixelColor(x, y).alpha() > 200}

    for size in (22, 32, 44):
        assert ICON_BLUE in colours(QIcon.Mode.Normal, size)
        assert colours(QIcon.Mode.Selected, size) == {"#ffffff"}
    # In the window: the selected step's icon, as the list paints it on the blue selection, holds white.
    steps = window.steps
    qtbot.waitExposed(window)

    def white_in_icon(row: int) -> int:
        rect = steps.visualItemRect(steps.item(row))
        side = steps.iconSize().width() + 8
        image = steps.viewport().grab(rect.adjusted(0, 0, side - rect.width(), 0)).toImage()
        return sum(1 for x in range(image.width()) for y in range(image.height())
                   if min(image.pixelColor(x, y).getRgb()[:3]) > 235)

    predict = [steps.item(r).text() for r in range(steps.count())].index("6  Predict")  # enabled without a project
    steps.setCurrentRow(predict)
    qtbot.wait(50)
    rect = steps.visualItemRect(steps.item(predict))
    corner = steps.viewport().grab(rect).toImage().pixelColor(rect.width() - 3, 2)
    assert corner.blue() > corner.red() + 60, corner.name()  # the selection is blue, not white
    assert white_in_icon(predict) > 20
