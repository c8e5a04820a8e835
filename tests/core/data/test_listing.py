"""Files are what they seem: symbolic links in class folders, and CSV files read by RFC 4180 (issue 14)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import write_digits_folder
from tl_desktop.core.data.scan import MAX_CLASSES, scan
from tl_desktop.core.data.split import check_minimum_per_class, make_split
from tl_desktop.core.errors import DataError

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="POSIX symbolic links")


def _two_classes(tmp_path: Path, per_class: int = 6) -> Path:
    return write_digits_folder(tmp_path / "d", classes=(0, 1), per_class=per_class, size=32)


def _skipped(report) -> dict[str, str]:
    return {s.path: s.reason for s in report.skipped}


def test_a_link_to_a_sibling_class_folder_relabels_nothing(tmp_path):
    root = _two_classes(tmp_path)
    os.symlink("../digit_1", root / "digit_0" / "loop1")  # the probe: class 0 doubled, class 1 vanished
    report = scan(root, cache=False)
    assert report.counts == {"digit_0": 6, "digit_1": 6}
    assert "link to the folder of class 'digit_1'" in _skipped(report)["digit_0/loop1"]
    assert report.conflicts == [] and report.usable


def test_a_top_level_link_to_a_class_folder_is_not_a_second_class(tmp_path):
    root = _two_classes(tmp_path)
    os.symlink("digit_1", root / "ones")
    report = scan(root, cache=False)
    assert report.counts == {"digit_0": 6, "digit_1": 6}
    assert "class 'digit_1'" in _skipped(report)["ones"]
    assert not any(w.kind == "empty-class" for w in report.warnings)


@pytest.mark.parametrize("target", [".", "..", "../.."])
def test_link_loops_are_detected_and_each_file_counted_once(tmp_path, target):
    root = _two_classes(tmp_path)
    sub = root / "digit_0" / "sub"
    sub.mkdir()
    shutil.move(root / "digit_0" / "0_000.png", sub / "0_000.png")
    os.symlink(target, sub / "again")
    report = scan(root, cache=False)
    assert report.counts == {"digit_0": 6, "digit_1": 6}
    assert "link loop" in _skipped(report)["digit_0/sub/again"]
    assert report.duplicates == []


def test_a_link_to_a_file_in_another_class_is_skipped_and_the_file_kept_in_its_own(tmp_path):
    root = _two_classes(tmp_path)
    os.symlink("../digit_1/1_002.png", root / "digit_0" / "borrowed.png")
    report = scan(root, cache=False)
    assert report.counts == {"digit_0": 6, "digit_1": 6}  # not a label conflict that loses 1_002 as well
    assert _skipped(report)["digit_0/borrowed.png"].startswith("link to a file in class 'digit_1'")
    assert any(s.path == "digit_1/1_002.png" and s.label == "digit_1" for s in report.samples)


def test_links_inside_the_same_class_are_followed_once(tmp_path):
    root = _two_classes(tmp_path)
    extra = root / "digit_0" / "extra"
    write_digits_folder(tmp_path / "more", classes=(0,), per_class=9)
    shutil.move(tmp_path / "more" / "digit_0", extra)
    for i in range(6):  # these 6 are the same digits as the class folder's: remove them
        (extra / f"0_{i:03d}.png").unlink()
    os.symlink("extra", root / "digit_0" / "a_alias")  # sorts before the real folder: the real one still wins
    os.symlink("0_000.png", root / "digit_0" / "0_000_link.png")
    os.symlink("../digit_0/extra/0_007.png", root / "digit_0" / "seven.png")
    report = scan(root, cache=False)
    assert report.counts == {"digit_0": 9, "digit_1": 6}
    skipped = _skipped(report)
    assert "already scanned ('digit_0/extra')" in skipped["digit_0/a_alias"]
    assert skipped["digit_0/0_000_link.png"] == "the same file as 'digit_0/0_000.png' (reached again through a link)"
    assert skipped["digit_0/seven.png"].startswith("the same file as 'digit_0/extra/0_007.png'")
    assert report.duplicates == []


def test_links_out_of_the_data_folder_are_used_and_reported(tmp_path):
    root = _two_classes(tmp_path)
    outside = write_digits_folder(tmp_path / "elsewhere", classes=(0,), per_class=9)
    for i in range(6):
        (outside / "digit_0" / f"0_{i:03d}.png").unlink()
    os.symlink(outside / "digit_0", root / "digit_0" / "from_usb")
    report = scan(root, cache=False)
    assert report.counts == {"digit_0": 9, "digit_1": 6}
    (finding,) = [w for w in report.warnings if w.kind == "outside-data-folder"]
    assert finding.message.startswith("3 images are reached through links that leave the data folder")
    assert "digit_0/from_usb/0_006.png" in finding.message


def test_broken_links_are_skipped_with_their_reason(tmp_path):
    root = _two_classes(tmp_path)
    os.symlink("gone.png", root / "digit_1" / "dangling.png")
    report = scan(root, cache=False)
    assert _skipped(report)["digit_1/dangling.png"].startswith("broken link")
    assert report.counts == {"digit_0": 6, "digit_1": 6}


# --- CSV ---------------------------------------------------------------------------------------------------


def _csv(tmp_path: Path, text: str, name: str = "labels.csv") -> Path:
    path = tmp_path / "d" / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_fields_are_read_by_rfc_4180(tmp_path):
    root = _two_classes(tmp_path, per_class=3)
    shutil.copy(root / "digit_0" / "0_000.png", root / 'x"y,z.png')
    shutil.copy(root / "digit_1" / "1_000.png", root / "line\nbreak.png")
    rows = ['"x""y,z.png",zero', '"line\nbreak.png","one, really"', "digit_0/0_001.png,zero",
            "digit_1/1_001.png,\"one, really\""]
    report = scan(_csv(tmp_path, "path,label\n" + "\n".join(rows) + "\n"), cache=False)
    assert report.skipped == []
    assert {s.path: s.label for s in report.samples} == {
        'x"y,z.png': "zero", "line\nbreak.png": "one, really", "digit_0/0_001.png": "zero",
        "digit_1/1_001.png": "one, really"}


def test_semicolon_csv_with_quotes(tmp_path):
    root = _two_classes(tmp_path, per_class=3)
    rows = ['"digit_0/0_000.png";"a;b"', "digit_0/0_001.png;a;b-ignored", "digit_1/1_000.png;c"]
    report = scan(_csv(tmp_path, "path;label\n" + "\n".join(rows) + "\n"), cache=False)
    assert {s.path: s.label for s in report.samples} == {
        "digit_0/0_000.png": "a;b", "digit_0/0_001.png": "a", "digit_1/1_000.png": "c"}
    assert root.is_dir()


def test_the_same_path_with_two_labels_is_a_conflict_on_every_row(tmp_path):
    _two_classes(tmp_path, per_class=3)
    rows = ["digit_0/0_000.png,zero", "digit_0/0_001.png,zero", "digit_1/1_000.png,one",
            "digit_0/0_000.png,one", "digit_0/0_001.png,zero", "digit_1/1_001.png,one"]
    report = scan(_csv(tmp_path, "path,label\n" + "\n".join(rows) + "\n"), cache=False)
    skipped = _skipped(report)
    conflict = "label conflict: the same file is listed on CSV lines 2 ('zero'), 5 ('one')"
    assert skipped["digit_0/0_000.png"] == skipped["digit_0/0_000.png (line 5)"] == conflict
    assert skipped["digit_0/0_001.png (line 6)"] == "listed again on CSV line 6 (first on line 3)"
    assert report.conflicts == [["digit_0/0_000.png", "digit_0/0_000.png (line 5)"]]
    assert report.counts == {"one": 2, "zero": 1}


def test_a_csv_row_naming_a_link_to_a_listed_file_counts_it_once(tmp_path):
    root = _two_classes(tmp_path, per_class=3)
    os.symlink("0_000.png", root / "digit_0" / "alias.png")
    rows = ["digit_0/0_000.png,zero", "digit_0/alias.png,one", "digit_0/0_001.png,zero", "digit_1/1_000.png,one"]
    report = scan(_csv(tmp_path, "path,label\n" + "\n".join(rows) + "\n"), cache=False)
    assert "label conflict" in _skipped(report)["digit_0/alias.png (line 3)"]
    assert report.counts == {"one": 1, "zero": 1}


def test_csv_rows_outside_the_csv_folder_are_named_in_the_report(tmp_path):
    _two_classes(tmp_path, per_class=3)
    outside = write_digits_folder(tmp_path / "other", classes=(2,), per_class=2)
    rows = ["digit_0/0_000.png,zero", "digit_1/1_000.png,one", "../other/digit_2/2_000.png,two",
            f"{outside / 'digit_2' / '2_001.png'},two"]
    report = scan(_csv(tmp_path, "path,label\n" + "\n".join(rows) + "\n"), cache=False)
    assert report.counts == {"one": 1, "two": 2, "zero": 1}
    (finding,) = [w for w in report.warnings if w.kind == "outside-data-folder"]
    assert finding.message.startswith("2 images listed in labels.csv are outside its folder (first: line 4, "
                                      "'../other/digit_2/2_000.png')")


def test_a_csv_inside_its_own_folder_gives_no_outside_note(tmp_path):
    _two_classes(tmp_path, per_class=3)
    report = scan(_csv(tmp_path, "path,label\ndigit_0/0_000.png,a\ndigit_1/1_000.png,b\n"), cache=False)
    assert [w.kind for w in report.warnings if w.kind == "outside-data-folder"] == []


# --- limits ------------------------------------------------------------------------------------------------


def test_more_classes_than_the_limit_make_the_data_set_unusable(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "many"
    for i in range(MAX_CLASSES + 1):  # one distinct 8 px image per folder: e.g. the folder above the classes
        (root / f"c{i:04d}").mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / f"c{i:04d}" / "a.png")
    report = scan(root, cache=False)
    assert not report.usable and "1,001 classes" in report.unusable and "at most 1,000" in report.unusable


def test_a_split_without_validation_images_for_a_class_is_refused(tmp_path):
    root = write_digits_folder(tmp_path / "d", classes=(0, 1, 2), per_class=2)  # the probe: 3 / 0 / 3
    report = scan(root, cache=False)
    split = make_split(report)
    assert split.counts() == {"train": 3, "val": 0, "test": 3}
    with pytest.raises(DataError) as err:
        check_minimum_per_class(report, split)
    message = str(err.value)
    assert message.startswith("3 classes have too few images to split: 'digit_0' (1 training, 0 validation, 1 test)")
    assert "one training, one validation and one test image" in message and "\n" not in message
    check_minimum_per_class(scan(write_digits_folder(tmp_path / "ok", classes=(0, 1), per_class=3), cache=False),
                            make_split(scan(tmp_path / "ok", cache=False)))
