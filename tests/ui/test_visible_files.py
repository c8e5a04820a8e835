"""Files where a user looks: the projects folder asked on first start, new projects created in it (an empty
name refused in the dialog), runs/exports/reports inside the project, every report in its own dated folder,
and "Show in folder" that says where the file is (with Copy path) when no file manager opens.

Dialogs are rendered to $TL_SCREENSHOTS when set."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QFileDialog, QLabel

from tl_desktop.core.project import project_file as proj
from tl_desktop.ui import settings
from tl_desktop.ui.main_window import MainWindow
from tl_desktop.ui.widgets.files import FileLocationDialog, open_file, show_in_folder


@pytest.fixture
def window(qtbot):
    win = MainWindow(warm_up=False)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    yield win
    win.close()


@pytest.fixture
def no_file_manager(monkeypatch):
    """QDesktopServices.openUrl fails as it does where no file manager is installed; the URLs asked for."""
    asked: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: asked.append(url.toLocalFile()) and False))
    return asked


def _shot(widget, name: str) -> None:
    if os.environ.get("TL_SCREENSHOTS"):
        widget.grab().save(os.path.join(os.environ["TL_SCREENSHOTS"], name))


def _choose_folder(monkeypatch, folder: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder)))


# --- the projects folder and new projects -------------------------------------------------------------------

def test_first_start_asks_for_the_projects_folder_and_stores_it(window, qtbot, monkeypatch, tmp_path):
    dialog = window.first_start()
    assert dialog is not None and dialog.isVisible()
    assert dialog.row.folder() == Path(os.environ["TL_DESKTOP_HOME"]) / "projects"  # Documents/… outside tests
    assert any("runs/" in text.text() for text in dialog.findChildren(QLabel))  # says what a project holds
    _shot(dialog, "first_start_projects_folder.png")
    chosen = tmp_path / "My projects"
    _choose_folder(monkeypatch, chosen)
    dialog.row.change.click()
    assert dialog.row.folder() == chosen and not chosen.exists()
    dialog.ok.click()
    assert not dialog.isVisible() and chosen.is_dir()
    assert settings.projects_folder_chosen() and settings.projects_folder() == chosen
    assert str(chosen) in window.welcome.folder_note.text()
    assert window.first_start() is None  # asked once


def test_first_start_says_in_place_when_the_folder_cannot_be_made(window, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    dialog = window.first_start()
    dialog.row.path.setText(str(blocker / "projects"))
    dialog.ok.click()
    assert dialog.isVisible() and dialog.problem.isVisible() and "choose another" in dialog.problem.text()
    assert not settings.projects_folder_chosen()


def test_a_new_project_goes_into_the_projects_folder(window, tmp_path):
    folder = settings.set_projects_folder(tmp_path / "Projects")
    dialog = window.new_project()
    assert dialog.isVisible() and dialog.row.folder() == folder  # proposed without asking
    dialog.name.setText("Chest X-ray: effusion")
    assert str(folder / "Chest X-ray_ effusion") in dialog.where.text()
    _shot(dialog, "new_project.png")
    dialog.create_button.click()
    project = window.session.project
    assert project is not None and project.name == "Chest X-ray: effusion"
    assert project.folder == folder / "Chest X-ray_ effusion"
    assert all((project.folder / name).is_dir() for name in ("runs", "exports", "reports"))
    assert window.stack.currentWidget() is window.views["data"]


def test_an_empty_project_name_is_refused_in_the_dialog(window, tmp_path):
    settings.set_projects_folder(tmp_path / "Projects")
    dialog = window.new_project()
    for name in ("", "   "):
        dialog.name.setText(name)
        dialog.create_button.click()
        assert dialog.isVisible() and dialog.problem.isVisible()
        assert dialog.problem.text() == "Type a name for the project first."
    _shot(dialog, "new_project_empty_name.png")
    assert window.session.project is None and not any((tmp_path / "Projects").iterdir())
    dialog.name.setText("Bears")
    assert not dialog.problem.isVisible()  # typing clears the line


def test_a_name_already_used_in_the_folder_is_refused_in_the_dialog(window, tmp_path):
    folder = settings.set_projects_folder(tmp_path / "Projects")
    proj.create(folder / "Bears", "Bears")
    dialog = window.new_project()
    dialog.name.setText("Bears")
    dialog.create_button.click()
    assert dialog.isVisible() and "already a project named “Bears”" in dialog.problem.text()
    assert window.session.project is None


def test_a_project_in_the_old_hidden_location_still_opens_from_the_recent_list(window):
    from tl_desktop import paths

    old = paths.data_dir() / "projects" / "Old"  # the default folder of earlier versions
    old.mkdir(parents=True)
    (old / "project.json").write_text(json.dumps({"version": 1, "name": "Old", "runs": []}), encoding="utf-8")
    settings.add_recent_project(old)
    window.welcome.refresh()
    assert window.welcome.recent.count() == 1
    window.welcome.recent_requested.emit(str(old))
    assert window.session.project is not None and window.session.project.folder == old
    assert (old / "exports").is_dir() and (old / "reports").is_dir()  # given its visible folders


# --- Show in folder -------------------------------------------------------------------------------------

def test_show_in_folder_opens_the_folder_when_a_file_manager_does(qtbot, monkeypatch, tmp_path):
    asked: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: asked.append(url.toLocalFile()) or True))
    file = tmp_path / "model.onnx"
    file.write_bytes(b"x")
    assert show_in_folder(file) is None and asked == [str(tmp_path)]
    assert show_in_folder(tmp_path) is None and asked[-1] == str(tmp_path)


def test_show_in_folder_without_a_file_manager_says_where_and_copies_the_path(qtbot, no_file_manager, tmp_path):
    file = tmp_path / "exports" / "digits.onnx"
    file.parent.mkdir()
    file.write_bytes(b"x")
    dialog = show_in_folder(file)
    qtbot.addWidget(dialog)
    assert isinstance(dialog, FileLocationDialog) and dialog.isVisible() and no_file_manager == [str(file.parent)]
    assert "No file manager opened" in dialog.message.text() and "The file is here" in dialog.message.text()
    assert dialog.path_box.text() == str(file) and dialog.path_box.isReadOnly()
    _shot(dialog, "show_in_folder_no_file_manager.png")
    QGuiApplication.clipboard().setText("something else")
    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == str(file)
    assert dialog.copy_button.text() == "Copied ✓" and dialog.isVisible()


def test_show_in_folder_of_a_deleted_folder_says_it_is_gone(qtbot, no_file_manager, tmp_path):
    dialog = show_in_folder(tmp_path / "gone" / "report.pdf")
    qtbot.addWidget(dialog)
    assert "not there any more" in dialog.message.text() and "It was here" in dialog.message.text()
    assert no_file_manager == []  # nothing to open


def test_the_log_file_says_where_it_is_when_no_program_opens_it(window, no_file_manager):
    window.log_file.parent.mkdir(parents=True, exist_ok=True)
    window.log_file.write_text("log\n")
    window.show_log()
    dialog = window.findChild(FileLocationDialog)
    assert dialog is not None and dialog.isVisible() and dialog.path_box.text() == str(window.log_file)
    assert open_file(window.log_file, window) is not None and no_file_manager == [str(window.log_file)] * 2


# --- runs, exports and reports inside the project ----------------------------------------------------------

def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_exports_and_reports_land_in_the_project_each_report_in_its_own_folder(
        window, qtbot, monkeypatch, finished_project, no_file_manager):
    for name in ("exports", "reports"):  # as a project of an earlier version: only runs/
        shutil.rmtree(finished_project / name, ignore_errors=True)
    window.open_path(str(finished_project))
    run_dir = window.session.run_dir
    assert run_dir is not None and run_dir.parent == finished_project / "runs"
    assert (finished_project / "exports").is_dir() and (finished_project / "reports").is_dir()

    export = window.views["export"]
    window.show_step("export")
    with qtbot.waitSignal(window.session.runs_changed, timeout=180_000):
        export.button.click()
    exported = Path(export.result.path)
    assert exported.parent == finished_project / "exports" and exported.is_file()
    export.open_folder.click()  # no file manager: the message names the file and copies its path
    assert export.location_message is not None and export.location_message.path_box.text() == str(exported)
    export.location_message.copy_button.click()
    assert QGuiApplication.clipboard().text() == str(exported)
    export.location_message.close()

    evaluate = window.views["evaluate"]
    reports = []
    for _ in range(2):  # two reports in a row (the same minute): two folders
        evaluate.last_report = None
        evaluate.write_report()  # the default: the project's reports/ folder
        qtbot.waitUntil(lambda: evaluate.last_report is not None, timeout=180_000)
        reports.append(Path(evaluate.last_report.pdf).parent)
        if len(reports) == 1:
            first = _files(reports[0])
    assert reports[0] != reports[1] and {r.parent for r in reports} == {finished_project / "reports"}
    assert re.fullmatch(rf"\d{{4}}-\d\d-\d\d \d{{4}} {re.escape(run_dir.name)}", reports[0].name), reports[0].name
    assert reports[1].name == f"{reports[0].name} (2)" or reports[1].name[:15] != reports[0].name[:15]
    assert _files(reports[0]) == first  # the first report is untouched
    for report in reports:
        assert {"report.pdf", "report.html", "audit", "figures"} <= {p.name for p in report.iterdir()}
    assert not (finished_project / "reports" / "report.pdf").exists()  # nothing loose

    evaluate.report_note.linkActivated.emit("file:")  # the report's link: its folder, or where it is
    dialog = evaluate.findChild(FileLocationDialog)
    assert dialog is not None and dialog.path_box.text() == str(reports[1])
    assert no_file_manager[-1] == str(reports[1])


def test_a_report_into_a_chosen_folder_goes_into_a_dated_folder_there(window, qtbot, monkeypatch, finished_project,
                                                                      tmp_path):
    window.open_path(str(finished_project))
    evaluate = window.views["evaluate"]
    chosen = tmp_path / "Desktop"
    chosen.mkdir()
    (chosen / "report.pdf").write_bytes(b"someone else's report")
    seen: list[str] = []

    def choose(_parent, _caption, start):
        seen.append(start)
        return str(chosen)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(choose))
    evaluate.choose_report_folder()
    assert seen == [str(finished_project / "reports")]  # the dialog starts in the project's reports/
    qtbot.waitUntil(lambda: evaluate.last_report is not None, timeout=180_000)
    folder = Path(evaluate.last_report.pdf).parent
    assert folder.parent == chosen and (folder / "report.pdf").read_bytes().startswith(b"%PDF")
    assert (chosen / "report.pdf").read_bytes() == b"someone else's report"
    assert sorted(p.name for p in chosen.iterdir()) == sorted(["report.pdf", folder.name])


def test_the_dated_folder_rule(tmp_path):
    import datetime as dt

    from tl_desktop.report.folders import default_parent, new_report_folder

    project = proj.create(tmp_path / "Chest", "Chest")
    run = project.new_run_dir("probe")
    assert default_parent(run) == project.reports_dir
    assert default_parent(tmp_path / "loose-run") == tmp_path / "loose-run" / "reports"
    at = dt.datetime(2026, 12, 2, 14, 5, 31)
    first = new_report_folder(project.reports_dir, run, at)
    assert first == project.reports_dir / f"2026-12-02 1405 {run.name}" and not first.exists()
    first.mkdir()
    assert new_report_folder(project.reports_dir, run, at).name == f"2026-12-02 1405 {run.name} (2)"
    (project.reports_dir / f".{first.name} (2).partial").mkdir()  # a report being written right now
    assert new_report_folder(project.reports_dir, run, at).name == f"2026-12-02 1405 {run.name} (3)"


def test_the_start_page_names_the_projects_folder_and_shows_it(window, no_file_manager, tmp_path):
    folder = settings.set_projects_folder(tmp_path / "Projects")
    window.welcome.refresh()
    assert f"New projects go into {folder}" in window.welcome.folder_note.text()
    window.welcome.folder_note.linkActivated.emit("show")
    dialog = window.welcome.findChild(FileLocationDialog)
    assert no_file_manager == [str(folder)] and dialog.path_box.text() == str(folder)
