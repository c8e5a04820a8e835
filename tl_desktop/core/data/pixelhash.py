"""A hash of what an image shows, independent of how the file stores it.

Two files hold "identical pixels" when their decoded pixel arrays are equal after these normalisations, so
the same scan saved little or big endian, deflated, RLE or JPEG 2000 lossless (DICOM), or the same picture
saved as PNG, BMP or TIFF, gets one digest:

* integer samples wider than 8 bits are compared by value, not by storage type or byte order (int16 and
  uint16, ``>i2`` and ``<i2``, TIFF ``I;16`` and PNG ``I`` all match); 8-bit samples are a class of their own;
* an RGB image whose three channels are equal is the grey image it shows; an alpha channel that is opaque
  everywhere is dropped; palette images are compared by their colours, 1-bit images as black and white;
* DICOM: the stored pixel values of the first frame (after decompression, before rescale and windowing),
  palette colour through its lookup table, and MONOCHROME1 marked, since it shows the same values inverted.

JPEG files get no pixel digest: proving identity would need a full decode of every photograph (the scan
decodes JPEG at 1/8 scale) and two JPEG files with equal pixels but different bytes are rare; they are
compared by their bytes only.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from PIL import Image

_ALPHA_TO_OPAQUE = {"RGBA": "RGB", "LA": "L"}


def pixel_digest(arr: np.ndarray, tag: str = "") -> str:
    """SHA-256 (hex) of a decoded pixel array, normalised as the module docstring says.

    Args:
        arr: the pixels, (rows, columns) or (rows, columns, channels).
        tag: what else changes how the pixels look (e.g. "MONOCHROME1"); part of the digest.
    """
    a = np.asarray(arr)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[-1] == 3 and np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2]):
        a = a[..., 0]
    a, kind = _canonical_values(a)
    digest = hashlib.sha256(f"pixels-v1|{kind}|{a.shape}|{tag}|".encode())
    digest.update(np.ascontiguousarray(a).data)
    return digest.hexdigest()


def _canonical_values(a: np.ndarray) -> tuple[np.ndarray, str]:
    """The array in one storage type per value range, little endian, and the name of its class."""
    if a.dtype == np.uint8:
        return a, "u8"
    if a.dtype.kind in "iu":
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo >= 0 and hi < 2**16:
            return a.astype("<u2", copy=False), "int"
        if lo >= -(2**31) and hi < 2**31:
            return a.astype("<i4", copy=False), "int"
        return a.astype("<i8", copy=False), "int"
    return a.astype("<f8", copy=False), "float"


def pil_pixel_digest(im: Image.Image) -> str:
    """Digest of a decoded Pillow image (first frame, orientation already applied by the caller)."""
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode == "1":
        im = im.convert("L")
    elif im.mode in {"RGBa", "La", "PA"}:
        im = im.convert("RGBA")
    opaque = _ALPHA_TO_OPAQUE.get(im.mode)
    if opaque is not None and im.getchannel("A").getextrema() == (255, 255):
        im = im.convert(opaque)
    return pixel_digest(np.asarray(im), "CMYK" if im.mode == "CMYK" else "")


def dicom_pixel_digest(arr: np.ndarray, ds: Any) -> str:
    """Digest of a DICOM frame as pydicom decoded it (stored values, before rescale and windowing)."""
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
    return pixel_digest(arr, "MONOCHROME1" if photometric == "MONOCHROME1" else "")
