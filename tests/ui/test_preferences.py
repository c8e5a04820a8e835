"""The Settings dialog and the theme: values persist in QSettings (and the engine's cache setting), bad values
are refused in plain words, the dark theme re-colours the window, the plots and the confusion matrix."""

from __future__ import annotations

import pyqtgraph as pg
import pytest
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from tl_desktop import paths
from tl_desktop.core.data.prepared import cache_limit_gb
from tl_desktop.core.project import project_file as proj
from tl_desktop.ui import settings, theme
from tl_desktop.ui.preferences import SettingsDialog
from tl_desktop.ui.session import Session
from tl_desktop.ui.widgets.confusion import ConfusionMatrix
from tl_desktop.ui.widgets.plots import TrainingPlots

Window, Base, Text = QPalette.ColorRole.Window, QPalette.ColorRole.Base, QPalette.ColorRole.Text


@pytest.fixture(autouse=True)
def _restore_look(qapp, monkeypatch):
    """Every test leaves the application's palette, style, sheet, pyqtgraph defaults and cache variable as found."""
    monkeypatch.delenv(paths.CACHE_DIR_ENV, raising=False)
    monkeypatch.delenv("TL_DESKTOP_CACHE_GB", raising=False)
    palette, style, sheet = QPalette(qapp.palette()), qapp.style().name(), qapp.styleSheet()
    options = {key: pg.getConfigOption(key) for key in ("background", "foreground")}
    yield
    theme._Started.current = ""
    qapp.setStyle(style)
    qapp.setPalette(palette)
    qapp.setStyleSheet(sheet)
    pg.setConfigOptions(**options)


@pytest.fixture
def dialog(qtbot):
    widget = SettingsDialog()
    qtbot.addWidget(widget)
    return widget


def _pick_theme(dialog: SettingsDialog, name: str) -> None:
    next(b for b in dialog.themes.buttons() if b.property("theme") == name).setChecked(True)


def test_settings_persist_across_a_new_read(dialog, tmp_path):
    projects, cache = tmp_path / "my projects", tmp_path / "my cache"
    dialog.projects.setText(str(projects))
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.cache_gb.setText("7,5")  # a comma as the decimal mark is fine
    dialog.cache_folder.setText(str(cache))
    _pick_theme(dialog, "dark")
    dialog.accept()
    assert dialog.result() == SettingsDialog.DialogCode.Accepted
    fresh = settings.app_settings()  # a new QSettings object reads the file again
    assert fresh.value(settings.PROJECTS_FOLDER_KEY) == str(projects)
    assert fresh.value(settings.DEVICE_KEY) == "cpu"
    assert fresh.value(settings.THEME_KEY) == "dark"
    assert fresh.value(settings.CACHE_FOLDER_KEY) == str(cache)
    assert projects.is_dir()
    assert cache_limit_gb() == 7.5  # the engine's own setting: the command line and jobs honour it too
    assert paths.cache_dir() == cache  # applied to this process for the next job
    reopened = SettingsDialog()
    assert (reopened.projects.text(), reopened.device.currentData(), reopened.cache_gb.text(),
            reopened.cache_folder.text(), reopened.theme()) == (str(projects), "cpu", "7.5", str(cache), "dark")
    reopened.deleteLater()


@pytest.mark.parametrize("field, text, words", [
    ("cache_gb", "0.1", "between 0.5 and 10,000"),
    ("cache_gb", "lots", "must be a number of GB"),
    ("cache_gb", "nan", "between 0.5"),
    ("projects", "FILE/sub", "cannot be created"),
    ("cache_folder", "FILE/sub", "cannot be created"),
    ("projects", "   ", "Enter a projects folder"),
])
def test_invalid_values_are_refused_with_a_plain_message(dialog, tmp_path, field, text, words):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    before = (settings.projects_folder(), cache_limit_gb(), settings.cache_folder(), settings.theme())
    getattr(dialog, field).setText(text.replace("FILE", str(blocker)))
    _pick_theme(dialog, "dark")
    dialog.show()
    dialog.accept()
    assert dialog.result() != SettingsDialog.DialogCode.Accepted and dialog.isVisible()
    assert dialog.problem.isVisible() and words in dialog.problem.text()
    assert "Traceback" not in dialog.problem.text()
    assert (settings.projects_folder(), cache_limit_gb(), settings.cache_folder(), settings.theme()) == before
    assert not theme.is_dark()  # nothing applied either


def test_a_new_project_starts_with_the_default_device(qtbot, tmp_path):
    settings.set_default_device("cpu")
    session = Session()
    project = session.create(tmp_path / "p", "P")
    assert project.settings.device == "cpu"
    assert proj.load(tmp_path / "p").settings.device == "cpu"  # saved, not only in memory
    settings.set_default_device("auto")
    assert Session().create(tmp_path / "q", "Q").settings.device == "auto"


def test_unknown_stored_values_fall_back_to_the_defaults():
    store = settings.app_settings()
    store.setValue(settings.THEME_KEY, "purple")
    store.setValue(settings.DEVICE_KEY, "tpu")
    store.sync()
    assert (settings.theme(), settings.default_device()) == ("system", "auto")
    with pytest.raises(ValueError):
        settings.set_theme("purple")


def test_dark_theme_recolours_window_plots_and_confusion_matrix(qtbot):
    plots = TrainingPlots()
    matrix = ConfusionMatrix()
    qtbot.addWidget(plots)
    qtbot.addWidget(matrix)
    matrix.set_matrix(["a", "b"], [[9, 1], [2, 8]])
    light_window = QApplication.palette().color(Window)
    light_background = plots.loss_plot.backgroundBrush().color()

    assert theme.apply_theme("dark") == "dark"
    qtbot.wait(10)
    palette = QApplication.palette()
    assert palette.color(Window) != light_window and palette.color(Window).lightness() < 80
    assert plots.loss_plot.backgroundBrush().color() == palette.color(Base) != light_background
    axis = plots.acc_plot.getPlotItem().getAxis("left")
    assert axis.textPen().color() == palette.color(Text)
    legend_label = plots.loss_plot.getPlotItem().legend.items[0][1]
    assert palette.color(Text).name() in legend_label.item.toHtml()
    assert plots._best_lines[0].label.fill.color().rgb() == palette.color(Base).rgb()
    # a cell under half of its row keeps the palette's text colour: light on the dark window
    assert matrix.item(0, 1).foreground().color() == palette.color(Text)
    assert pg.getConfigOption("background") == palette.color(Base)  # plots made later too

    assert theme.apply_theme("light") == "light"
    qtbot.wait(10)
    assert QApplication.palette().color(Window) == light_window
    assert plots.loss_plot.backgroundBrush().color() == light_background
    assert matrix.item(0, 1).foreground().color() == QApplication.palette().color(Text)


def test_follow_the_system(qtbot, monkeypatch):
    monkeypatch.setattr(theme, "system_is_dark", lambda: True)
    assert theme.apply_theme("system") == "dark" and theme.is_dark()
    monkeypatch.setattr(theme, "system_is_dark", lambda: False)
    theme._on_system_change()  # the desktop switched back to light while the app runs
    assert not theme.is_dark()
    theme.apply_theme("dark")
    theme._on_system_change()  # a chosen theme does not follow the desktop
    assert theme.is_dark()


def test_dark_from_the_dialog_applies_without_restart(dialog, qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    _pick_theme(dialog, "dark")
    dialog.accept()
    assert theme.is_dark()
    qtbot.waitUntil(lambda: plots.loss_plot.backgroundBrush().color() == QApplication.palette().color(Base))
