"""Read one image file: sniff, check cheaply for the scan, decode to 8-bit RGB for training.

Decisions users can rely on:

* Every decoded image is PIL mode ``"RGB"``, 8 bits per channel.
* 16-bit and 32-bit grey data (TIFF ``I;16``, ``I``, ``F``; DICOM without a window) is min-max scaled over
  the image to 0..255, never clipped at 255: the darkest pixel becomes 0 and the brightest 255.
* Transparency (RGBA, LA, palette with transparency) is composited on white, as image viewers show it.
* CMYK is converted through its embedded ICC profile when it has one (LittleCMS), else with Pillow's formula.
* GIF and multi-page TIFF: the first frame. EXIF orientation is applied.
* Multi-frame DICOM (NumberOfFrames > 1: a cine loop, an enhanced CT/MR series, tomosynthesis) is refused
  from its header: a classifier of single images must not silently pick one frame of a series.
* DICOM: modality LUT (rescale slope/intercept), then the VOI window (or VOI LUT) when the file has one,
  else min-max; MONOCHROME1 is inverted so bone is white; palette colour and YBR become RGB.
* Pixel counts are checked from the header before any pixel is decoded, and no file's data may expand in
  memory past what that limit allows: deflated and RLE DICOM are bounded before pydicom inflates them, and
  one process-wide pixel budget keeps parallel decodes of large images from piling up (``bounds``).

Library warnings (Pillow's EXIF/bomb warnings, pydicom's invalid-VR warnings) are caught here, with one
shared guard for all threads, so they never escape to the caller. Error messages never contain DICOM
patient-identifying values.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tl_desktop.core.data.bounds import check_deflated, check_rle, decode_slot, stretch_to_uint8
from tl_desktop.core.data.pixelhash import dicom_pixel_digest, pil_pixel_digest
from tl_desktop.core.errors import ImageDecodeError

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".dcm"}
)
DEFAULT_MAX_PIXELS = 100_000_000  # 10,000 x 10,000 px: larger than any X-ray or microscopy tile we expect
DEFAULT_MIN_SIDE = 8
PIL_FORMATS = frozenset({"PNG", "JPEG", "MPO", "BMP", "DIB", "GIF", "TIFF", "WEBP"})
_IN_MEMORY_LIMIT = 64 * 1024 * 1024  # files up to this size are read once, hashed and decoded from memory
_DICOM_DEFER = 1024 * 1024  # larger DICOM files: elements over this size (pixel data) are read only when used
_PLAIN_MODES = frozenset({"1", "L", "RGB"})  # conversion to RGB cannot fail: the scan need not prove it
_HIGH_DEPTH_MODES = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N", "I;16S", "I;32", "I;32B"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_IDENTIFYING_TAGS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientBirthName", "PatientMotherBirthName",
    "OtherPatientIDs", "OtherPatientNames", "PatientAddress", "PatientTelephoneNumbers", "AccessionNumber",
    "ReferringPhysicianName", "InstitutionName", "StudyID", "IssuerOfPatientID",
)


@dataclass(frozen=True)
class FileInfo:
    """What the scan needs to know about a readable image file."""

    sha256: str
    width: int
    height: int
    pixel_sha256: str | None = None  # the decoded pixels (``pixelhash``); None for JPEG


class _WarningGuard:
    """A process-wide, reference-counted ``warnings.catch_warnings``: safe to enter from many threads.

    ``catch_warnings`` swaps module globals, so nesting it from concurrent threads can leave the filters in
    a wrong state. Here the first thread in installs one "ignore" filter and the last one out restores.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._ctx: warnings.catch_warnings | None = None

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._ctx = warnings.catch_warnings()
                self._ctx.__enter__()
                warnings.simplefilter("ignore")
            self._depth += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._ctx is not None:
                self._ctx.__exit__(None, None, None)
                self._ctx = None


quiet_warnings = _WarningGuard()


def is_dicom_header(head: bytes) -> bool:
    """True when ``head`` (the first 132+ bytes of a file) has the DICOM 'DICM' preamble at offset 128."""
    return len(head) >= 132 and head[128:132] == b"DICM"


