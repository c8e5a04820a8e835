"""Review decisions (excluded, relabelled, keep-together) as the split and the run's manifest apply them."""

from __future__ import annotations

import shutil

import pytest

from tests.helpers import write_digits_folder
from tl_desktop.core.config import DataSource, TrainConfig
from tl_desktop.core.data.review import Review, apply_review, merge_together, review_problem
from tl_desktop.core.data.scan import scan
from tl_desktop.core.data.split import make_split, split_source, split_source_reviewed
from tl_desktop.core.errors import DataError


@pytest.fixture
def folder(tmp_path):
    return write_digits_folder(tmp_path / "d", classes=(0, 1, 2), per_class=20)


def _source(root, review: Review, split=None) -> DataSource:
    return DataSource(data=str(root), review=review.to_dict(), split=split, seed=1)


def test_excluded_files_leave_the_split_and_relabelled_ones_take_the_new_label(folder):
    review = Review()
    review.exclude("digit_0/0_000.png", "near-duplicate", of="digit_0/0_001.png")
    review.relabel("digit_1/1_005.png", "digit_2")
    review.relabel("digit_1/1_006.png", "unsure")  # a new class name
    report, split, applied = split_source_reviewed(_source(folder, review))
    labels = {s.path: s.label for s in report.samples}
    assert "digit_0/0_000.png" not in labels and "digit_0/0_000.png" not in split.assignment
    assert labels["digit_1/1_005.png"] == "digit_2" and labels["digit_1/1_006.png"] == "unsure"
    assert report.classes == ["digit_0", "digit_1", "digit_2", "unsure"]
    assert report.counts == {"digit_0": 19, "digit_1": 18, "digit_2": 21, "unsure": 1}
    assert set(split.assignment) == set(labels)
    assert applied["counts"] == {"excluded": 1, "relabelled": 2, "together_groups": 0, "together_files": 0,
                                 "not_found": 0, "moved": 0}
    assert applied["excluded"] == [{"path": "digit_0/0_000.png", "reason": "near-duplicate",
                                    "of": "digit_0/0_001.png"}]
    assert {"path": "digit_1/1_005.png", "from": "digit_1", "to": "digit_2"} in applied["relabelled"]


def test_keep_together_lands_in_one_part_in_a_new_and_in_a_stored_split(folder):
    plain = split_source(DataSource(data=str(folder), seed=1))[1]
    by_part = {part: [p for p, s in plain.assignment.items() if s == part] for part in ("train", "test")}
    pair = [by_part["train"][0], by_part["test"][0]]  # they crossed parts without the decision
    review = Review()
    review.keep_together(pair)
    fresh = split_source(_source(folder, review))[1]
    assert fresh.assignment[pair[0]] == fresh.assignment[pair[1]]
    stored = split_source(_source(folder, review, split=plain.to_dict()))[1]
    assert stored.assignment[pair[0]] == stored.assignment[pair[1]] == "test"  # a tie: test wins
    moved = {p for p in plain.assignment if plain.assignment[p] != stored.assignment[p]}
    assert moved == {pair[0]}  # nothing else of the stored split changed


def test_a_together_group_pulls_its_patients_files_along():
    groups = {"a": "p1", "b": "p1", "c": None, "d": "p2"}
    merged = merge_together(groups, [["b", "c"]])
    assert merged["a"] == merged["b"] == merged["c"] != merged.get("d")
    assert merged["d"] == "p2"


def test_decisions_not_in_the_scan_are_counted_not_applied(folder):
    review = Review()
    review.exclude("digit_0/gone.png")
    report = scan(folder, cache=False)
    reviewed, applied = apply_review(report, review)
    assert len(reviewed.samples) == len(report.samples)
    assert applied["counts"]["not_found"] == 1 and applied["excluded"] == []


def test_one_decision_per_file_and_undo():
    review = Review()
    review.relabel("a/x.png", "b")
    review.exclude("a/x.png", "label-error")
    assert review.relabelled == {} and review.excluded["a/x.png"].reason == "label-error"
    review.keep("a/x.png")
    assert review.excluded == {} and review.kept == ["a/x.png"]
    review.keep_together(["a/1.png", "a/2.png"])
    review.keep_together(["a/2.png", "b/3.png"])  # overlapping groups join
    assert review.together == [["a/2.png", "b/3.png", "a/1.png"]]
    review.undo("together", 0)
    review.undo("kept", "a/x.png")
    assert len(review) == 0


@pytest.mark.parametrize("path", ["../outside.png", "/etc/passwd", "a/../../b.png", "C:/x.png", "a\\..\\..\\b",
                                  "", "a//b.png"])
def test_a_path_outside_the_data_root_is_refused(path):
    with pytest.raises(DataError, match="not a"):
        Review().exclude(path)
    assert "not a" in review_problem({"excluded": {path: {"reason": "user", "of": None}}})


@pytest.mark.parametrize("label", ["", " x", "a/b", "..", "a:b", "x" * 200])
def test_a_new_class_name_is_checked_like_a_folder_name(label):
    with pytest.raises(DataError):
        Review().relabel("a/x.png", label)


def test_a_hostile_review_section_is_refused_by_its_size_at_once():
    huge = {"kept": ["a.png"] * 1_000_000}
    assert review_problem(huge) == "1,000,000 kept files is more than the 100,000 a review may hold"
    assert "unknown key" in review_problem({"deleted": []})
    assert "reason" in review_problem({"excluded": {"a.png": {"reason": "rm -rf"}}})
    assert "keep-together group" in review_problem({"together": [["a.png"]]})


def test_the_manifest_records_the_decisions_applied(tmp_path):
    from tl_desktop.core.training.run import _start

    root = write_digits_folder(tmp_path / "d", classes=(0, 1), per_class=12)
    review = Review()
    review.exclude("digit_0/0_003.png", "label-error")
    review.relabel("digit_1/1_004.png", "digit_0")
    config = TrainConfig(data=str(root), out=str(tmp_path / "run"), strategy="linear-probe", image_size=32,
                         seed=3, workers=0, review=review.to_dict())
    _start(config)
    import json

    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    files = {f["path"]: f["label"] for f in manifest["files"]}
    assert "digit_0/0_003.png" not in files and files["digit_1/1_004.png"] == "digit_0"
    assert manifest["review"]["counts"]["excluded"] == 1 and manifest["review"]["counts"]["relabelled"] == 1
    config_json = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config_json["review"] is None  # recorded in the manifest, not in the resolved config


def test_make_split_without_decisions_is_unchanged(folder, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    report = scan(copy, cache=False)
    assert make_split(report, seed=4).assignment == make_split(report, seed=4, together=()).assignment
