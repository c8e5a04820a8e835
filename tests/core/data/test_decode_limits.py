"""Large and hostile sources: refused from the header with one line, within bounded memory (issue 15).

Every file here is made by the test without allocating what it claims: TIFF/JPEG headers patched to claim
20,000 px sides, DICOM files whose header claims frames or sizes their pixel data does not hold, and
deflate/RLE bombs that expand 1,000-fold. Peak memory is measured as VmHWM of a fresh child process.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from tests.helpers import write_digits_folder
from tl_desktop.core.data import bounds
from tl_desktop.core.data.decode import inspect_file, load_image
from tl_desktop.core.data.scan import scan
from tl_desktop.core.errors import ImageDecodeError

REPO = Path(__file__).resolve().parents[3]
_PEAK_CHILD = r"""
import json, sys
from pathlib import Path
def hwm():
    return next(int(l.split()[1]) // 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
from tl_desktop.core.data.decode import inspect_file, load_image
from tl_desktop.core.errors import ImageDecodeError
base, messages = hwm(), []
for name in sys.argv[1:]:
    for fn in (load_image, inspect_file):
        try:
            fn(Path(name))
            messages.append("decoded")
        except ImageDecodeError as exc:
            messages.append(str(exc))
print(json.dumps({"base": base, "peak": hwm(), "messages": messages}))
"""


def _in_child(*paths: Path) -> dict:
    """Decode ``paths`` with load_image and inspect_file in a fresh process; its messages and VmHWM (MB)."""
    proc = subprocess.run([sys.executable, "-c", _PEAK_CHILD, *map(str, paths)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM needs Linux /proc")


def tiff_claiming(path: Path, width: int, height: int, compression: str | None = None) -> Path:
    """A 16 x 16 TIFF written by Pillow whose ImageWidth/ImageLength tags are patched to claim more."""
    buf = io.BytesIO()
    Image.new("L", (16, 16), 7).save(buf, "TIFF", compression=compression)
    data = bytearray(buf.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        at = ifd + 2 + 12 * i
        tag, kind = struct.unpack_from("<HH", data, at)
        if tag in (256, 257):
            struct.pack_into("<H" if kind == 3 else "<I", data, at + 8, width if tag == 256 else height)
    path.write_bytes(bytes(data))
    return path


def jpeg_claiming(path: Path, width: int, height: int) -> Path:
    buf = io.BytesIO()
    Image.new("L", (16, 16), 7).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    struct.pack_into(">HH", data, data.find(b"\xff\xc0") + 5, height, width)
    path.write_bytes(bytes(data))
    return path


def write_dicom(path: Path, rows: int, cols: int, pixels: bytes, *, frames: int | None = None,
                syntax: str = "1.2.840.10008.1.2.1", bits: int = 16) -> Path:
    """A minimal secondary-capture DICOM; ``pixels`` may hold less (or more) than the header claims."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    meta.TransferSyntaxUID = UID(syntax)
    ds = Dataset()
    ds.file_meta, ds.SOPClassUID, ds.SOPInstanceUID = meta, SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = "OT", rows, cols, 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit, ds.PixelRepresentation = bits - 1, 0
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.PixelData = pixels
    ds["PixelData"].VR = "OW" if bits == 16 else "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def _frames(n: int, side: int = 64) -> bytes:
    return np.random.default_rng(0).integers(0, 4000, (n, side, side), dtype=np.uint16).tobytes()


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# --- 20,000 x 20,000 sources and lying headers -------------------------------------------------------------


@needs_proc
def test_20000_px_sources_are_refused_from_the_header_in_little_memory(tmp_path):
    files = [tiff_claiming(tmp_path / "raw.tif", 20000, 20000),
             tiff_claiming(tmp_path / "deflate.tif", 20000, 20000, "tiff_deflate"),
             jpeg_claiming(tmp_path / "huge.jpg", 20000, 20000),
             write_dicom(tmp_path / "huge.dcm", 20000, 20000, b"\0\0" * 64)]
    result = _in_child(*files)
    assert result["peak"] < 300, result  # a decode would need 400 MB of grey + 1.2 GB of RGB
    assert result["messages"][:6] == ["too large: 400,000,000 pixels is over the limit of 100,000,000 pixels "
                                      "(not decoded)"] * 6  # TIFFs and JPEG: Pillow's own check, then ours
    assert result["messages"][6:] == ["too large: 20000 x 20000 px is over the limit of 100,000,000 pixels "
                                      "(not decoded)"] * 2


def test_tiff_over_our_limit_but_under_pillows_names_its_size(tmp_path):
    path = tiff_claiming(tmp_path / "big.tif", 12000, 12000, "tiff_deflate")
    for fn in (load_image, inspect_file):
        with pytest.raises(ImageDecodeError) as info:
            fn(path)
        assert _one_line(info) == "too large: 12000 x 12000 px is over the limit of 100,000,000 pixels (not decoded)"


@needs_proc
def test_a_legal_16bit_decode_costs_a_few_times_its_size(tmp_path):
    ramp = (np.arange(4000 * 4000, dtype=np.uint32) % 65536).astype(np.uint16).reshape(4000, 4000)
    Image.fromarray(ramp).save(tmp_path / "ct.tif", compression="tiff_deflate")
    result = _in_child(tmp_path / "ct.tif")
    assert result["messages"] == ["decoded", "decoded"]
    # 16 M px: 32 MB stored, 48 MB as RGB. The float64 stretch alone used to take ~400 MB more.
    assert result["peak"] - result["base"] < 250, result


# --- multi-frame DICOM ------------------------------------------------------------------------------------


def test_multiframe_dicom_is_refused_before_any_pixel_is_decoded(tmp_path, monkeypatch):
    import pydicom.pixels

    def never(*_a, **_k):
        raise AssertionError("pixel data decoded")

    monkeypatch.setattr(pydicom.pixels, "pixel_array", never)
    path = write_dicom(tmp_path / "cine.dcm", 64, 64, _frames(5), frames=5)
    for fn in (load_image, inspect_file):
        with pytest.raises(ImageDecodeError) as info:
            fn(path)
        assert _one_line(info).startswith("5 frames: multi-frame DICOM (cine loop or series) is not supported; "
                                          "export the frame to classify")


def test_frames_over_the_limit_with_one_frame_under_it_are_refused(tmp_path):
    # 5 x 64 x 64 = 20,480 px over a limit of 10,000 that one 4,096 px frame fits; the data holds one frame.
    path = write_dicom(tmp_path / "series.dcm", 64, 64, _frames(1), frames=5)
    with pytest.raises(ImageDecodeError, match="^5 frames: multi-frame"):
        load_image(path, max_pixels=10_000)


def test_one_frame_dicom_with_number_of_frames_1_decodes(tmp_path):
    path = write_dicom(tmp_path / "one.dcm", 64, 64, _frames(1), frames=1)
    assert load_image(path).size == (64, 64) and inspect_file(path).width == 64


def test_pydicoms_multiframe_test_files_are_refused():
    for name, frames in (("examples_ybr_color.dcm", 30), ("SC_rgb_rle_2frame.dcm", 2)):
        with pytest.raises(ImageDecodeError, match=f"^{frames} frames: multi-frame DICOM"):
            load_image(get_testdata_file(name))


# --- DICOM decompression bombs ------------------------------------------------------------------------------


def _deflate_bomb(path: Path, inflated: int) -> Path:
    """A deflated DICOM whose 64 x 64 header comes with ``inflated`` bytes of zero pixel data (~1,000:1)."""
    write_dicom(path, 64, 64, b"\0\0" * 64 * 64, syntax="1.2.840.10008.1.2.1.99")
    data = path.read_bytes()
    start = 132 + 12 + struct.unpack_from("<I", data, 140)[0]  # after the file meta group
    body = zlib.decompress(data[start:], -zlib.MAX_WBITS)
    at = body.rfind(struct.pack("<HH", 0x7FE0, 0x0010))
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [squeeze.compress(body[:at] + struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, inflated))]
    zeros = bytes(1 << 20)
    parts += [squeeze.compress(zeros) for _ in range(inflated >> 20)]
    path.write_bytes(data[:start] + b"".join(parts) + squeeze.flush())
    return path


