"""The window's split and training's split are one function (``split.divide``); a keep-together group across
parts of a stored split is moved and recorded; an image more elongated than 1:16 is skipped by the scan."""

from __future__ import annotations

from collections import Counter

import pytest
from PIL import Image

from tests.helpers import _photo, write_digits_folder
from tl_desktop.core.config import DataSource
from tl_desktop.core.data.prepared import MAX_ASPECT
from tl_desktop.core.data.review import Review
from tl_desktop.core.data.scan import scan
from tl_desktop.core.data.split import Split, covers, divide, split_source, split_source_reviewed
from tl_desktop.core.events import CancelToken
from tl_desktop.workers.tasks import split_task


@pytest.fixture
def folder(tmp_path):
    return write_digits_folder(tmp_path / "d", classes=(0, 1, 2), per_class=20)


def _task(report, review, stored=None, seed=1):
    return split_task(report, review, stored, val_fraction=0.15, test_fraction=0.15, seed=seed, group_by=None,
                      callback=lambda event: None, cancel=CancelToken())


def _table(report, split) -> Counter:
    return Counter((s.label, split.assignment[s.path]) for s in report.samples if s.path in split.assignment)


def test_the_windows_split_task_is_trainings_split_with_the_review_applied(folder):
    review = Review()
    review.exclude("digit_0/0_000.png")
    review.relabel("digit_1/1_005.png", "digit_2")
    report = scan(folder, cache=False)
    plain, _, _ = _task(report, None)
    divided, check, used = _task(report, review.to_dict())
    assert not used and not check.leaks
    trained_report, trained = split_source(DataSource(data=str(folder), review=review.to_dict(), seed=1))
    assert divided.split.assignment == trained.assignment
    assert _table(divided.report, divided.split) == _table(trained_report, trained)
    assert sum(_table(divided.report, divided.split).values()) == sum(_table(report, plain.split).values()) - 1
    assert ("digit_2", divided.split.assignment["digit_1/1_005.png"]) in _table(divided.report, divided.split)
    # with the split stored (as the window keeps it), the same again: the excluded file only leaves
    stored = plain.split.to_dict()
    again, _, used = _task(report, review.to_dict(), stored)
    _, trained = split_source(DataSource(data=str(folder), review=review.to_dict(), split=stored, seed=1))
    assert used and again.split.assignment == trained.assignment
    assert again.split.assignment == {p: s for p, s in stored["assignment"].items() if p != "digit_0/0_000.png"}
    assert again.stored.assignment == stored["assignment"]  # the project keeps the excluded file's part


def test_a_file_taken_back_from_the_excluded_gets_a_new_split_in_the_window(folder):
    review = Review()
    review.exclude("digit_0/0_000.png")
    report = scan(folder, cache=False)
    made, _, _ = _task(report, review.to_dict())
    assert not covers(made.stored, report)  # the new split never saw the excluded file
    review.keep("digit_0/0_000.png")
    divided, _, used = _task(report, review.to_dict(), made.stored.to_dict())
    assert not used and "digit_0/0_000.png" in divided.split.assignment


def test_keep_together_across_parts_of_a_stored_split_is_moved_recorded_and_kept(folder):
    plain = split_source(DataSource(data=str(folder), seed=1))[1]
    parts = {part: sorted(p for p, s in plain.assignment.items() if s == part) for part in ("train", "val", "test")}
    group = [parts["train"][0], parts["train"][1], parts["test"][0]]  # most of it in training
    review = Review()
    review.keep_together(group)
    review.exclude(parts["val"][0])
    source = DataSource(data=str(folder), review=review.to_dict(), split=plain.to_dict(), seed=1)
    report, split, applied = split_source_reviewed(source)
    assert {split.assignment[p] for p in group} == {"train"}
    assert applied["moved"] == [{"path": parts["test"][0], "from": "test", "to": "train"}]
    assert applied["counts"]["moved"] == 1
    changed = {p for p in split.assignment if split.assignment[p] != plain.assignment[p]}
    assert changed == {parts["test"][0]}
    divided = divide(scan(folder, cache=False), review, stored=plain, seed=1)
    assert divided.split.assignment == split.assignment and divided.applied == applied
    stored = divided.stored  # what the project keeps: the move made, the excluded file still in its part
    assert stored.assignment[parts["test"][0]] == "train" and stored.assignment[parts["val"][0]] == "val"
    again = split_source_reviewed(DataSource(data=str(folder), review=review.to_dict(), split=stored.to_dict(),
                                             seed=1))
    assert again[1].assignment == split.assignment and again[2]["moved"] == []  # training agrees, nothing left


def test_a_tie_goes_to_test_deterministically(folder):
    plain = split_source(DataSource(data=str(folder), seed=1))[1]
    pair = [next(p for p, s in plain.assignment.items() if s == part) for part in ("train", "test")]
    review = Review()
    review.keep_together(pair)
    runs = [split_source_reviewed(DataSource(data=str(folder), review=review.to_dict(), split=plain.to_dict()))
            for _ in range(2)]
    assert runs[0][1].assignment == runs[1][1].assignment
    assert runs[0][2]["moved"] == [{"path": pair[0], "from": "train", "to": "test"}]
    assert isinstance(Split.from_dict(runs[0][1].to_dict()), Split)


def test_an_image_more_elongated_than_the_prepared_cache_takes_is_skipped_by_the_scan(folder):
    strip = folder / "digit_0" / "strip.png"
    _photo("coffee", 400).resize((400, 20)).save(strip)  # 1:20
    fine = folder / "digit_0" / "wide.png"
    _photo("coffee", 320).resize((320, 20)).save(fine)  # 1:16 exactly: the cache takes it
    assert 400 > MAX_ASPECT * 20 and 320 == MAX_ASPECT * 20
    report = scan(folder, cache=False)
    skipped = {s.path: s.reason for s in report.skipped}
    assert skipped == {"digit_0/strip.png": "too elongated: 400 x 20 px (at most 1:16; crop it to the region of "
                                            "interest)"}
    assert "digit_0/wide.png" in {s.path for s in report.samples}
    Image.open(strip).rotate(90, expand=True).save(strip)  # 20 x 400: the same
    assert "digit_0/strip.png" in {s.path for s in scan(folder, cache=False).skipped}
