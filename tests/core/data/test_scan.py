"""Decoding and scanning on real images: scikit-image photos, scikit-learn digits, pydicom's test files."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from tests.helpers import _photo, png_header_claiming, write_digits_folder, write_mixed_folder
from tl_desktop.core.data.decode import load_image
from tl_desktop.core.data.scan import ScanReport, scan
from tl_desktop.core.errors import DataError, ImageDecodeError
from tl_desktop.core.events import Cancelled, CancelToken


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    return root, write_mixed_folder(root)


def _arr(path: Path, **kw) -> np.ndarray:
    im = load_image(path, **kw)
    assert im.mode == "RGB"
    return np.asarray(im)


# --- decoding -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", ["cat/chelsea.jpg", "cat/chelsea.webp", "cat/chelsea_palette.gif",
                                 "cat/deep/flipped.bmp", "person/coffee.png"])
def test_common_formats_decode_to_rgb_close_to_the_photo(mixed, rel):
    root, _ = mixed
    reference = np.asarray(_photo("coffee" if "coffee" in rel else "chelsea"), dtype=float)
    arr = _arr(root / rel).astype(float)
    if "flipped" in rel:
        arr = arr[:, ::-1]
    assert arr.shape == reference.shape
    assert np.abs(arr - reference).mean() < 12


def test_cmyk_jpeg_becomes_the_right_colours(mixed):
    root, _ = mixed
    with Image.open(root / "cat/chelsea_cmyk.jpg") as im:
        assert im.mode == "CMYK"
    reference = np.asarray(_photo("chelsea"), dtype=float)
    assert np.abs(_arr(root / "cat/chelsea_cmyk.jpg").astype(float) - reference).mean() < 12


def test_rgba_is_composited_on_white(mixed):
    root, _ = mixed
    with Image.open(root / "person/astronaut_rgba.png") as im:
        src = np.asarray(im)
    out = _arr(root / "person/astronaut_rgba.png").astype(int)
    alpha = src[..., 3]
    assert (out[alpha == 0] == 255).all()  # fully transparent: white, not black
    opaque = alpha == 255
    assert np.abs(out[opaque] - src[..., :3][opaque]).max() <= 1


def test_16bit_tiff_uses_the_full_range_and_is_not_clipped(mixed):
    root, _ = mixed
    with Image.open(root / "person/camera_16bit.tif") as im:
        assert im.mode.startswith("I;16")
    arr = _arr(root / "person/camera_16bit.tif")[..., 0]
    assert arr.min() == 0 and arr.max() == 255
    assert (arr == 255).mean() < 0.05  # a naive 8-bit conversion clips nearly everything to 255
    camera = np.asarray(_photo("camera"), dtype=float)
    assert np.corrcoef(arr.ravel(), camera.ravel())[0, 1] > 0.99


def test_16bit_tiff_from_ct_pixel_data(tmp_path):
    import pydicom

    pixels = pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array.astype(np.uint16)
    Image.fromarray(pixels).save(tmp_path / "ct.tif")
    arr = _arr(tmp_path / "ct.tif")[..., 0]
    assert arr.min() == 0 and arr.max() == 255
    assert len(np.unique(arr)) > 100


def test_multipage_tiff_gives_the_first_page(mixed):
    root, _ = mixed
    with Image.open(root / "person/pages.tiff") as im:
        assert im.n_frames == 2
    first = np.asarray(_photo("astronaut"), dtype=float)
    assert np.abs(_arr(root / "person/pages.tiff").astype(float) - first).mean() < 1


def test_unicode_name_decodes(mixed):
    root, _ = mixed
    assert load_image(root / "cat/deep/er/Ünïcødé név 画像.png").size == (_photo("chelsea").height, 96)


def test_dicom_rescale_and_full_range():
    arr = _arr(Path(get_testdata_file("CT_small.dcm")))
    assert arr.shape == (128, 128, 3) and arr.min() == 0 and arr.max() == 255
    assert (arr[..., 0] == arr[..., 1]).all()


def test_dicom_window_is_applied():
    import pydicom

    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    center, width = float(ds.WindowCenter), float(ds.WindowWidth)
    raw = ds.pixel_array.astype(float)
    arr = _arr(Path(get_testdata_file("MR_small.dcm")))[..., 0]
    assert (arr[raw >= center + width / 2] == 255).all()
    inside = (raw > center - width / 2 + 1) & (raw < center + width / 2 - 1)
    assert np.corrcoef(arr[inside], raw[inside])[0, 1] > 0.99


def test_monochrome1_is_inverted(mixed):
    root, _ = mixed
    normal = _arr(root / "scan/MR_small.dcm").astype(int)
    inverted = _arr(root / "scan/mr_monochrome1.dcm").astype(int)
    assert (inverted == 255 - normal).all()


def test_dicom_without_extension_is_sniffed(mixed):
    root, _ = mixed
    assert (_arr(root / "scan/mr_export_without_extension") == _arr(root / "scan/MR_small.dcm")).all()


@pytest.mark.parametrize("name", ["SC_rgb_jpeg_dcmtk.dcm", "examples_palette.dcm", "SC_rgb_rle_16bit.dcm"])
def test_colour_dicom(name):  # YBR JPEG, palette, 16-bit RGB RLE (multi-frame files: test_decode_limits.py)
    arr = _arr(Path(get_testdata_file(name)))
    assert arr.ndim == 3 and arr.shape[2] == 3 and arr.max() > 100
    assert not (arr[..., 0] == arr[..., 1]).all()  # really colour


@pytest.mark.parametrize(("rel", "words"), [
    ("scan/MR_truncated.dcm", "pixel data"),
    ("scan/JPEG-lossy.dcm", "JPEG Extended"),
    ("cat/truncated.jpg", "truncated"),
    ("cat/empty.png", "empty"),
    ("cat/notes.png", "not an image"),
    ("cat/huge.png", "too large"),
])
def test_bad_files_raise_one_line_reasons(mixed, rel, words):
    root, _ = mixed
    with pytest.raises(ImageDecodeError) as info:
        load_image(root / rel)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_pixel_limit_is_checked_from_the_header(tmp_path):
    (tmp_path / "big.png").write_bytes(png_header_claiming(5000, 4000))
    with pytest.raises(ImageDecodeError, match="5000 x 4000"):  # the header alone: it holds no pixels at all
        load_image(tmp_path / "big.png", max_pixels=1_000_000)


def test_dicom_pixel_limit(tmp_path):
    with pytest.raises(ImageDecodeError, match="too large"):
        load_image(get_testdata_file("CT_small.dcm"), max_pixels=100)


def test_no_warning_escapes_from_a_file_that_makes_pydicom_warn():
    # badVR.dcm makes pydicom warn (pytest turns warnings into errors); the reason must be clean.
    with pytest.raises(ImageDecodeError):
        load_image(get_testdata_file("badVR.dcm"))


# --- scanning -------------------------------------------------------------------------------------------


def test_mixed_folder_accounts_for_every_file(mixed):
    root, expected = mixed
    report = scan(root)
    assert report.files_seen == len(expected) == len(report.samples) + len(report.skipped)
    reasons = {s.path: s.reason for s in report.skipped}
    for rel, word in expected.items():
        if word is None:
            assert rel not in reasons, f"{rel} skipped: {reasons.get(rel)}"
        else:
            assert word in reasons[rel], (rel, reasons[rel])
    assert report.usable and report.classes == ["cat", "person", "scan"]
    assert report.counts == {"cat": 6, "person": 4, "scan": 4}
    assert report.duplicates == [["scan/MR_small.dcm", "scan/mr_export_without_extension"]]
    assert any("'person' has only 4" in w.message for w in report.warnings)
    sample = next(s for s in report.samples if s.path.endswith("画像.png"))
    assert report.abspath(sample).is_file() and (sample.width, sample.height) == (_photo("chelsea").height, 96)


def test_report_round_trips_through_json(mixed):
    report = scan(mixed[0])
    again = ScanReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report and again.to_dict()["usable"] is True


def test_patient_data_never_reaches_report_or_cache(mixed, _isolated_home):
    report = scan(mixed[0])
    text = json.dumps(report.to_dict(), ensure_ascii=False)
    cache_bytes = b"".join(p.read_bytes() for p in (_isolated_home / "cache").rglob("*") if p.is_file())
    assert cache_bytes, "the scan cache was not written"
    for secret in ("CompressedSamples", "CT1", "MR1"):
        assert secret not in text
        assert secret.encode() not in cache_bytes


def test_label_conflicts_are_skipped_and_duplicates_kept(digits_dir, tmp_path):
    root = shutil.copytree(digits_dir, tmp_path / "d")
    shutil.copy(root / "digit_0/0_000.png", root / "digit_1/copy_of_a_zero.png")
    (root / "digit_2/sub").mkdir()
    shutil.copy(root / "digit_2/2_005.png", root / "digit_2/sub/dup.png")
    report = scan(root)
    assert report.conflicts == [["digit_0/0_000.png", "digit_1/copy_of_a_zero.png"]]
    reasons = {s.path: s.reason for s in report.skipped}
    assert "labelled 'digit_1'" in reasons["digit_0/0_000.png"]
    assert "labelled 'digit_0'" in reasons["digit_1/copy_of_a_zero.png"]
    assert report.duplicates == [["digit_2/2_005.png", "digit_2/sub/dup.png"]]
    assert report.counts == {"digit_0": 29, "digit_1": 30, "digit_2": 31}


def test_imbalance_and_small_class_warnings(tmp_path):
    root = write_digits_folder(tmp_path / "a", classes=(0,), per_class=30)
    write_digits_folder(root, classes=(1,), per_class=4)
    report = scan(root)
    assert report.usable
    assert any("imbalanced" in w.message and "'digit_0' has 30" in w.message for w in report.warnings)
    assert any("'digit_1' has only 4" in w.message for w in report.warnings)
    assert sorted((w.kind, w.label) for w in report.warnings) == [("few-images", "digit_1"), ("imbalanced", "digit_0")]


def test_report_stored_with_plain_sentence_warnings_still_reads(tmp_path):
    root = write_digits_folder(tmp_path / "a", classes=(0,), per_class=30)
    write_digits_folder(root, classes=(1,), per_class=4)
    old = json.loads(json.dumps(scan(root).to_dict()))
    old["warnings"] = [w["message"] for w in old["warnings"]]  # how reports were stored before findings had kinds
    again = ScanReport.from_dict(old)
    assert [w.kind for w in again.warnings] == ["other", "other"]
    assert [w.message for w in again.warnings] == old["warnings"]


@pytest.mark.parametrize(("setup", "words"), [
    (lambda p: p.mkdir(), "no files"),
    (lambda p: write_digits_folder(p, classes=(3,), per_class=5), "only one class"),
    (lambda p: (p.mkdir(), (p / "a.png").write_bytes(b"")), "no class folders"),
])
def test_unusable_data_sets(tmp_path, setup, words):
    setup(tmp_path / "d")
    report = scan(tmp_path / "d")
    assert not report.usable and words in report.unusable and "\n" not in report.unusable


def test_missing_folder_raises(tmp_path):
    with pytest.raises(DataError, match="not found"):
        scan(tmp_path / "nope")


def test_csv_layout_with_groups(digits_dir, tmp_path):
    rows = ["path,label,group"]
    for i, png in enumerate(sorted(digits_dir.rglob("*.png"))[:40]):
        rows.append(f"{png.relative_to(digits_dir).as_posix()},{png.parent.name},p{i // 4}")
    rows += ["digit_0/missing.png,digit_0,p99", ",digit_0,", "digit_0/0_000.png,digit_0,p0"]
    (digits_dir / "labels.csv").write_text("\n".join(rows) + "\n")
    try:
        report = scan(digits_dir, csv="labels.csv")
    finally:
        (digits_dir / "labels.csv").unlink()
    assert report.files_seen == 43 and len(report.samples) == 40
    assert report.counts == {"digit_0": 30, "digit_1": 10}
    reasons = " | ".join(s.reason for s in report.skipped)
    assert "does not exist" in reasons and "empty path" in reasons and "listed again" in reasons
    assert {s.group for s in report.samples} == {f"p{i}" for i in range(10)}


def test_csv_semicolons_and_bad_header(tmp_path, digits_dir):
    (tmp_path / "x.csv").write_text("file;class\na.png;b\n")
    with pytest.raises(DataError, match="path,label"):
        scan(tmp_path / "x.csv")
    rows = [f"{digits_dir}/digit_{c}/{c}_{i:03d}.png;digit_{c}" for c in (0, 1) for i in range(3)]
    (tmp_path / "y.csv").write_text("Path;Label\n" + "\n".join(rows))
    report = scan(tmp_path / "y.csv")
    assert report.counts == {"digit_0": 3, "digit_1": 3}
    assert report.abspath(report.samples[0]).is_file()


def test_min_side_and_max_pixels(tmp_path, digits_dir):
    report = scan(digits_dir, min_side=33)
    assert not report.samples and all("too small" in s.reason for s in report.skipped)
    report = scan(digits_dir, max_pixels=1000)
    assert all("too large: 32 x 32" in s.reason for s in report.skipped)


def test_cache_is_used_and_invalidated(tmp_path, _isolated_home):
    root = write_digits_folder(tmp_path / "d", classes=(0, 1), per_class=10)
    first = scan(root)
    cache_file = next((_isolated_home / "cache").glob("*.sqlite3"))
    with sqlite3.connect(cache_file) as conn:
        from tl_desktop.core.data.scancache import SCHEMA

        assert conn.execute(f"SELECT COUNT(*) FROM {SCHEMA}").fetchone()[0] == 20
    calls = []
    from tl_desktop.core.data import scancache

    original = scancache.inspect_file
    scancache.inspect_file = lambda *a, **k: calls.append(a) or original(*a, **k)
    try:
        assert scan(root) == first and calls == []
        _photo("camera", 40).save(root / "digit_0/0_000.png")  # same name, new content
        assert scan(root).samples != first.samples and len(calls) == 1
        scan(root, cache=False)
        assert len(calls) == 21
    finally:
        scancache.inspect_file = original


def test_corrupt_cache_is_rebuilt(tmp_path, _isolated_home, digits_dir):
    (_isolated_home / "cache").mkdir(exist_ok=True)
    (_isolated_home / "cache" / "scan-cache.sqlite3").write_bytes(b"this is not a database" * 100)
    assert scan(digits_dir).usable


def test_progress_and_cancel(tmp_path, digits_dir):
    seen = []
    scan(digits_dir, progress=lambda d, t: seen.append((d, t)), cache=False)
    assert seen[0] == (0, 90) and seen[-1] == (90, 90)
    token = CancelToken()

    def stop(done, total):
        token.cancel()

    with pytest.raises(Cancelled):
        scan(digits_dir, progress=stop, cancel=token, cache=False)
    assert not [t for t in threading.enumerate() if t.name.startswith("tl-scan")]


def test_scan_of_2000_small_pngs_accounts_for_each(tmp_path):
    root = tmp_path / "many"
    digits = write_digits_folder(tmp_path / "src", classes=(0, 1), per_class=100, size=16)
    for cls in ("digit_0", "digit_1"):
        (root / cls).mkdir(parents=True)
        for i, png in enumerate(sorted((digits / cls).glob("*.png")) * 10):
            (root / cls / f"{i:04d}.png").write_bytes(png.read_bytes() + i.to_bytes(4, "big"))
    report = scan(root, cache=False)
    assert len(report.samples) == 2000 and report.files_seen == 2000 and not report.skipped
    assert report.counts == {"digit_0": 1000, "digit_1": 1000}


def test_jpeg_sizes_are_the_real_sizes_not_the_draft_decode(tmp_path):
    """A 200 x 300 JPEG is 200 x 300 in the report (the scan checks it at 1/8 scale), and small JPEGs are kept."""
    photo = _photo("chelsea")
    for cls, size in (("big", (200, 300)), ("small", (40, 30))):
        (tmp_path / cls).mkdir()
        for i in range(6):
            photo.resize(size).rotate(i).save(tmp_path / cls / f"{i}.jpg", quality=90)
    report = scan(tmp_path, cache=False)
    assert not report.skipped
    sizes = {(s.label, s.width, s.height) for s in report.samples}
    assert sizes == {("big", 200, 300), ("small", 40, 30)}
