"""Group by patient without a regular expression: the ready-made file-name choices find the expected patients
in real file names (scikit-learn digits renamed with patient prefixes) and preview them live, the core's split
keeps each one in one part, a typed pattern that is not valid gets one plain line, and a CSV's group column is
counted (the multi-label findings CSV, two images per patient). Renders to $TL_SCREENSHOTS when set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import write_digits_folder, write_findings_csv
from tl_desktop.core.data.scan import scan
from tl_desktop.core.data.split import make_split
from tl_desktop.ui.data.grouping import GroupingChooser, pattern_problem, preset_pattern
from tl_desktop.ui.data.split_panel import BAD_GROUPING, PENDING, SplitPanel

PER_PATIENT = 3  # images per patient; 12 images per class -> 4 patients per class, 8 in all


def _patients(root: Path, name) -> Path:
    """The digits of ``write_digits_folder`` renamed: ``name(patient, image)`` gives each file's new path under
    its class folder (patient ``P<class><nn>``)."""
    for file in sorted(root.rglob("*.png")):
        cls, index = file.stem.split("_")
        target = file.parent / name(f"P{cls}{int(index) // PER_PATIENT:02d}", int(index) % PER_PATIENT)
        target.parent.mkdir(parents=True, exist_ok=True)
        file.rename(target)
    return root


LAYOUTS = {  # choice -> new file name
    "name-underscore": lambda patient, i: f"{patient}_view{i}.png",
    "name-dash": lambda patient, i: f"{patient}-{i}_scan.png",  # a later "_" must not matter
    "folder": lambda patient, i: f"{patient}/{i}.png",
}


@pytest.fixture
def chooser(qtbot):
    widget = GroupingChooser()
    qtbot.addWidget(widget)
    widget.resize(520, 160)
    return widget


def _choose(chooser: GroupingChooser, value: str) -> None:
    chooser.group.setCurrentIndex(chooser.group.findData(value))


def _save(widget, name: str) -> None:
    if folder := os.environ.get("TL_SCREENSHOTS"):
        widget.grab().save(os.path.join(folder, name))


@pytest.mark.parametrize("key", list(LAYOUTS))
def test_each_choice_finds_the_patients_and_the_split_keeps_them_together(chooser, tmp_path, key):
    root = _patients(write_digits_folder(tmp_path / "d", classes=(0, 1), per_class=12), LAYOUTS[key])
    report = scan(root, cache=False)
    chooser.set_report(report)
    _choose(chooser, f"preset:{key}")
    assert chooser.group_by() == f"regex:{preset_pattern(key)}" and chooser.problem() is None
    text = chooser.preview.text()
    assert text.startswith("8 patients (groups) found in 24 images, e.g. P000 (3 images), P001 (3 images)"), text
    assert "⚠" not in text and chooser.preview.property("role") == "hint"
    split = make_split(report, seed=0, val_fraction=0.25, test_fraction=0.25, group_by=chooser.group_by())
    assert len(set(split.groups.values())) == 8
    parts = {}
    for sample in report.samples:
        patient = next(part for part in sample.path.replace("-", "_").replace("/", "_").split("_")
                       if part.startswith("P"))
        parts.setdefault(patient, set()).add(split.assignment[sample.path])
    assert len(parts) == 8 and all(len(p) == 1 for p in parts.values()), parts


def test_a_choice_that_finds_the_class_folders_or_nothing_warns(chooser, tmp_path):
    report = scan(write_digits_folder(tmp_path / "plain", classes=(0, 1), per_class=6), cache=False)
    chooser.set_report(report)
    _choose(chooser, "preset:folder")  # digit_0/0_000.png: the folder is the class
    assert "one group per class" in chooser.preview.text() and chooser.preview.property("role") == "badge-warn"
    _choose(chooser, "preset:name-dash")  # no "-" in any name
    assert chooser.preview.text().startswith("⚠ No file name matches: each of the 12 images")
    _choose(chooser, "none")
    assert not chooser.preview.isVisibleTo(chooser)


def test_a_bad_pattern_gets_one_plain_line_and_make_split_says_why(qtbot, tmp_path):
    panel = SplitPanel()
    qtbot.addWidget(panel)
    panel.resize(640, 560)
    panel.set_report(scan(write_digits_folder(tmp_path / "d", classes=(0, 1), per_class=6), cache=False))
    _choose(panel.grouping, "regex")
    panel.pattern.setText("(P\\d+_")
    line = panel.grouping.preview.text()
    assert line == ("This pattern cannot be used: a bracket “(” is opened but never closed with “)” (at character "
                    "1). Example: (P\\d+)_ takes “P001” from “P001_scan.png”.")
    assert "\n" not in line and "subpattern" not in line and "position" not in line
    asked = []
    panel.requested.connect(asked.append)
    panel.button.click()  # does not crash, does not ask for a split, says why next to the button
    _save(panel, "grouping_bad_pattern.png")
    assert asked == [] and panel.why.isVisibleTo(panel) and panel.why.text() == BAD_GROUPING
    panel.pattern.setText("(P\\d+)_")
    assert not panel.why.isVisibleTo(panel)  # the message goes once the pattern changes
    assert panel.grouping.preview.text().startswith("⚠ No file name matches")
    panel.button.click()
    assert len(asked) == 1 and asked[0]["group_by"] == "regex:(P\\d+)_"


@pytest.mark.parametrize(("pattern", "words"), [
    (")", "a “)” closes a bracket that was never opened"),
    ("*P", "must come after something to repeat"),
    ("[P", "a “[” is opened but never closed with “]”"),
    ("P\\q", "a backslash “\\” is followed by a letter"),
    ("", "Type a pattern"),
])
def test_pattern_problems_are_said_in_words(pattern, words):
    assert words in pattern_problem(pattern)


def test_a_stored_grouping_shows_as_its_choice_again(chooser):
    chooser.set_group_by(f"regex:{preset_pattern('name-dash')}")
    assert chooser.group.currentData() == "preset:name-dash" and not chooser.pattern.isVisibleTo(chooser)
    chooser.set_group_by("regex:(case\\d+)")
    assert chooser.group.currentData() == "regex" and chooser.pattern.text() == "(case\\d+)"
    assert chooser.group_by() == "regex:(case\\d+)"
    chooser.set_group_by("dicom:PatientID")
    assert chooser.group_by() == "dicom:PatientID"
    chooser.set_group_by(None)
    assert chooser.group_by() is None


def test_the_csv_group_column_is_counted(chooser, tmp_path):
    report = scan(write_findings_csv(tmp_path / "f", n=20).parent, csv=tmp_path / "f" / "findings.csv",
                  cache=False)
    chooser.set_report(report)
    _choose(chooser, "csv")
    assert chooser.preview.text() == "10 groups in the CSV's group column, over 20 images."
    _save(chooser, "grouping_csv.png")


def test_a_new_grouping_says_the_shown_split_does_not_use_it_yet(qtbot, tmp_path):
    root = _patients(write_digits_folder(tmp_path / "d", classes=(0, 1), per_class=12), LAYOUTS["name-underscore"])
    report = scan(root, cache=False)
    panel = SplitPanel()
    qtbot.addWidget(panel)
    panel.set_report(report)
    panel.show_split(report, make_split(report, seed=0), None)
    assert not panel.why.isVisibleTo(panel)
    _choose(panel.grouping, "preset:name-underscore")
    assert panel.why.isVisibleTo(panel) and panel.why.text() == PENDING and panel.why.property("role") == "hint"
    grouped = make_split(report, seed=0, group_by=panel.group_by())
    panel.show_split(report, grouped, None)  # what "Make split" brings back
    assert not panel.why.isVisibleTo(panel)
