"""An image's own grey values for a viewer, before any 8-bit stretch, with its display window and plain facts.

``load_grey_levels`` is the viewer's counterpart of ``decode.load_image``: the same checks (pixel limit from
the header, multi-frame refusal, bounded deflate/RLE, the process-wide decode budget) and the same DICOM
modality LUT (rescale slope/intercept), but the values are kept as they are so a viewer can window them:

* DICOM greyscale: the modality-rescaled values (Hounsfield units for CT), the header's first VOI window
  (WindowCenter/WindowWidth) as the default, MONOCHROME1 marked as inverted.
* 16/32-bit PNG and TIFF: the stored values; no default window (the viewer starts at the full range, as the
  8-bit stretch of ``decode`` does).
* 8-bit and colour images (and colour DICOM): ``rgb`` only, exactly as ``load_image`` decodes them.

Nothing here reads or returns a patient-identifying element; ``ImageFacts`` holds only what describes the
pixels (size, bit depth, photometric interpretation, modality, units).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from tl_desktop.core.data import decode as _d
from tl_desktop.core.data.bounds import check_deflated, check_rle, decode_slot
from tl_desktop.core.errors import ImageDecodeError

_MODE_WORDS = {"1": "black and white", "L": "greyscale", "LA": "greyscale with transparency", "P": "palette colour",
               "RGB": "colour (RGB)", "RGBA": "colour with transparency", "CMYK": "colour (CMYK)",
               "YCbCr": "colour (YCbCr)", "I;16": "greyscale", "I": "greyscale", "F": "greyscale (floating point)"}
_HU_RANGE = (-3100.0, 10_000.0)  # values outside this are not plausible Hounsfield units (padding included)


@dataclass(frozen=True)
class ImageFacts:
    """What describes the pixels of one file; never a patient, study or institution value."""

    format: str  # "DICOM", "PNG", "JPEG", "TIFF", ...
    width: int
    height: int
    bits: int  # bits per sample: DICOM BitsStored, 16 for a 16-bit PNG, 8 for an ordinary image
    photometric: str  # DICOM PhotometricInterpretation, or the colour model in words
    size_bytes: int
    sha256: str
    modality: str | None = None  # DICOM Modality (CT, DX, MR, ...)
    units: str | None = None  # "HU" when the values are plausibly Hounsfield units, else None
    inverted: bool = False  # MONOCHROME1: higher values are shown darker


@dataclass(frozen=True)
class GreyLevels:
    """``values`` (float32, H x W) for windowable greyscale data, else ``rgb`` (uint8, H x W x 3)."""

    values: np.ndarray | None
    rgb: np.ndarray | None
    window: tuple[float, float] | None  # (centre, width) from the file's header
    facts: ImageFacts

    @cached_property
    def value_range(self) -> tuple[float, float] | None:
        """The finite minimum and maximum of ``values`` (None for 8-bit/colour images or no finite value)."""
        if self.values is None:
            return None
        finite = self.values[np.isfinite(self.values)]
        return (float(finite.min()), float(finite.max())) if finite.size else None


def load_grey_levels(path: Path | str, *, max_pixels: int = _d.DEFAULT_MAX_PIXELS) -> GreyLevels:
    """Decode ``path`` for viewing (see the module docstring).

    Raises:
        ImageDecodeError: with the same one-line reasons as ``decode.load_image``.
    """
    path = Path(path)
    src, data, size = _d._source(path)
    sha = hashlib.sha256(data).hexdigest() if data is not None else _d.file_sha256(path)
    with _d.quiet_warnings:
        if _d._is_dicom(path, data):
            forced = not _d.is_dicom_header(data[:132] if data is not None else _d.read_head(path))
            grey = _dicom_levels(src, forced, max_pixels, size, sha)
            if grey is not None:
                return grey
            rgb = np.asarray(_d.load_image(path, max_pixels=max_pixels))  # colour DICOM: as decode shows it
            return GreyLevels(None, rgb, None, ImageFacts("DICOM", rgb.shape[1], rgb.shape[0], 8, "colour",
                                                          size, sha))
        return _pil_levels(src, max_pixels, size, sha)


def _pil_levels(src: Path | BinaryIO, max_pixels: int, size: int, sha: str) -> GreyLevels:
    im = _d._open_pil(src, max_pixels)
    with _d._decode_errors(), im, decode_slot(im.width * im.height):
        decoded = _d._decoded(im)
        mode, fmt = decoded.mode, str(im.format)
        facts = ImageFacts("JPEG" if fmt == "MPO" else fmt, decoded.width, decoded.height, _pil_bits(mode, fmt),
                           _MODE_WORDS.get(mode.split(";")[0] if mode.startswith("I;") else mode, mode), size, sha)
        if mode in _d._HIGH_DEPTH_MODES:
            return GreyLevels(np.asarray(decoded, dtype=np.float32), None, None, facts)
        return GreyLevels(None, np.asarray(_d._to_rgb(decoded)), None, facts)


def _pil_bits(mode: str, fmt: str) -> int:
    if mode.startswith("I;16") or (mode == "I" and fmt == "PNG"):
        return 16
    if mode in {"I", "F", "I;32", "I;32B"}:
        return 32
    return 1 if mode == "1" else 8


def _dicom_levels(src: Path | BinaryIO, forced: bool, max_pixels: int, size: int, sha: str) -> GreyLevels | None:
    """Greyscale DICOM as modality-rescaled values; None for colour data (the caller decodes it as RGB)."""
    from pydicom.pixels import apply_modality_lut, pixel_array

    deflated = False if forced else check_deflated(src, max_pixels)
    ds = _d._read_dicom(src, forced, defer=isinstance(src, Path) and not deflated)
    width, height = _d._dicom_dims(ds)
    _d._check_frames(ds)
    _d._check_pixels(width, height, max_pixels)
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if int(ds.get("SamplesPerPixel", 1) or 1) > 1 or photometric == "PALETTE COLOR":
        return None
    try:
        with decode_slot(width * height):
            check_rle(ds, width, height)
            arr = pixel_array(ds, index=0)
            values = np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
    except ImageDecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - decoder plugins raise anything
        raise ImageDecodeError(_d._scrub(f"DICOM pixel data cannot be decoded: {_d._one_line(exc)}", ds)) from exc
    if values.ndim != 2:
        return None
    modality = str(ds.get("Modality", "") or "").strip() or None
    facts = ImageFacts("DICOM", width, height, int(ds.get("BitsStored", 0) or 0) or arr.dtype.itemsize * 8,
                       photometric or "MONOCHROME2", size, sha, modality, _units(ds, values),
                       photometric == "MONOCHROME1")
    return GreyLevels(values, None, _header_window(ds), facts)


def _header_window(ds: Any) -> tuple[float, float] | None:
    """The first (WindowCenter, WindowWidth) pair of the header, or None when absent or invalid."""
    try:
        centre, width = (float(_first(ds.get(k))) for k in ("WindowCenter", "WindowWidth"))
    except (TypeError, ValueError, IndexError):
        return None
    return (centre, width) if np.isfinite(centre) and np.isfinite(width) and width >= 1 else None


def _first(value: Any) -> Any:
    """The first of a multi-valued element (pydicom's MultiValue), or the value itself."""
    return value[0] if isinstance(value, Sequence) and not isinstance(value, str | bytes) else value


def _units(ds: Any, values: np.ndarray) -> str | None:
    """"HU" when the header says so (CT with a rescale, or RescaleType HU) and the values are plausible."""
    declared = str(ds.get("RescaleType", "")).upper() == "HU" or (
        str(ds.get("Modality", "")).upper() == "CT" and ds.get("RescaleIntercept") is not None)
    if not declared or not values.size:
        return None
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    return "HU" if _HU_RANGE[0] <= lo and hi <= _HU_RANGE[1] else None


def window_to_uint8(values: np.ndarray, centre: float, width: float, inverted: bool = False) -> np.ndarray:
    """Map ``[centre - width/2, centre + width/2]`` linearly to 0..255 (clipped; NaN -> 0), inverted on request."""
    lo, width = centre - width / 2.0, max(float(width), 1e-6)
    out = np.empty(values.shape, dtype=np.float32)
    np.subtract(values, np.float32(lo), out=out)
    np.multiply(out, np.float32(255.0 / width), out=out)
    np.clip(out, 0, 255, out=out)
    np.nan_to_num(out, copy=False, nan=0.0)
    shown = (out + 0.5).astype(np.uint8)
    return 255 - shown if inverted else shown


class Windower:
    """Fast repeated windowing of one image: values are indexed once into at most 65,536 levels, and each
    window is a lookup table over those levels (about 10x faster than windowing the floats every time).

    Integer-valued data spanning fewer than 65,536 values (every 8-16-bit DICOM and TIFF) is indexed exactly;
    wider or fractional data is quantised to 65,536 steps over its range, far finer than the 256 grey levels
    a screen shows for any window wider than 1/256 of that range.
    """

    LEVELS = 65_536

    def __init__(self, values: np.ndarray, value_range: tuple[float, float] | None) -> None:
        lo, hi = value_range or (0.0, 0.0)
        integral = bool(np.all(np.mod(values[np.isfinite(values)], 1) == 0))
        self.step = 1.0 if integral and hi - lo < self.LEVELS else max((hi - lo) / (self.LEVELS - 1), 1e-12)
        self.base = lo
        scaled = np.nan_to_num((values - np.float32(lo)) / np.float32(self.step), nan=0.0)
        self.index = np.clip(np.rint(scaled), 0, self.LEVELS - 1).astype(np.uint16)
        self.count = int(self.index.max()) + 1 if self.index.size else 1

    def render(self, centre: float, width: float, inverted: bool = False, stride: int = 1) -> np.ndarray:
        """The image windowed to uint8 (H x W), as ``window_to_uint8`` would give it; with ``stride`` > 1
        only every stride-th pixel of every stride-th row (a quick preview)."""
        levels = self.base + self.step * np.arange(self.count, dtype=np.float64)
        lut = window_to_uint8(levels.astype(np.float32), centre, width, inverted)
        return lut[self.index[::stride, ::stride]]
