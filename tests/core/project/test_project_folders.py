"""A project keeps what the user makes in visible folders (runs/, exports/, reports/) and the projects folder
defaults to the user's Documents; projects made by earlier versions (in the hidden data folder, without those
folders) still open."""

from __future__ import annotations

import json

from tl_desktop import paths
from tl_desktop.core.project import project_file as proj


def test_a_new_project_has_visible_runs_exports_and_reports_folders(tmp_path):
    project = proj.create(tmp_path / "Chest", "Chest")
    assert sorted(p.name for p in project.folder.iterdir()) == ["exports", "project.json", "reports", "runs"]
    assert (project.runs_dir, project.exports_dir, project.reports_dir) == (
        tmp_path / "Chest" / "runs", tmp_path / "Chest" / "exports", tmp_path / "Chest" / "reports")
    assert project.new_run_dir("probe").parent == project.runs_dir


def test_an_old_project_in_the_hidden_data_folder_still_opens_and_gets_its_folders():
    folder = paths.data_dir() / "projects" / "old"  # where projects went by default before (TL_DESKTOP_HOME)
    (folder / "runs" / "20250101-101010").mkdir(parents=True)
    (folder / "project.json").write_text(json.dumps(
        {"version": 1, "name": "Old", "data_dir": "images", "runs": ["runs/20250101-101010"]}), encoding="utf-8")
    project = proj.load(folder)
    assert project.name == "Old" and project.run_path(project.runs[0]) == folder / "runs" / "20250101-101010"
    assert not (folder / "exports").exists()  # loading alone writes nothing
    assert project.ensure_folders()
    assert (folder / "exports").is_dir() and (folder / "reports").is_dir()


def test_ensure_folders_says_so_on_a_read_only_project(tmp_path, monkeypatch):
    project = proj.create(tmp_path / "p")
    for name in ("exports", "reports"):
        (project.folder / name).rmdir()

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(type(project.folder), "mkdir", refuse)
    assert project.ensure_folders() is False


def test_the_default_projects_folder_is_in_documents_never_the_hidden_data_folder(tmp_path, monkeypatch):
    import platformdirs

    assert paths.default_projects_dir() == paths.data_dir().parent / "projects"  # TL_DESKTOP_HOME keeps tests apart
    monkeypatch.delenv("TL_DESKTOP_HOME")
    documents = tmp_path / "Documents"
    documents.mkdir()
    monkeypatch.setattr(platformdirs, "user_documents_dir", lambda: str(documents))
    assert paths.default_projects_dir() == documents / "tl-desktop projects"
    monkeypatch.setattr(platformdirs, "user_documents_dir", lambda: str(tmp_path / "no-such-folder"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "home"))
    assert paths.default_projects_dir() == tmp_path / "home" / "tl-desktop projects"  # no Documents: home
    assert not (tmp_path / "home").exists()  # only named, never made here
