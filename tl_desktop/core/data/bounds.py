"""Memory bounds for decoding: what a file may cost in memory is decided before its pixels are expanded.

* ``decode_slot``: one process-wide budget of pixels being decoded at once, so that a scan's thread pool
  decoding many large (but allowed) images waits instead of holding them all in memory together.
* ``check_deflated``: a deflated DICOM data set is inflated once as a stream, keeping nothing, and refused
  when it expands past what the pixel limit allows (pydicom itself inflates the whole file in one call).
* ``check_rle_frame``: each RLE segment's decoded length is counted from its run headers, and a segment that
  expands past twice its Rows x Columns is refused before pydicom's decoder (which has no bound) runs.
* ``stretch_to_uint8``: the min-max / window stretch done in chunks, so a 16-bit image costs its own size
  plus a few megabytes, not eight float64 copies of itself.
"""

from __future__ import annotations

import contextlib
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from tl_desktop.core.errors import ImageDecodeError

DECODE_BUDGET_PIXELS = 200_000_000  # pixels decoded at the same time in one process (about 2 GB at peak)
_CHUNK = 1 << 20  # elements per chunk of the stretch; bytes per read of a deflated stream
_DEFLATED = "1.2.840.10008.1.2.1.99"
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})


class _PixelBudget:
    """Threads reserve the pixel count they are about to decode; a reservation waits while others would
    push the total past the budget. One image larger than the budget still runs, alone."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.in_flight = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def slot(self, pixels: int) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: self.in_flight == 0 or self.in_flight + pixels <= self.budget)
            self.in_flight += pixels
        try:
            yield
        finally:
            with self._cond:
                self.in_flight -= pixels
                self._cond.notify_all()


_budget = _PixelBudget(DECODE_BUDGET_PIXELS)


def decode_slot(pixels: int) -> contextlib.AbstractContextManager[None]:
    """Hold ``pixels`` of the process-wide decode budget while decoding (waits for room)."""
    return _budget.slot(pixels)


# --- deflated DICOM -------------------------------------------------------------------------------------


def _file_meta(head: bytes) -> tuple[int, str]:
    """Where the data set starts after the file meta group (explicit VR little endian), and its transfer
    syntax UID ("" when absent)."""
    pos, syntax = 132, ""
    while pos + 8 <= len(head):
        group, element = struct.unpack_from("<HH", head, pos)
        if group != 0x0002:
            break
        if head[pos + 4:pos + 6] in _LONG_VRS:
            length, value_at = struct.unpack_from("<I", head, pos + 8)[0], pos + 12
        else:
            length, value_at = struct.unpack_from("<H", head, pos + 6)[0], pos + 8
        if element == 0x0010:
            syntax = head[value_at:value_at + length].rstrip(b"\0 ").decode("ascii", "replace")
        pos = value_at + length
    return pos, syntax


def deflated_limit(max_pixels: int) -> int:
    """Bytes a deflated data set may expand to: 4 bytes a pixel (16-bit grey, 8-bit RGB, 32-bit grey) + 16 MiB."""
    return max_pixels * 4 + 16 * 1024 * 1024


def check_deflated(src: Path | BinaryIO, max_pixels: int) -> bool:
    """True for a deflated DICOM file; refuses one whose data set inflates past ``deflated_limit`` (a bomb).

    A stream is read from its start and left at its start; other transfer syntaxes cost one small read.

    Raises:
        ImageDecodeError: "too large ... (not decoded)", or the file cannot be read.
    """
    if not isinstance(src, Path):
        return _check_deflated(src, max_pixels)
    try:
        with open(src, "rb") as handle:
            return _check_deflated(handle, max_pixels)
    except OSError as exc:
        raise ImageDecodeError(f"cannot read the file: {exc.strerror or type(exc).__name__}") from exc


def _check_deflated(fp: BinaryIO, max_pixels: int) -> bool:
    fp.seek(0)
    start, syntax = _file_meta(fp.read(65536))
    try:
        if syntax != _DEFLATED:
            return False
        limit = deflated_limit(max_pixels)
        fp.seek(start)
        inflater, total = zlib.decompressobj(-zlib.MAX_WBITS), 0
        while chunk := fp.read(_CHUNK):
            while chunk and not inflater.eof:
                total += len(inflater.decompress(chunk, _CHUNK))
                chunk = inflater.unconsumed_tail
                if total > limit:
                    raise ImageDecodeError(
                        f"too large: the deflated DICOM data expands to more than {limit // 2**20:,} MB, over the "
                        f"limit of {max_pixels:,} pixels (not decoded)")
        return True
    except zlib.error as exc:
        raise ImageDecodeError("DICOM pixel data cannot be decoded: corrupt deflated data") from exc
    finally:
        fp.seek(0)


# --- RLE DICOM ------------------------------------------------------------------------------------------


def _rle_length_over(segment: bytes, limit: int) -> bool:
    """True when the PackBits segment decodes to more than ``limit`` bytes (counted, never decoded)."""
    pos, out, n = 0, 0, len(segment)
    while pos < n:
        header = segment[pos]
        if header > 128:  # the next byte, 257 - header times
            out, pos = out + 257 - header, pos + 2
        elif header < 128:  # the next header + 1 bytes literally
            out, pos = out + header + 1, pos + header + 2
        else:
            pos += 1
        if out > limit:
            return True
    return False


def check_rle(ds: Any, width: int, height: int) -> None:
    """For an RLE data set, ``check_rle_frame`` on its first (only) frame; nothing for other syntaxes."""
    from pydicom.encaps import generate_frames
    from pydicom.uid import RLELossless

    if getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None) == RLELossless:
        check_rle_frame(next(generate_frames(ds.PixelData, number_of_frames=1), b""), height, width)


def check_rle_frame(frame: bytes, rows: int, columns: int) -> None:
    """Refuse an RLE frame with a segment expanding past twice ``rows * columns`` bytes (a decompression bomb).

    Raises:
        ImageDecodeError: "too large ... (not decoded)".
    """
    if len(frame) < 64:
        return  # pydicom reports the broken header itself
    count, *offsets = struct.unpack_from("<16I", frame, 0)
    ends = [*offsets[1:count], len(frame)]
    for begin, end in zip(offsets[:count], ends, strict=False):
        if _rle_length_over(frame[begin:end], 2 * rows * columns):
            raise ImageDecodeError(
                f"too large: RLE pixel data expands past its {columns} x {rows} px frame (a corrupt file or a "
                "decompression bomb; not decoded)")


# --- stretching -----------------------------------------------------------------------------------------


def _finite_range(flat: np.ndarray) -> tuple[float, float] | None:
    """The smallest and largest finite value of a 1-D array, or None when it has none."""
    if flat.dtype.kind in "uib":
        return (float(flat.min()), float(flat.max())) if flat.size else None
    lo, hi = np.inf, -np.inf
    for start in range(0, flat.size, _CHUNK):
        part = flat[start:start + _CHUNK]
        part = part[np.isfinite(part)]
        if part.size:
            lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
    return (lo, hi) if lo <= hi else None


def stretch_to_uint8(arr: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Linearly map ``[lo, hi]`` (default: the finite min and max) to 0..255; NaN becomes 0.

    Computed in float64 chunks of a million values: the result is exact and the extra memory is small.
    """
    flat = np.ascontiguousarray(arr).reshape(-1)
    out = np.zeros(flat.shape, dtype=np.uint8)
    found = _finite_range(flat)
    if found is None:
        return out.reshape(np.shape(arr))
    lo = found[0] if lo is None else lo
    hi = found[1] if hi is None else hi
    if hi <= lo:
        return out.reshape(np.shape(arr))
    scale = 255.0 / (hi - lo)
    for start in range(0, flat.size, _CHUNK):
        part = flat[start:start + _CHUNK].astype(np.float64)
        part = np.where(np.isfinite(part), part, lo)
        out[start:start + _CHUNK] = np.clip(np.rint((part - lo) * scale), 0, 255)
    return out.reshape(np.shape(arr))
