"""Fixtures of the GUI tests: a project with one finished run and its clinical evaluation, made once per
session (three real digit classes at 32 px, a linear probe) and copied for each test that uses it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def _finished_project_template(tmp_path_factory, digits_dir) -> Path:
    from tl_desktop.core.evaluation.run_evaluation import evaluate_clinical
    from tl_desktop.core.fsutil import read_json
    from tl_desktop.core.project import project_file as proj
    from tl_desktop.core.training.run import train

    folder = tmp_path_factory.mktemp("finished") / "digits"
    project = proj.create(folder, "Digits")
    project.set_source(digits_dir)
    s = project.settings
    s.epochs, s.strategy, s.image_size, s.batch_size, s.augmentation, s.device = 2, "linear-probe", 32, 16, "none", "cpu"
    run_dir = project.new_run_dir("probe")
    result = train(project.train_config(run_dir))
    manifest = read_json(run_dir / "manifest.json")
    project.split = manifest["split"]  # the split the run used, as the GUI stores it
    project.add_run(run_dir, model=s.model, strategy="linear-probe", best_epoch=result.best_epoch,
                    metrics={"accuracy": result.test_metrics["accuracy"]})
    proj.save(project)
    evaluate_clinical(run_dir, n_boot=200)
    return folder


@pytest.fixture
def finished_project(_finished_project_template, tmp_path) -> Path:
    """A fresh copy of the project folder (project.json, runs/<run> with metrics.json and clinical.json)."""
    copy = tmp_path / "digits"
    shutil.copytree(_finished_project_template, copy)
    return copy


@pytest.fixture
def finished_run(finished_project) -> Path:
    return next((finished_project / "runs").iterdir())
