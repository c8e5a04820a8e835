"""Real images from dependencies, written to disk the way users have them (class folders, CSV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_digits_folder(root: Path, classes=(0, 1, 2), per_class: int = 30, size: int = 32, offset: int = 0) -> Path:
    """scikit-learn's handwritten digits (8x8, 17 grey levels) upscaled to ``size`` px PNGs in class folders.

    Each class gets ``per_class`` distinct real digit images, starting at the ``offset``-th of that class.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    root.mkdir(parents=True, exist_ok=True)
    for cls in classes:
        folder = root / f"digit_{cls}"
        folder.mkdir(exist_ok=True)
        images = digits.images[digits.target == cls][offset: offset + per_class]
        assert len(images) == per_class, f"only {len(images)} digits of class {cls}"
        for i, img in enumerate(images):
            arr = (img / 16.0 * 255).astype(np.uint8)
            Image.fromarray(arr, mode="L").resize((size, size), Image.BILINEAR).save(folder / f"{cls}_{i:03d}.png")
    return root


# --- mixed-format data sets (real pixels from scikit-image and pydicom's test files) ---------------------


def _photo(name: str, side: int = 96) -> Image.Image:
    """A scikit-image sample photo (astronaut, camera, chelsea, coffee), shrunk to ``side`` px wide."""
    import skimage.data

    im = Image.fromarray(getattr(skimage.data, name)())
    return im.resize((side, max(8, round(im.height * side / im.width))), Image.BILINEAR)


def png_header_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG whose header claims ``width`` x ``height`` pixels (a decompression-bomb probe)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b"")


def dicom_copy(src_name: str, dest: Path, **changes) -> Path:
    """One of pydicom's test files, with element values changed (e.g. PatientID=...), written to ``dest``."""
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file(src_name))
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    dest.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dest)
    return dest


# Expected outcome of every file write_mixed_folder writes: relative path -> None (usable) or a reason keyword.
def write_mixed_folder(root: Path) -> dict[str, str | None]:
    """A data set as users have them: many formats, real pixels, and the broken files real folders contain.

    Returns relative path -> None for files that must be usable, or a word the skip reason must contain.
    """
    import shutil

    from pydicom.data import get_testdata_file

    expected: dict[str, str | None] = {}

    def put(rel: str, outcome: str | None = None) -> Path:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        expected[rel] = outcome
        return path

    cat, coffee = _photo("chelsea"), _photo("coffee")
    cat.save(put("cat/chelsea.jpg"), quality=90)
    cat.convert("CMYK").save(put("cat/chelsea_cmyk.jpg"), quality=90)
    cat.save(put("cat/chelsea.webp"), quality=80)
    cat.convert("P", palette=Image.ADAPTIVE, colors=64).save(put("cat/chelsea_palette.gif"))
    cat.rotate(90, expand=True).save(put("cat/deep/er/Ünïcødé név 画像.png"))
    cat.transpose(Image.FLIP_LEFT_RIGHT).save(put("cat/deep/flipped.bmp"))
    astro = _photo("astronaut").convert("RGBA")
    ramp = np.clip(np.linspace(-255, 510, astro.width), 0, 255).astype(np.uint8)  # clear, ramp, opaque
    astro.putalpha(Image.fromarray(np.tile(ramp, (astro.height, 1))))
    astro.save(put("person/astronaut_rgba.png"))
    _photo("astronaut").save(put("person/pages.tiff"), save_all=True, append_images=[coffee])
    camera16 = (np.asarray(_photo("camera"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(camera16).save(put("person/camera_16bit.tif"))
    coffee.save(put("person/coffee.png"))
    shutil.copy(get_testdata_file("CT_small.dcm"), put("scan/CT_small.dcm"))
    shutil.copy(get_testdata_file("MR_small.dcm"), put("scan/MR_small.dcm"))
    shutil.copy(get_testdata_file("MR_small.dcm"), put("scan/mr_export_without_extension"))
    dicom_copy("MR_small.dcm", put("scan/mr_monochrome1.dcm"), PhotometricInterpretation="MONOCHROME1")
    shutil.copy(get_testdata_file("MR_truncated.dcm"), put("scan/MR_truncated.dcm", "pixel data"))
    shutil.copy(get_testdata_file("JPEG-lossy.dcm"), put("scan/JPEG-lossy.dcm", "cannot be decoded"))
    jpeg = (root / "cat/chelsea.jpg").read_bytes()
    put("cat/truncated.jpg", "truncated").write_bytes(jpeg[: len(jpeg) // 2])
    put("cat/empty.png", "empty").write_bytes(b"")
    put("cat/notes.png", "not an image").write_text("these are my notes, not a picture")
    put("cat/readme.txt", "not an image").write_text("hello")
    put("cat/huge.png", "too large").write_bytes(png_header_claiming(100_000, 100_000))
    put("cat/.DS_Store", "hidden").write_bytes(b"\0\0\0\1Bud1")
    put("person/Thumbs.db", "hidden").write_bytes(b"\xd0\xcf\x11\xe0")
    put("stray.png", "class folder").write_bytes((root / "person/coffee.png").read_bytes()[:100])
    return expected


FINDINGS = ("seven", "zero")  # the labels of write_findings_csv: a handwritten 0 on the left, a 7 on the right


def write_findings_csv(root: Path, n: int = 60, size: int = 32, seed: int = 0, columns: bool = False,
                       name: str = "findings.csv") -> Path:
    """A multi-label set of real digits composed into one image: a handwritten 0 (scikit-learn's digits) in
    the left half is finding "zero", a 7 in the right half finding "seven"; each present or absent on its own
    (a quarter of the images show both, a quarter neither). Two images per patient (``group`` column).

    The CSV lists ``path,label,group`` with the labels separated by ``;`` (empty: no finding), or, with
    ``columns``, ``path,group,seven,zero`` as 0/1 columns. Returns the CSV's path.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    zeros, sevens = digits.images[digits.target == 0], digits.images[digits.target == 7]
    rng = np.random.default_rng(seed)
    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    half = size // 2
    rows = []
    for i in range(n):
        zero, seven = bool(i % 2), bool((i // 2) % 2)
        canvas = rng.normal(30, 12, (size, size)).clip(0, 255)
        for present, pool, left in ((zero, zeros, 0), (seven, sevens, half)):
            if present:
                digit = Image.fromarray((pool[(i * 7 + seed) % len(pool)] / 16 * 255).astype(np.uint8))
                patch = np.asarray(digit.resize((half, half), Image.BILINEAR), dtype=float)
                top = int(rng.integers(0, size - half + 1))
                canvas[top:top + half, left:left + half] = np.maximum(canvas[top:top + half, left:left + half], patch)
        file = folder / f"img_{i:03d}.png"
        Image.fromarray(canvas.astype(np.uint8), mode="L").save(file)
        found = [f for f, on in (("seven", seven), ("zero", zero)) if on]
        rows.append((f"images/{file.name}", found, f"patient{i // 2:03d}"))
    csv = root / name
    if columns:
        lines = ["path,group,seven,zero"] + [f"{p},{g},{int('seven' in f)},{int('zero' in f)}" for p, f, g in rows]
    else:
        lines = ["path,label,group"] + [f"{p},{';'.join(f)},{g}" for p, f, g in rows]
    csv.write_text("\n".join(lines) + "\n")
    return csv
