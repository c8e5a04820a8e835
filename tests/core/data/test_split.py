"""Stratified, seeded, grouped splits and the leakage check, on real digit images and DICOM test files."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.helpers import dicom_copy, write_digits_folder
from tl_desktop.core.data.scan import scan
from tl_desktop.core.data.split import Split, leakage, make_split
from tl_desktop.core.errors import DataError


@pytest.fixture(scope="module")
def digits_report(tmp_path_factory):
    root = write_digits_folder(tmp_path_factory.mktemp("d"), classes=(0, 1, 2), per_class=40)
    return scan(root, cache=False)


def test_stratified_counts_and_every_file_assigned(digits_report):
    split = make_split(digits_report, val_fraction=0.15, test_fraction=0.25, seed=3)
    assert set(split.assignment) == {s.path for s in digits_report.samples}
    per_class = split.counts(digits_report)
    for label in digits_report.classes:
        assert (per_class["train"][label], per_class["val"][label], per_class["test"][label]) == (24, 6, 10)
    assert split.counts() == {"train": 72, "val": 18, "test": 30}
    assert len(split.samples(digits_report, "test")) == 30
    assert leakage(digits_report, split) == []


def test_seeded_and_reproducible(digits_report):
    a, b = make_split(digits_report, seed=7), make_split(digits_report, seed=7)
    assert a == b
    assert make_split(digits_report, seed=8).assignment != a.assignment


def test_round_trip_through_json(digits_report):
    split = make_split(digits_report, seed=1, group_by="regex:digit_(\\d)/\\d_0(\\d)")
    again = Split.from_dict(json.loads(json.dumps(split.to_dict())))
    assert again == split
    assert again.samples(digits_report, "val") == split.samples(digits_report, "val")


def test_tiny_classes_still_get_val_and_test(tmp_path):
    root = write_digits_folder(tmp_path / "d", classes=(0,), per_class=30)
    write_digits_folder(root, classes=(1,), per_class=3)
    write_digits_folder(root, classes=(2,), per_class=2)
    write_digits_folder(root, classes=(3,), per_class=1)
    report = scan(root, cache=False)
    for seed in range(5):
        counts = make_split(report, seed=seed).counts(report)
        assert (counts["train"]["digit_1"], counts["val"]["digit_1"], counts["test"]["digit_1"]) == (1, 1, 1)
        assert counts["train"]["digit_2"] == 1 and counts["test"]["digit_2"] == 1
        assert counts["train"]["digit_3"] == 1
        assert counts["train"]["digit_0"] >= 20


def test_identical_files_never_straddle(tmp_path):
    root = write_digits_folder(tmp_path / "d", classes=(0, 1), per_class=20)
    for i in range(8):
        shutil.copy(root / f"digit_0/0_{i:03d}.png", root / f"digit_0/copy_{i}.png")
    report = scan(root, cache=False)
    assert len(report.duplicates) == 8
    for seed in range(10):
        split = make_split(report, seed=seed, val_fraction=0.3, test_fraction=0.3)
        for group in report.duplicates:
            assert len({split.assignment[p] for p in group}) == 1
        assert leakage(report, split) == []


def _patient_folder(tmp_path):
    """Digit images named like PACS exports: patient<N>_img<M>.png, several images per patient."""
    src = write_digits_folder(tmp_path / "src", classes=(0, 1), per_class=36)
    root = tmp_path / "d"
    for cls in ("digit_0", "digit_1"):
        (root / cls).mkdir(parents=True)
        for i, png in enumerate(sorted((src / cls).glob("*.png"))):
            shutil.copy(png, root / cls / f"patient{i // 3 + (100 if cls == 'digit_1' else 0):03d}_img{i % 3}.png")
    return scan(root, cache=False)


def test_regex_groups_stay_together_and_leakage_finds_a_moved_file(tmp_path):
    report = _patient_folder(tmp_path)
    split = make_split(report, seed=0, group_by=r"regex:(patient\d+)_")
    by_patient: dict[str, set[str]] = {}
    for path, subset in split.assignment.items():
        by_patient.setdefault(path.split("/")[1].split("_")[0], set()).add(subset)
    assert len(by_patient) == 24 and all(len(s) == 1 for s in by_patient.values())
    assert all(n > 0 for n in split.counts().values())
    assert leakage(report, split) == []
    moved = next(p for p, s in split.assignment.items() if s == "train")
    split.assignment[moved] = "test"
    problems = leakage(report, split)
    assert [(f.kind, f.leaks) for f in problems] == [("group-crosses-splits", True)]
    assert "train and test" in problems[0].message and "'name#" in problems[0].message
    assert problems[0].count == 3 and problems[0].key == split.groups[moved]
    assert "patient" not in json.dumps(split.groups.values() and list(split.groups.values()))  # keyed hashes only


def test_leakage_reports_identical_files_across_subsets(tmp_path):
    root = write_digits_folder(tmp_path / "d", classes=(0, 1), per_class=10)
    shutil.copy(root / "digit_0/0_000.png", root / "digit_0/again.png")
    report = scan(root, cache=False)
    split = make_split(report, seed=0)
    split.assignment["digit_0/again.png"] = "val" if split.assignment["digit_0/0_000.png"] != "val" else "test"
    problems = leakage(report, split)
    assert [(f.kind, f.leaks, f.count) for f in problems] == [("identical-files-cross-splits", True, 2)]
    assert "identical files" in problems[0].message and "digit_0/again.png" in problems[0].message
    assert problems[0].key == next(s.sha256 for s in report.samples if s.path == "digit_0/again.png")


def test_csv_groups(tmp_path, digits_dir):
    rows = ["path,label,group"]
    rows += [f"{p.relative_to(digits_dir).as_posix()},{p.parent.name},case{i % 15}"
             for i, p in enumerate(sorted(digits_dir.rglob("*.png")))]
    (tmp_path / "labels.csv").write_text("\n".join(rows))
    shutil.copytree(digits_dir, tmp_path, dirs_exist_ok=True)
    report = scan(tmp_path / "labels.csv", cache=False)
    split = make_split(report, seed=2, group_by="csv")
    assert leakage(report, split) == []
    assert split.groups is not None and len(set(split.groups.values())) == 15
    assert "case" not in json.dumps(split.to_dict())  # the group column may hold patient IDs: hashed


def _mr_shifted(dest, shift: int, **tags):
    """pydicom's MR_small with its pixels rolled by ``shift``: a distinct image of the same kind."""
    import numpy as np
    import pydicom
    from pydicom.data import get_testdata_file

    arr = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array
    return dicom_copy("MR_small.dcm", dest, PixelData=np.roll(arr, 7 * shift).tobytes(), **tags)