def test_deflate_bomb_is_refused_while_inflating(tmp_path):
    path = _deflate_bomb(tmp_path / "bomb.dcm", 64 << 20)
    assert path.stat().st_size < 200_000
    with pytest.raises(ImageDecodeError) as info:
        inspect_file(path, max_pixels=1_000_000)  # allows 4 MB + 16 MiB of inflated data
    assert _one_line(info) == ("too large: the deflated DICOM data expands to more than 19 MB, over the limit of "
                               "1,000,000 pixels (not decoded)")


def test_real_deflated_dicom_still_decodes():
    assert load_image(get_testdata_file("image_dfl.dcm")).mode == "RGB"


def test_rle_bomb_is_refused_before_decoding(tmp_path):
    from pydicom.encaps import encapsulate

    segment = bytes([0x81, 0]) * ((64 << 20) // 128)  # each pair decodes to 128 zero bytes: 64 MB in all
    frame = struct.pack("<16I", 1, 64, *([0] * 14)) + segment
    path = write_dicom(tmp_path / "rle.dcm", 512, 512, encapsulate([frame]), syntax="1.2.840.10008.1.2.5", bits=8)
    start = time.monotonic()
    with pytest.raises(ImageDecodeError) as info:
        load_image(path)
    assert _one_line(info).startswith("too large: RLE pixel data expands past its 512 x 512 px frame")
    assert time.monotonic() - start < 5  # counting stops at twice the frame, it does not walk the whole bomb


def test_real_rle_dicom_decodes_like_its_uncompressed_twin():
    rle = np.asarray(load_image(get_testdata_file("MR_small_RLE.dcm")))
    assert (rle == np.asarray(load_image(get_testdata_file("MR_small.dcm")))).all()


# --- the scan and the CLI go on with the rest ---------------------------------------------------------------


@pytest.fixture
def folder_with_large_files(tmp_path):
    root = write_digits_folder(tmp_path / "data", classes=(0, 1), per_class=6)
    tiff_claiming(root / "digit_0" / "slide.tif", 20000, 20000, "tiff_deflate")
    write_dicom(root / "digit_1" / "cine.dcm", 64, 64, _frames(3), frames=3)
    return root


def test_scan_skips_large_and_multiframe_files_with_one_line_and_keeps_the_rest(folder_with_large_files):
    report = scan(folder_with_large_files, cache=False)
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons == {
        "digit_0/slide.tif": "too large: 400,000,000 pixels is over the limit of 100,000,000 pixels (not decoded)",
        "digit_1/cine.dcm": "3 frames: multi-frame DICOM (cine loop or series) is not supported; export the frame to "
                      "classify as a single-frame image (not decoded)"}
    assert len(report.samples) == 12


def test_cli_scan_prints_one_line_per_refused_file_and_no_traceback(folder_with_large_files, tmp_path):
    env = {**os.environ, "TL_DESKTOP_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-m", "tl_desktop.cli", "scan", str(folder_with_large_files)], cwd=REPO,
                          env=env, capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    assert "  digit_0/slide.tif: too large: 400,000,000 pixels is over the limit of 100,000,000 pixels (not decoded)" in lines
    assert any(line.startswith("  digit_1/cine.dcm: 3 frames: multi-frame DICOM") for line in lines)


# --- the pieces: decode budget, chunked stretch, EXIF in place ------------------------------------------------


def test_decode_budget_makes_a_second_large_decode_wait():
    budget, order = bounds._PixelBudget(100), []
    first_in, release = threading.Event(), threading.Event()

    def first():
        with budget.slot(60):
            order.append("first in")
            first_in.set()
            release.wait(5)
            order.append("first out")

    def second():
        first_in.wait(5)
        with budget.slot(60):
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    first_in.wait(5)
    time.sleep(0.2)
    assert order == ["first in"]  # 60 + 60 > 100: the second waits
    release.set()
    for t in threads:
        t.join(5)
    assert order == ["first in", "first out", "second in"]
    with budget.slot(500):  # larger than the whole budget: runs alone, never deadlocks
        assert budget.in_flight == 500
    assert budget.in_flight == 0


def _stretch_reference(arr, lo=None, hi=None):
    data = np.asarray(arr, dtype=np.float64)
    finite = np.isfinite(data)
    if not finite.any():
        return np.zeros(data.shape, dtype=np.uint8)
    lo = float(data[finite].min()) if lo is None else lo
    hi = float(data[finite].max()) if hi is None else hi
    if hi <= lo:
        return np.zeros(data.shape, dtype=np.uint8)
    return np.clip(np.rint((np.where(finite, data, lo) - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("window", [(None, None), (100.0, 3000.0)])
def test_chunked_stretch_equals_the_whole_image_formula(monkeypatch, window):
    monkeypatch.setattr(bounds, "_CHUNK", 97)  # many chunks, one of them partial
    rng = np.random.default_rng(1)
    grey16 = rng.integers(0, 4096, (61, 47), dtype=np.uint16)
    floats = rng.normal(0, 1000, (61, 47))
    floats[3, 5], floats[7, 1], floats[0, 0] = np.nan, np.inf, -np.inf
    for arr in (grey16, floats, grey16[:, ::2], np.full((5, 5), np.nan)):
        assert (bounds.stretch_to_uint8(arr, *window) == _stretch_reference(arr, *window)).all()


def test_exif_orientation_is_still_applied(tmp_path):
    photo = Image.fromarray(np.arange(40 * 20 * 3, dtype=np.uint8).reshape(20, 40, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show
    photo.save(tmp_path / "turned.png", exif=exif)
    photo.transpose(Image.Transpose.ROTATE_270).save(tmp_path / "upright.png")
    turned = load_image(tmp_path / "turned.png")
    assert turned.size == (20, 40)
    assert (np.asarray(turned) == np.asarray(load_image(tmp_path / "upright.png"))).all()
    assert inspect_file(tmp_path / "turned.png").pixel_sha256 == inspect_file(tmp_path / "upright.png").pixel_sha256
