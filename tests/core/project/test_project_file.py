"""project.json: round trip, relative data paths, migration from the pre-release format, atomic save."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tl_desktop.core.project import project_file as proj


def test_round_trip_restores_everything(tmp_path):
    p = proj.create(tmp_path / "chest", "Chest X-ray")
    data = p.folder / "images"
    data.mkdir()
    p.set_source(data)
    p.split = {"seed": 3, "val_fraction": 0.2, "test_fraction": 0.1, "group_by": "dicom:PatientID",
               "assignment": {"a/1.png": "train", "b/2.png": "test"}}
    p.settings.epochs = 4
    p.settings.lr = 3e-4
    p.settings.allow_flip = True
    p.add_run(p.runs_dir / "run-1", model="resnet18", best_epoch=2, metrics={"accuracy": 0.91})
    proj.save(p)

    q = proj.load(p.folder)
    assert q.name == "Chest X-ray"
    assert q.source.path == "images"  # stored relative: the project folder can move
    assert q.source_path() == data.resolve()
    assert q.split == p.split
    assert q.settings == p.settings
    assert q.runs[0].path == "runs/run-1" and q.runs[0].metrics == {"accuracy": 0.91}
    assert q.run_path(q.runs[0]) == p.folder / "runs" / "run-1"


def test_source_outside_project_is_absolute(tmp_path):
    p = proj.create(tmp_path / "p")
    p.set_source(tmp_path / "elsewhere.csv", kind="csv")
    assert p.source.path == (tmp_path / "elsewhere.csv").as_posix()
    assert p.source.kind == "csv"


def test_add_run_updates_existing_entry(tmp_path):
    p = proj.create(tmp_path / "p")
    p.add_run(p.runs_dir / "r", best_epoch=1)
    p.add_run(p.runs_dir / "r", best_epoch=3, cancelled=True)
    assert len(p.runs) == 1 and p.runs[0].best_epoch == 3 and p.runs[0].cancelled


def test_migrates_pre_release_format(tmp_path):
    (tmp_path / "project.json").write_text(json.dumps(
        {"version": 1, "name": "old", "data_dir": "imgs", "runs": ["runs/a", "runs/b"],
         "settings": {"epochs": 7, "obsolete_option": 1}}))
    p = proj.load(tmp_path / "project.json")
    assert p.schema_version == proj.SCHEMA_VERSION
    assert p.source.kind == "folder" and p.source.path == "imgs"
    assert [r.path for r in p.runs] == ["runs/a", "runs/b"]
    assert p.settings.epochs == 7
    proj.save(p)
    assert json.loads((tmp_path / "project.json").read_text())["schema_version"] == proj.SCHEMA_VERSION


def test_newer_schema_is_refused_readably(tmp_path):
    (tmp_path / "project.json").write_text(json.dumps({"schema_version": 99, "name": "x"}))
    with pytest.raises(proj.ProjectError, match="newer tl-desktop"):
        proj.load(tmp_path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(proj.ProjectError, match="no project"):
        proj.load(tmp_path)
    (tmp_path / "project.json").write_text("{ not json")
    with pytest.raises(proj.ProjectError, match="cannot be read"):
        proj.load(tmp_path)


def test_create_refuses_existing_project(tmp_path):
    proj.create(tmp_path)
    with pytest.raises(proj.ProjectError, match="already holds"):
        proj.create(tmp_path)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    p = proj.create(tmp_path)
    before = p.file.read_text()

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr("tl_desktop.core.fsutil.os.replace", boom)
    p.name = "changed"
    with pytest.raises(OSError):
        proj.save(p)
    assert p.file.read_text() == before
    assert [f.name for f in tmp_path.iterdir() if f.is_file()] == ["project.json"]  # and runs/, exports/, reports/


def test_scan_summary_and_safe_names():
    report = SimpleNamespace(root="/d", files_seen=5, samples=[1, 2, 3], skipped=[1], classes=["a", "b"],
                             counts={"a": 2, "b": 1}, duplicates=[], warnings=["few images"], unusable=None)
    s = proj.scan_summary(report)
    assert s["samples"] == 3 and s["skipped"] == 1 and s["counts"] == {"a": 2, "b": 1}
    assert proj.safe_folder_name('a/b:c*? ') == "a_b_c_"
    assert proj.safe_folder_name("...") == "project"


def test_train_config_is_the_projects_data_split_and_settings(tmp_path):
    from tl_desktop.core.config import DataSource, TrainConfig

    p = proj.create(tmp_path / "p")
    with pytest.raises(proj.ProjectError, match="choose the images"):
        p.train_config(tmp_path / "out")
    p.set_source(tmp_path / "labels.csv", kind="csv")
    p.split = {"seed": 0}
    p.settings.epochs, p.settings.seed, p.settings.group_by = 3, 7, "csv"
    config = p.train_config(p.new_run_dir("lite0"))
    assert isinstance(config, TrainConfig) and config.epochs == 3
    assert config.data == str(tmp_path) and config.csv == str(tmp_path / "labels.csv")
    assert config.split == {"seed": 0} and "/runs/" in config.out.replace("\\", "/")
    assert config.source == p.data_source() == DataSource(data=str(tmp_path), csv=str(tmp_path / "labels.csv"),
                                                          seed=7, group_by="csv", split={"seed": 0})
