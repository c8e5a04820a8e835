"""The typed configuration: config.json round trip, migration of version-1 files, one-line errors, and the
project's settings sharing the engine's fields and defaults."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tl_desktop.core import runs
from tl_desktop.core.config import SCHEMA_VERSION, ContinuedFrom, DataSource, RunConfig, TrainConfig
from tl_desktop.core.errors import RunError
from tl_desktop.core.project.project_file import TrainSettings

DATA_CONFIG = {"input_size": [3, 32, 32], "interpolation": "bicubic", "mean": [0.5, 0.5, 0.5],
               "std": [0.5, 0.5, 0.5], "crop_pct": 0.875, "crop_mode": "center"}


def version_1(**changes) -> dict:
    """config.json as the code before schema versions wrote it: TrainConfig.to_dict() plus the resolved keys."""
    old = {"data": "/data/digits", "out": "/runs/a", "model": "tf_efficientnet_lite0", "strategy": "linear-probe",
           "epochs": 3, "batch_size": 16, "lr": 0.02, "image_size": 32, "augmentation": "light", "allow_flip": False,
           "allow_rotate": False, "label_smoothing": 0.0, "balance": "auto", "patience": 5, "device": "auto",
           "workers": None, "seed": 4, "val_fraction": 0.15, "test_fraction": 0.15, "group_by": None, "csv": None,
           "weights_file": None, "fine_tune_stages": 2, "init_from": None, "split": None,
           "strategy_requested": "auto", "class_names": ["a", "b"], "weights": "pretrained",
           "weights_source": "timm ImageNet weights", "data_config": DATA_CONFIG,
           "versions": {"torch": "2.5.1", "timm": "1.0.12"}, "train_counts": {"a": 10, "b": 3}, "skipped_files": 1}
    old.update(changes)
    return old


def test_a_version_1_config_json_migrates_and_loads(tmp_path):
    earlier = {"run_dir": "/runs/first", "class_names": ["a"]}
    (tmp_path / "config.json").write_text(json.dumps(version_1(init_from=earlier)))
    config = runs.load_config(tmp_path)
    assert config.schema_version == SCHEMA_VERSION == 2
    assert config.strategy == "linear-probe" and config.strategy_requested == "auto" and config.lr == 0.02
    assert config.init_from == ContinuedFrom("/runs/first", ["a"])
    assert config.source == DataSource(data="/data/digits", seed=4)
    assert config.input_size == (3, 32, 32) and config.train_counts == {"a": 10, "b": 3}


def test_an_old_version_1_config_gets_the_later_options_defaults():
    old = version_1()
    for key in ("allow_rotate", "fine_tune_stages", "label_smoothing", "train_counts", "skipped_files",
                "weights_source", "strategy_requested", "weights_file"):
        del old[key]
    config = RunConfig.from_dict(old)
    assert (config.allow_rotate, config.fine_tune_stages, config.label_smoothing) == (False, 2, 0.0)
    assert config.train_counts == {} and config.skipped_files == 0 and config.weights_source == "unknown"
    assert config.strategy_requested == "linear-probe"


def test_round_trip_through_config_json(tmp_path):
    config = RunConfig.from_dict(version_1(init_from={"run_dir": "/r", "class_names": ["a", "b"]}))
    runs.write_config(tmp_path, config)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["schema_version"] == SCHEMA_VERSION and written["init_from"] == {"run_dir": "/r",
                                                                                      "class_names": ["a", "b"]}
    assert runs.load_config(tmp_path) == config
    request = TrainConfig(data="d", out="o", epochs=3, group_by="csv")
    assert TrainConfig.from_dict(request.to_dict()) == request


@pytest.mark.parametrize(("change", "message"), [
    ({"class_names": None}, r"'class_names' is None, which is not a valid list\[str\]"),
    ({"epochs": "ten"}, r"'epochs' is 'ten', which is not a valid int"),
    ({"allow_flip": 1}, r"'allow_flip' is 1"),
    ({"lr": None}, r"'lr' is None"),
    ({"data_config": {**DATA_CONFIG, "input_size": [3, 32]}}, r"'data_config' has no valid 'input_size'"),
    ({"schema_version": 9}, r"newer tl-desktop \(format 9\)"),
    ({"schema_version": 2, "colour": "red"}, r"unknown field\(s\) colour"),
])
def test_an_invalid_config_json_is_a_one_line_run_error(tmp_path, change, message):
    (tmp_path / "config.json").write_text(json.dumps(version_1(**change)))
    with pytest.raises(RunError, match=message) as caught:
        runs.load_config(tmp_path)
    assert "\n" not in str(caught.value) and str(caught.value).startswith(f"{tmp_path.name}: config.json")


def test_an_incomplete_config_json_names_what_is_missing(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"class_names": ["a", "b"]}))
    with pytest.raises(RunError, match="config.json is incomplete: data, .*data_config missing"):
        runs.load_config(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(RunError, match="not a JSON object"):
        runs.load_config(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(RunError, match="cannot be read"):
        runs.load_config(tmp_path)


def test_project_settings_are_the_engine_options_with_the_same_defaults():
    """Fails when an option is added to TrainConfig but not to the project's settings, or the other way round,
    or when their defaults or types drift apart."""
    engine = {f.name: f for f in dataclasses.fields(TrainConfig)}
    project = {f.name: f for f in dataclasses.fields(TrainSettings)}
    assert set(project) == set(engine) - {"data", "csv", "split", "review", "labels", "label_columns", "out",
                                             "init_from"}  # label_columns: the CSV decides in the window
    for name, f in project.items():
        assert (f.default, f.type) == (engine[name].default, engine[name].type), name
    settings = TrainSettings()
    settings.epochs = 4  # the widgets edit it in place
    assert TrainSettings.from_dict({"epochs": 4, "from_a_newer_app": 1}) == settings