def read_head(path: Path, n: int = 132) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(n)


def is_candidate(path: Path) -> bool:
    """Worth opening: an image suffix, or DICOM by content (PACS exports often have no extension)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        return is_dicom_header(read_head(path))
    except OSError:
        return False


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _too_large(width: int, height: int, max_pixels: int) -> ImageDecodeError:
    return ImageDecodeError(
        f"too large: {width} x {height} px is over the limit of {max_pixels:,} pixels (not decoded)"
    )


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"invalid image size {width} x {height} in the header")
    if width * height > max_pixels:
        raise _too_large(width, height, max_pixels)


# --- Pillow formats -----------------------------------------------------------------------------------


def _open_pil(src: Path | BinaryIO, max_pixels: int) -> Image.Image:
    """Open (header only), check format and pixel count. Pillow's own bomb check is turned into a reason."""
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels  # the user asked for a higher limit: never lowered here
    try:
        im = Image.open(src)
    except Image.DecompressionBombError as exc:
        match = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(match.group(1)):,} pixels" if match else "its size"
        raise ImageDecodeError(f"too large: {size} is over the limit of {max_pixels:,} pixels (not decoded)") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("not an image (unrecognised or corrupt file)") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"unreadable image header: {_one_line(exc)}") from exc
    if im.format not in PIL_FORMATS:
        im.close()
        raise ImageDecodeError(f"unsupported image format {im.format}")
    _check_pixels(im.width, im.height, max_pixels)
    return im


def _verify_pil(im: Image.Image, src: Path | BinaryIO, max_pixels: int) -> str | None:
    """Prove the file decodes and return its pixel digest: JPEG only at 1/8 scale (no digest), PNG after its
    CRC walk, everything else by a full decode to RGB."""
    if im.format in {"JPEG", "MPO"}:
        im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
        im.load()
        return None
    if im.format == "PNG":
        im.verify()  # checks every chunk's CRC, which decoding alone skips; the image must then be reopened
        if not isinstance(src, Path):
            src.seek(0)
        with _open_pil(src, max_pixels) as again:
            return pil_pixel_digest(_decoded(again))
    decoded = _decoded(im)
    if decoded.mode not in _PLAIN_MODES:
        _to_rgb(decoded)
    return pil_pixel_digest(decoded)