def test_dicom_patient_groups_are_hashed(tmp_path):
    for patient in range(8):
        for image in range(3):
            label = "effusion" if patient % 2 else "normal"
            _mr_shifted(tmp_path / label / f"p{patient}_{image}.dcm", patient * 3 + image,
                        PatientID=f"SECRET-ID-{patient}", PatientName=f"Doe^Jane{patient}", InstanceNumber=image + 1)
    report = scan(tmp_path, cache=False)
    assert report.counts == {"effusion": 12, "normal": 12}
    split = make_split(report, seed=0, group_by="dicom:PatientID")
    dumped = json.dumps(split.to_dict())
    assert "SECRET" not in dumped and "Jane" not in dumped
    assert len(set(split.groups.values())) == 8
    for patient in range(8):
        assert len({s for p, s in split.assignment.items() if f"/p{patient}_" in p}) == 1
    assert leakage(report, split) == []
    assert make_split(report, seed=0, group_by="dicom:PatientID") == split  # same salt, same hashes


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"group_by": "patient"}, "unknown grouping"),
    ({"group_by": "regex:("}, r"grouping pattern '\(' is not a valid pattern"),
    ({"group_by": "csv"}, "'group' column"),
    ({"group_by": "dicom:NotAKeyword"}, "not a DICOM element"),
    ({"group_by": "dicom:PatientID"}, "no file has"),
    ({"val_fraction": 0.6, "test_fraction": 0.5}, "fractions"),
])
def test_bad_split_options(digits_report, kwargs, words):
    with pytest.raises(DataError, match=words):
        make_split(digits_report, **kwargs)


def test_files_without_a_group_value_are_reported(tmp_path):
    report = _patient_folder(tmp_path)
    split = make_split(report, seed=0, group_by=r"regex:(patient00\d)_")  # only patients 000-009 match
    problems = leakage(report, split)
    unmatched = sum(1 for p in split.assignment if not re.search(r"patient00\d_", p))
    assert unmatched > 0 and [(f.kind, f.leaks, f.count) for f in problems] == [("no-group-value", False, unmatched)]
    assert problems[0].message.startswith(f"{unmatched} files have no value for 'regex:")
    assert problems[0].key == r"regex:(patient00\d)_"
