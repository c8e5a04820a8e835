"""Identical images by content: one scan in several DICOM encodings, one picture as PNG/BMP/TIFF, and what the
leakage check says it compared; the small-test-class warning. Real files: pydicom's test data, digits."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import dicom_copy, write_digits_folder
from tl_desktop.core.data.scan import ScanReport, scan
from tl_desktop.core.data.split import Split, checks_made, leakage, leakage_check, make_split

# pydicom's MR_small.dcm as shipped in other transfer syntaxes, the ones that decode without extra plugins
# (MR_small_jpeg_ls_lossless.dcm needs pylibjpeg or pyjpegls, which are not installed).
MR_ENCODINGS = ("MR_small.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm", "MR_small_implicit.dcm",
                "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_padded.dcm")
MR_PATHS = sorted(f"digit_0/{name}" for name in MR_ENCODINGS)


def _add_mr_encodings(folder: Path) -> None:
    from pydicom.data import get_testdata_file

    folder.mkdir(parents=True, exist_ok=True)
    for name in MR_ENCODINGS:
        shutil.copy(get_testdata_file(name), folder / name)


@pytest.fixture(scope="module")
def mr_report(tmp_path_factory) -> ScanReport:
    """Three digit classes of 30 images; class digit_0 also holds the MR scan in seven encodings."""
    root = write_digits_folder(tmp_path_factory.mktemp("mr"), classes=(0, 1, 2), per_class=30)
    _add_mr_encodings(root / "digit_0")
    return scan(root, cache=False)


def test_one_scan_in_seven_encodings_is_one_image(mr_report):
    assert {s.path for s in mr_report.skipped} == set()
    assert len({s.sha256 for s in mr_report.samples if s.path in MR_PATHS}) == 7  # seven different files
    assert mr_report.duplicates == [MR_PATHS] and mr_report.identical_pixels == [MR_PATHS]
    assert mr_report.conflicts == []
    assert mr_report.identical_text() == "1 group of identical images (1 of identical pixels in differently stored files)."


def test_split_keeps_the_encodings_together(mr_report):
    for seed in range(6):
        split = make_split(mr_report, seed=seed)
        assert len({split.assignment[p] for p in MR_PATHS}) == 1
        check = leakage_check(mr_report, split)
        assert check.findings == () and not check.leaks
        assert check.verdict() == ("No leakage found. Checked: identical files, identical pixels, "
                                   "no patient grouping chosen.")


def test_leakage_check_names_the_encodings_when_they_cross(mr_report):
    split = make_split(mr_report, seed=0)
    forced = dict(split.assignment, **{MR_PATHS[0]: "train", MR_PATHS[1]: "test"})
    check = leakage_check(mr_report, Split(0, 0.15, 0.15, None, forced))
    [finding] = check.findings
    assert finding.kind == "identical-pixels-cross-splits" and finding.leaks and finding.count == 7
    assert finding.message.startswith("7 files with identical pixels (stored differently) are in train and ")
    assert MR_PATHS[0] in finding.message and MR_PATHS[1] in finding.message
    assert check.leaks and check.verdict().startswith("Leakage found. Checked: identical files, identical pixels")


def test_identical_pixels_across_labels_are_conflicts(tmp_path):
    from pydicom.data import get_testdata_file

    write_digits_folder(tmp_path, classes=(0, 1), per_class=6)
    shutil.copy(get_testdata_file("MR_small.dcm"), tmp_path / "digit_0" / "scan.dcm")
    shutil.copy(get_testdata_file("MR_small_RLE.dcm"), tmp_path / "digit_1" / "scan_rle.dcm")
    report = scan(tmp_path, cache=False)
    assert report.conflicts == [["digit_0/scan.dcm", "digit_1/scan_rle.dcm"]] and report.duplicates == []
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons["digit_0/scan.dcm"] == ("label conflict: the same pixels as 'digit_1/scan_rle.dcm', "
                                           "which is labelled 'digit_1'")


def test_same_picture_as_png_bmp_and_tiff_is_one_image(tmp_path):
    write_digits_folder(tmp_path, classes=(0, 1), per_class=6)
    grey = Image.open(tmp_path / "digit_1" / "1_000.png")
    grey.save(tmp_path / "digit_1" / "again.bmp")
    grey.save(tmp_path / "digit_1" / "again.tif", compression="tiff_lzw")
    grey.convert("RGB").save(tmp_path / "digit_1" / "as_rgb.png")  # grey shown in three equal channels
    wide = (np.asarray(grey, dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "digit_0" / "deep.png")
    Image.fromarray(wide).save(tmp_path / "digit_0" / "deep.tif")  # 16-bit: same values, PNG and TIFF
    report = scan(tmp_path, cache=False)
    assert report.duplicates == [
        ["digit_0/deep.png", "digit_0/deep.tif"],
        ["digit_1/1_000.png", "digit_1/again.bmp", "digit_1/again.tif", "digit_1/as_rgb.png"],
    ]
    assert report.identical_pixels == report.duplicates


def test_different_images_are_not_grouped(tmp_path):
    from pydicom.data import get_testdata_file

    write_digits_folder(tmp_path, classes=(0, 1), per_class=20)
    shutil.copy(get_testdata_file("MR_small.dcm"), tmp_path / "digit_0" / "mr.dcm")
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "digit_0" / "ct.dcm")
    dicom_copy("MR_small.dcm", tmp_path / "digit_1" / "mr_inverted.dcm", PhotometricInterpretation="MONOCHROME1")
    grey = Image.open(tmp_path / "digit_1" / "1_000.png")
    Image.fromarray(255 - np.asarray(grey)).save(tmp_path / "digit_1" / "negative.bmp")
    report = scan(tmp_path, cache=False)
    assert report.duplicates == [] and report.conflicts == [] and report.identical_pixels == []
    assert len({s.pixel_sha256 for s in report.samples}) == len(report.samples) == 44
    assert report.identical_text() == "No identical images (compared: file contents and decoded pixels)."


def test_jpeg_is_compared_by_bytes_and_the_check_says_so(tmp_path):
    write_digits_folder(tmp_path, classes=(0, 1), per_class=10)
    Image.open(tmp_path / "digit_0" / "0_000.png").convert("RGB").save(tmp_path / "digit_0" / "photo.jpg")
    report = scan(tmp_path, cache=False)
    assert next(s for s in report.samples if s.path.endswith(".jpg")).pixel_sha256 is None
    split = make_split(report, seed=0)
    assert checks_made(report, split) == (
        "identical files", "identical pixels (not for the 1 JPEG file, compared by their bytes)",
        "no patient grouping chosen")


def test_grouping_is_named(mr_report):
    split = make_split(mr_report, seed=0)
    paths = list(split.assignment)
    for group_by, words in [("dicom:PatientID", "groups by PatientID"), ("csv", "groups by the CSV group column"),
                            (r"regex:(P\d+)_", r"groups by the file-name pattern (P\d+)_")]:
        grouped = Split(0, 0.15, 0.15, group_by, split.assignment, {p: f"g{i}" for i, p in enumerate(paths)})
        assert checks_made(mr_report, grouped)[-1] == words


def test_report_stored_before_pixel_hashes_still_loads(mr_report):
    old = mr_report.to_dict()
    del old["identical_pixels"]
    for sample in old["samples"]:
        del sample["pixel_sha256"]
    report = ScanReport.from_dict(old)
    assert report.identical_pixels == [] and all(s.pixel_sha256 is None for s in report.samples)
    split = make_split(report, seed=0)
    assert checks_made(report, split) == ("identical files", "no patient grouping chosen")
    assert len({split.assignment[p] for p in MR_PATHS}) > 1  # by bytes alone they are different files
    assert leakage(report, split) == []


def test_pixel_hashes_are_cached(tmp_path, _isolated_home):
    from tl_desktop.core.data.scancache import SCHEMA

    write_digits_folder(tmp_path / "data", classes=(0, 1), per_class=3)
    _add_mr_encodings(tmp_path / "data" / "digit_0")
    first = scan(tmp_path / "data")
    cache = next(_isolated_home.rglob("scan-cache.sqlite3"))
    with sqlite3.connect(cache) as conn:
        stored = dict(conn.execute(f"SELECT path, pixel_sha256 FROM {SCHEMA}").fetchall())
    assert len(stored) == 13 and all(stored.values())
    again = scan(tmp_path / "data")
    assert [s.pixel_sha256 for s in again.samples] == [s.pixel_sha256 for s in first.samples]


def test_small_test_classes_are_warned_about(tmp_path, mr_report):
    write_digits_folder(tmp_path, classes=(0, 1), per_class=10)
    tiny = scan(tmp_path, cache=False)
    split = make_split(tiny, seed=0)
    check = leakage_check(tiny, split)
    assert [(w.kind, w.label, w.count) for w in check.warnings] == [
        ("small-test-class", "digit_0", 2), ("small-test-class", "digit_1", 2)]
    assert check.warnings[0].message.startswith("the test part has only 2 images of class 'digit_0'")
    assert check.lines()[1:] == [w.message for w in check.warnings]
    assert not check.leaks and check.verdict().startswith("No leakage found.")
    no_test = leakage_check(tiny, make_split(tiny, seed=0, test_fraction=0.0))
    assert [w.message for w in no_test.warnings] == [
        "the test part is empty: the model cannot be evaluated on images it never saw (choose a test share above 0)"]
    enough = make_split(mr_report, seed=0, test_fraction=0.2)  # 6 or more test images per class
    assert leakage_check(mr_report, enough).warnings == ()
