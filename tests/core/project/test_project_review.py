"""The project's review section: saved and reloaded, migrated from format 2, bounded, and used by training
(``Project.data_source``) and server jobs."""

from __future__ import annotations

import json

import pytest

from tests.helpers import write_digits_folder
from tl_desktop.core.data.split import split_source
from tl_desktop.core.project import project_file as proj


def _project(tmp_path):
    p = proj.create(tmp_path / "p")
    p.set_source(write_digits_folder(p.folder / "images", classes=(0, 1), per_class=12))
    return p


def test_decisions_are_saved_and_reloaded_and_the_files_stay_untouched(tmp_path):
    p = _project(tmp_path)
    before = sorted(x.relative_to(p.folder).as_posix() for x in (p.folder / "images").rglob("*.png"))
    p.review.exclude("digit_0/0_001.png", "near-duplicate", of="digit_0/0_002.png")
    p.review.relabel("digit_1/1_003.png", "digit_0")
    p.review.keep_together(["digit_0/0_004.png", "digit_1/1_004.png"])
    p.review.keep("digit_1/1_005.png")
    proj.save(p)
    q = proj.load(p.folder)
    assert q.review == p.review
    assert json.loads(q.file.read_text())["review"]["excluded"] == {
        "digit_0/0_001.png": {"reason": "near-duplicate", "of": "digit_0/0_002.png"}}
    assert sorted(x.relative_to(p.folder).as_posix() for x in (p.folder / "images").rglob("*.png")) == before


def test_the_next_split_uses_the_projects_decisions(tmp_path):
    p = _project(tmp_path)
    p.review.exclude("digit_0/0_001.png")
    p.review.relabel("digit_1/1_003.png", "digit_0")
    report, split = split_source(p.data_source())
    labels = {s.path: s.label for s in report.samples}
    assert "digit_0/0_001.png" not in labels and labels["digit_1/1_003.png"] == "digit_0"
    assert "digit_0/0_001.png" not in split.assignment


def test_a_format_2_project_migrates_with_no_decisions(tmp_path):
    (tmp_path / "project.json").write_text(json.dumps({"schema_version": 2, "name": "old", "runs": []}))
    p = proj.load(tmp_path)
    assert p.schema_version == 4 and len(p.review) == 0
    proj.save(p)
    assert json.loads((tmp_path / "project.json").read_text())["schema_version"] == 4


@pytest.mark.parametrize(("review", "words"), [
    ({"kept": ["a.png"] * 1_000_000}, "1,000,000 kept files is more than the 100,000"),
    ({"excluded": {"../../home/x.png": {"reason": "user", "of": None}}}, "not a path inside the data folder"),
    ({"relabelled": {"a.png": "x/../y"}}, "cannot be a class name"),
    ({"together": "all"}, "'together' is 'all'"),
])
def test_a_hostile_review_is_refused_in_one_line(tmp_path, review, words):
    (tmp_path / "project.json").write_text(json.dumps({"schema_version": 3, "name": "x", "review": review}))
    with pytest.raises(proj.ProjectError) as caught:
        proj.load(tmp_path)
    message = str(caught.value)
    assert words in message and "\n" not in message and "project.json is damaged" in message


def test_a_job_bundle_carries_the_decisions(tmp_path):
    from tl_desktop.core.project.jobs import create_job, load_job

    p = _project(tmp_path)
    p.review.exclude("digit_0/0_001.png", "label-error")
    p.review.relabel("digit_1/1_003.png", "digit_0")
    proj.save(p)
    job = load_job(create_job(p.folder, tmp_path / "job"))
    files = {f["path"]: f["label"] for f in job["files"]}
    assert "digit_0/0_001.png" not in files and files["digit_1/1_003.png"] == "digit_0"
    assert "digit_0/0_001.png" not in job["split"]["assignment"]
    assert job["config"]["review"]["excluded"]  # the server's training applies them again
