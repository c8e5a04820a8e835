"""The training manifest refuses a split that leaks, by the kind of the leakage finding: files without a group
value are only a caution and do not stop training, a group in two subsets does."""

from __future__ import annotations

import pytest

from tests.helpers import write_digits_folder
from tl_desktop.core.data.scan import scan
from tl_desktop.core.data.split import leakage, make_split
from tl_desktop.core.errors import TrainingError
from tl_desktop.core.training.run import _manifest


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = write_digits_folder(tmp_path_factory.mktemp("guard") / "d", classes=(0, 1), per_class=12)
    return scan(root, cache=False)


def test_files_without_a_group_value_do_not_stop_training(report):
    split = make_split(report, seed=0, group_by=r"regex:(0_00\d)")  # only ten digit_0 files match
    assert [f.kind for f in leakage(report, split)] == ["no-group-value"]
    manifest = _manifest(report, split)
    assert len(manifest["files"]) == len(report.samples)


def test_a_group_in_two_subsets_stops_training(report):
    split = make_split(report, seed=0, group_by=r"regex:digit_(\d)/")  # one group per class
    moved = next(p for p, s in split.assignment.items() if s == "train")
    split.assignment[moved] = "test"
    assert "group-crosses-splits" in [f.kind for f in leakage(report, split)]
    with pytest.raises(TrainingError, match=r"the split would leak: group '.*' \(\d+ files\) is in"):
        _manifest(report, split)


def test_starting_a_run_tells_what_the_leakage_check_compared(tmp_path):
    from tl_desktop.core.config import TrainConfig
    from tl_desktop.core.events import Notice
    from tl_desktop.core.training.run import _start

    root = write_digits_folder(tmp_path / "d", classes=(0, 1), per_class=12)
    notes: list[Notice] = []
    _start(TrainConfig(data=str(root), out=str(tmp_path / "run"), strategy="linear-probe", image_size=32,
                       seed=3, workers=0), notes.append)
    assert [n.message for n in notes] == [
        "No leakage found. Checked: identical files, identical pixels, no patient grouping chosen.",
        "the test part has only 2 images of class 'digit_0': its figures will be very uncertain "
        "(at least 5 are needed, 20+ is better)",
        "the test part has only 2 images of class 'digit_1': its figures will be very uncertain "
        "(at least 5 are needed, 20+ is better)"]
