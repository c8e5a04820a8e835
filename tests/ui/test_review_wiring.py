"""The Data step's split table comes from training's own split (``split.divide``): a review decision re-splits
it at once, its counts are those ``split_source`` gives, and a keep-together group across parts of the stored
split is moved there too, so the project's stored split and training agree (real digit images)."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from tests.helpers import write_digits_folder
from tl_desktop.core.data.split import split_source

SUBSETS = ("train", "val", "test")


@pytest.fixture
def data_view(qtbot, tmp_path):
    from tl_desktop.ui.data.view import DataView
    from tl_desktop.ui.session import Session

    root = write_digits_folder(tmp_path / "images", classes=(0, 1, 2), per_class=12)
    session = Session()
    view = DataView(session)
    qtbot.addWidget(view)
    view.resize(1280, 820)
    view.show()
    session.create(tmp_path / "p", "Wiring")
    view.set_source(root, "folder")
    qtbot.waitUntil(lambda: session.split is not None, timeout=60_000)
    qtbot.waitUntil(lambda: not view.split_worker.is_running(), timeout=30_000)
    yield view
    view.shutdown()


def _table(view) -> dict[str, list[int]]:
    """The split table as the user reads it: class -> [training, validation, test]."""
    table = view.split_panel.counts
    return {table.item(r, 0).text(): [int(table.item(r, c).text()) for c in (1, 2, 3)]
            for r in range(table.rowCount())}


def _expected(view) -> dict[str, list[int]]:
    report, split = split_source(view.session.project.data_source())
    tally = Counter((s.label, split.assignment[s.path]) for s in report.samples)
    rows = {c: [tally[(c, s)] for s in SUBSETS] for c in report.classes}
    rows["All classes"] = [sum(rows[c][i] for c in report.classes) for i in range(3)]
    return rows


def _decide(view, qtbot, change) -> None:
    with qtbot.waitSignal(view.session.split_changed, timeout=30_000):
        assert view.session.change_review(change)
    qtbot.waitUntil(lambda: not view.split_worker.is_running(), timeout=30_000)


def test_exclude_and_relabel_change_the_split_table_as_training_splits(data_view, qtbot):
    before = _table(data_view)
    split = data_view.session.split
    excluded = "digit_0/0_003.png"
    relabelled = "digit_1/1_004.png"
    gone, moved = SUBSETS.index(split.assignment[excluded]), SUBSETS.index(split.assignment[relabelled])
    _decide(data_view, qtbot, lambda review: review.exclude(excluded))
    _decide(data_view, qtbot, lambda review: review.relabel(relabelled, "digit_2"))
    after = _table(data_view)
    assert after == _expected(data_view)
    assert after["digit_0"][gone] == before["digit_0"][gone] - 1
    assert after["digit_1"][moved] == before["digit_1"][moved] - 1
    assert after["digit_2"][moved] == before["digit_2"][moved] + 1
    assert sum(after["All classes"]) == sum(before["All classes"]) - 1
    assert data_view.split_panel.reviewed.text() == ("Your review decisions are included: 1 image left out, "
                                                     "1 image relabelled.")
    assert excluded not in data_view.session.split.assignment
    classes = {data_view.classes.item(r, 0).text(): data_view.classes.item(r, 1).text()
               for r in range(data_view.classes.rowCount())}
    assert classes["digit_0"] == "11  (scan found 12; your review changed it)"  # the class table agrees
    assert classes["digit_2"] == "13  (scan found 12; your review changed it)"
    assert classes["All classes"].startswith("35  (scan found 36")
    data_view.session.save()
    stored = json.loads(data_view.session.project.file.read_text())["split"]["assignment"]
    assert stored[excluded] == split.assignment[excluded]  # the project keeps its part, for an Undo
    if folder := os.environ.get("TL_SCREENSHOTS"):
        qtbot.wait(100)  # the labels' new heights laid out
        data_view.grab().save(os.path.join(folder, "review-wiring.png"))


def test_keep_together_across_stored_parts_moves_the_group_in_the_project(data_view, qtbot):
    split = data_view.session.split
    train = sorted(p for p, s in split.assignment.items() if s == "train")
    test = sorted(p for p, s in split.assignment.items() if s == "test")
    group = [train[0], train[1], test[0]]
    _decide(data_view, qtbot, lambda review: review.keep_together(group))
    assert {data_view.session.split.assignment[p] for p in group} == {"train"}
    assert data_view.split_panel.reviewed.text().endswith("1 image moved to another part to stay together.")
    data_view.session.save()
    stored = json.loads(data_view.session.project.file.read_text())["split"]["assignment"]
    assert {stored[p] for p in group} == {"train"}
    assert {p for p in stored if stored[p] != split.assignment[p]} == {test[0]}
    assert _table(data_view) == _expected(data_view)
    _, trained = split_source(data_view.session.project.data_source())
    assert trained.assignment == data_view.session.split.assignment


def test_the_table_after_reopening_the_project_keeps_the_decisions(data_view, qtbot, tmp_path):
    from tl_desktop.ui.data.view import DataView
    from tl_desktop.ui.session import Session

    _decide(data_view, qtbot, lambda review: review.exclude("digit_2/2_000.png"))
    expected, split = _table(data_view), dict(data_view.session.split.assignment)
    data_view.session.save()
    session = Session()
    view = DataView(session)
    qtbot.addWidget(view)
    messages: list[str] = []
    session.message.connect(messages.append)
    session.open_path(tmp_path / "p")
    qtbot.waitUntil(lambda: session.split is not None and view.split_worker is not None
                    and not view.split_worker.is_running(), timeout=60_000)
    assert _table(view) == expected and session.split.assignment == split
    assert not any("changed since the split" in m for m in messages)
    view.shutdown()