def _composite_on_white(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    background.alpha_composite(rgba)
    return background.convert("RGB")


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    profile = im.info.get("icc_profile")
    if profile:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            return ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:  # noqa: BLE001 - a broken profile falls back to the plain formula
            pass
    return im.convert("RGB")


def _pil_to_rgb(im: Image.Image) -> Image.Image:
    """Decode the first frame of ``im`` and convert it to 8-bit RGB (see the module docstring)."""
    return _to_rgb(_decoded(im))


def _decoded(im: Image.Image) -> Image.Image:
    """The first frame of ``im``, decoded, with its EXIF orientation applied (in place: no copy)."""
    im.load()
    if im.format in {"JPEG", "MPO", "TIFF", "WEBP", "PNG"}:
        ImageOps.exif_transpose(im, in_place=True)
    return im


def _to_rgb(im: Image.Image) -> Image.Image:
    """A decoded image converted to 8-bit RGB (see the module docstring)."""
    mode = im.mode
    if mode in _HIGH_DEPTH_MODES:
        return Image.fromarray(stretch_to_uint8(np.asarray(im)), mode="L").convert("RGB")
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        mode = im.mode
    if mode in _ALPHA_MODES:
        return _composite_on_white(im)
    if mode == "CMYK":
        return _cmyk_to_rgb(im)
    if mode == "RGB":
        return im
    return im.convert("RGB")


# --- DICOM ----------------------------------------------------------------------------------------------


def _scrub(text: str, ds: Any) -> str:
    """Remove any patient-identifying value of ``ds`` from ``text``."""
    for keyword in _IDENTIFYING_TAGS:
        value = ds.get(keyword) if ds is not None else None
        for part in {str(value), *str(value).split("^")} if value else ():
            if len(part.strip()) >= 2:
                text = text.replace(part.strip(), "<redacted>")
    return text


def _read_dicom(src: Path | BinaryIO, force: bool, stop_before_pixels: bool = False, defer: bool = False) -> Any:
    """The data set; with ``defer`` (a file on disk) large elements such as the pixel data are read on use."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(src, force=force, stop_before_pixels=stop_before_pixels,
                               defer_size=_DICOM_DEFER if defer else None)
    except InvalidDicomError as exc:
        raise ImageDecodeError("not a DICOM file (no DICOM header)") from exc
    except Exception as exc:  # noqa: BLE001 - messages may quote element values: only the type is shown
        raise ImageDecodeError(f"unreadable DICOM file ({type(exc).__name__})") from exc


def _dicom_dims(ds: Any) -> tuple[int, int]:
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ImageDecodeError("DICOM file holds no image (e.g. a report, plan or structure set)")
    try:
        return int(ds.Columns), int(ds.Rows)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ImageDecodeError("DICOM image without valid Rows/Columns") from exc


def _check_frames(ds: Any) -> None:
    """Refuse multi-frame data sets from the header: a cine loop or series is not one image to classify."""
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        frames = 1  # unreadable: pydicom's decoder of frame 0 decides
    if frames > 1:
        raise ImageDecodeError(f"{frames} frames: multi-frame DICOM (cine loop or series) is not supported; "
                               "export the frame to classify as a single-frame image (not decoded)")


def _voi_range(ds: Any) -> tuple[float, float]:
    """The output range of pydicom's linear windowing for ``ds`` (PS3.3 C.11.2.1.2)."""
    if ds.get("ModalityLUTSequence"):
        lo, hi = 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    elif int(ds.get("PixelRepresentation", 0)) == 0:
        lo, hi = 0.0, float(2 ** int(ds.BitsStored) - 1)
    else:
        lo, hi = float(-(2 ** (int(ds.BitsStored) - 1))), float(2 ** (int(ds.BitsStored) - 1) - 1)
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is not None and intercept is not None:
        lo, hi = lo * float(slope) + float(intercept), hi * float(slope) + float(intercept)
    return min(lo, hi), max(lo, hi)


def _dicom_grey(arr: np.ndarray, ds: Any) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    values = apply_modality_lut(arr, ds)
    out: np.ndarray | None = None
    if ds.get("VOILUTSequence"):
        out = stretch_to_uint8(apply_voi_lut(values, ds, index=0, prefer_lut=True))
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        try:
            lo, hi = _voi_range(ds)
            out = stretch_to_uint8(apply_voi_lut(values, ds, index=0, prefer_lut=False), lo, hi)
        except (ValueError, TypeError, AttributeError, IndexError):
            out = None  # an invalid window: fall back to min-max
    if out is None:
        out = stretch_to_uint8(values)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        out = 255 - out
    return out


def _dicom_colour(arr: np.ndarray, ds: Any) -> np.ndarray:
    if str(ds.get("PhotometricInterpretation", "")).upper() == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
    if arr.dtype == np.uint8:
        return arr
    bits = int(ds.get("BitsStored", 8)) if arr.ndim == 3 and arr.dtype.kind in "ui" else 0
    if str(ds.get("PhotometricInterpretation", "")).upper() == "PALETTE COLOR":
        return stretch_to_uint8(arr, 0, 65535 if arr.dtype == np.uint16 else 255)
    return stretch_to_uint8(arr, 0, 2**bits - 1) if bits else stretch_to_uint8(arr)


def _decode_dicom(src: Path | BinaryIO, force: bool, max_pixels: int) -> tuple[Image.Image, str]:
    """The image as RGB, and the digest of its stored pixel values (``pixelhash``); frames, pixels and
    compressed sizes are checked before any pixel data is expanded."""
    from pydicom.pixels import pixel_array

    deflated = False if force else check_deflated(src, max_pixels)
    ds = _read_dicom(src, force, defer=isinstance(src, Path) and not deflated)
    width, height = _dicom_dims(ds)
    _check_frames(ds)
    _check_pixels(width, height, max_pixels)
    try:
        with decode_slot(width * height):
            check_rle(ds, width, height)
            arr = pixel_array(ds, index=0)
            digest = dicom_pixel_digest(arr, ds)
            colour = arr.ndim == 3 or str(ds.get("PhotometricInterpretation", "")).upper() == "PALETTE COLOR"
            rgb = _dicom_colour(arr, ds) if colour else np.stack([_dicom_grey(arr, ds)] * 3, axis=-1)
    except ImageDecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - decoder plugins raise anything
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        what = f" ({syntax.name})" if syntax is not None and syntax.is_compressed else ""
        raise ImageDecodeError(_scrub(f"DICOM pixel data cannot be decoded{what}: {_one_line(exc)}", ds)) from exc
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ImageDecodeError(f"DICOM pixel data has an unexpected shape {tuple(rgb.shape)}")
    return Image.fromarray(np.ascontiguousarray(rgb), mode="RGB"), digest


def read_dicom_value(path: Path | str, keyword: str) -> str | None:
    """A DICOM element's value as text (no pixel data read), or None when absent or not DICOM.

    The value may identify a patient: callers must hash it before storing or showing it.
    """
    path = Path(path)
    try:
        with quiet_warnings:
            ds = _read_dicom(path, force=path.suffix.lower() == ".dcm", stop_before_pixels=True)
    except (ImageDecodeError, OSError):
        return None
    value = ds.get(keyword)
    if value is None or str(value).strip() == "":
        return None
    return str(value).strip()


# --- public entry points -------------------------------------------------------------------------------


def _source(path: Path) -> tuple[Path | BinaryIO, bytes | None, int]:
    try:
        size = path.stat().st_size
        if size == 0:
            raise ImageDecodeError("empty file (0 bytes)")
        if size <= _IN_MEMORY_LIMIT:
            data = path.read_bytes()
            return io.BytesIO(data), data, size
    except OSError as exc:
        raise ImageDecodeError(f"cannot read the file: {exc.strerror or type(exc).__name__}") from exc
    return path, None, size


def _is_dicom(path: Path, data: bytes | None) -> bool:
    head = data[:132] if data is not None else read_head(path)
    return is_dicom_header(head) or path.suffix.lower() == ".dcm"


def load_image(path: Path | str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode an image file (any supported format, DICOM included) to 8-bit RGB.

    Raises:
        ImageDecodeError: with a one-line reason (empty, not an image, corrupt, too large, ...).
    """
    path = Path(path)
    src, data, _ = _source(path)
    with quiet_warnings:
        if _is_dicom(path, data):
            return _decode_dicom(src, not is_dicom_header(data[:132] if data else read_head(path)), max_pixels)[0]
        im = _open_pil(src, max_pixels)
        with _decode_errors(), im, decode_slot(im.width * im.height):
            rgb = _pil_to_rgb(im)
            return rgb.copy() if rgb is im else rgb  # ``im`` itself is closed on return


@contextlib.contextmanager
def _decode_errors():
    """Any failure while decoding becomes one ImageDecodeError line (truncated, corrupt or exotic files)."""
    try:
        yield
    except ImageDecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the decoder raises
        raise ImageDecodeError(f"corrupt or truncated image: {_one_line(exc)}") from exc


def inspect_file(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> FileInfo:
    """Hash a file's bytes and pixels and prove it decodes, decoding as little as its format allows (for the scan).

    Raises:
        ImageDecodeError: with a one-line reason.
    """
    src, data, _ = _source(path)
    digest = hashlib.sha256(data).hexdigest() if data is not None else file_sha256(path)
    with quiet_warnings:
        if _is_dicom(path, data):
            forced = not is_dicom_header(data[:132] if data is not None else read_head(path))
            im, pixels = _decode_dicom(src, forced, max_pixels)
            return FileInfo(digest, im.width, im.height, pixels)
        im = _open_pil(src, max_pixels)
        width, height = im.size  # before the check: a JPEG draft decode shrinks im.size to 1/8
        with _decode_errors(), im, decode_slot(width * height):
            pixels = _verify_pil(im, src, max_pixels)
        return FileInfo(digest, width, height, pixels)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex), read in chunks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
