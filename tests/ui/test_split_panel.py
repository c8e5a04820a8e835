"""The split panel shows the leakage verdict with what was checked, what crossed parts, and the small-test
warnings, all in the words of core's LeakageCheck (real digits and pydicom's MR scan in seven encodings)."""

from __future__ import annotations

import os

import pytest

from tests.core.data.test_identity import MR_PATHS, _add_mr_encodings
from tests.helpers import write_digits_folder
from tl_desktop.core.data.scan import scan
from tl_desktop.core.data.split import Split, leakage_check, make_split
from tl_desktop.ui.data.split_panel import SplitPanel


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = write_digits_folder(tmp_path_factory.mktemp("panel"), classes=(0, 1), per_class=12)
    _add_mr_encodings(root / "digit_0")
    return scan(root, cache=False)


@pytest.fixture
def panel(qtbot):
    widget = SplitPanel()
    qtbot.addWidget(widget)
    widget.resize(640, 520)
    return widget


def _save(panel, name: str) -> None:
    if folder := os.environ.get("TL_SCREENSHOTS"):
        panel.grab().save(os.path.join(folder, name))


def test_no_leakage_names_what_was_checked_and_warns_of_a_small_test_part(panel, report):
    split = make_split(report, seed=0)
    panel.show_split(report, split, leakage_check(report, split))
    _save(panel, "split_ok.png")
    lines = panel.leak.text().splitlines()
    assert lines[0] == "✔ No leakage found. Checked: identical files, identical pixels, no patient grouping chosen."
    assert lines[1].startswith("• the test part has only ") and "of class 'digit_0'" in lines[1]
    assert panel.leak.property("role") == "badge-warn"  # the small test part is a caution


def test_leakage_lists_the_files_that_cross(panel, report):
    split = make_split(report, seed=0)
    forced = Split(0, 0.15, 0.15, None, dict(split.assignment, **{MR_PATHS[0]: "train", MR_PATHS[1]: "test"}))
    panel.show_split(report, forced, leakage_check(report, forced))
    _save(panel, "split_leak.png")
    text = panel.leak.text()
    assert text.startswith("⚠ Leakage found. Checked: identical files, identical pixels")
    assert "• 7 files with identical pixels (stored differently) are in " in text and MR_PATHS[0] in text


def test_restored_split_is_not_called_checked(panel, report):
    panel.show_split(report, make_split(report, seed=0), None)
    assert panel.leak.text() == "Split restored from the project." and panel.leak.property("role") == "hint"
