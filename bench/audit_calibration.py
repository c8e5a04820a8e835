"""Calibration of the near-duplicate audit on real images with made changes (the table in docs/audit.md).

Originals, all shipped with the dependencies (nothing is downloaded):

- photos: 18 scikit-image sample pictures (``PHOTOS``), shrunk to 256 px wide;
- textures: 9 non-overlapping square crops of each of 5 texture-like scikit-image pictures (``TEXTURES``);
- faces: the 100 faces of scikit-image's ``lfw_subset`` (25 px), stored at 64 px;
- digits: 200 scikit-learn digits (20 per class, 8 px), stored at 64 px.

Each original gets ten changed copies (``CHANGES``): JPEG quality 60 and 95, half and double size, a 10 % centre
crop, 10 % off one side, brightness +15 % and -15 %, a mirror image, and all at once (70 % size, 6 % crop,
mirrored, saved as JPEG 75). The files are written as PNG/JPEG into class folders (one per kind; one per digit
class and per texture) and go through the audit's own path: ``data.scan.scan``, ``insight.audit.embed``
(prepared-image cache + embedding cache), then ``near_duplicates`` with ``thumbnails`` as its pixel check, as
``audit`` calls them. Nothing of the rule is reimplemented here; this script only counts what is reported.

"Copies found": the share of (original, copy) pairs reported. "Ordinary pairs flagged": reported pairs of two
different originals of one kind (one digit class, one texture, the faces, the photos); "of all" counts any two
different originals; "files of two originals" counts any reported pair of files that come from two different
originals (copies included: a copy of one texture crop with another crop is a false match too).

    .venv/bin/python bench/audit_calibration.py [--work DIR] [--size 96] [--rule 0.95/0.85 ...] [--clean]

The work folder (default ``<tmp>/tl-desktop-audit-calibration``) holds the images and the user home with the
prepared-image and embedding caches, and is kept: the first run computes about 8,000 embeddings (images and
mirror images; about 3 min in all on a 2-core machine), a second run reads them from the cache and takes under a
minute. ``--clean`` deletes the folder at the end.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHOTOS = ("astronaut", "camera", "coffee", "rocket", "chelsea", "immunohistochemistry", "moon", "coins", "clock",
          "page", "text", "colorwheel", "retina", "logo", "microaneurysms", "horse", "shepp_logan_phantom",
          "stereo_motorcycle")
TEXTURES = ("brick", "grass", "gravel", "cell", "hubble_deep_field")
KINDS = ("photos", "textures", "faces", "digits")
RULES = ((0.95, None), (0.95, 0.90), (0.93, 0.90), (0.90, 0.90))  # (embedding, pixels or None: embedding alone)
DEFAULT_RULE = (0.95, 0.90)


# --- the originals ------------------------------------------------------------------------------------------


def _as_image(array: np.ndarray) -> Image.Image:
    """A scikit-image array (bool, float in [0, 1], uint8; grey, RGB or RGBA) as an L or RGB image."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float64), 0, 1) * 255).round().astype(np.uint8)
    im = Image.fromarray(a)
    if im.mode == "RGBA":  # the logo: onto white
        im = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im)
    return im.convert("RGB" if a.ndim == 3 else "L")


def _photos() -> list[Image.Image]:
    import skimage.data

    out = []
    for name in PHOTOS:
        data = getattr(skimage.data, name)()
        im = _as_image(data[0] if isinstance(data, tuple) else data)  # stereo_motorcycle: the left view
        out.append(im.resize((256, round(im.height * 256 / im.width)), Image.Resampling.BILINEAR))
    return out


def _textures() -> dict[str, list[Image.Image]]:
    """Texture name -> 9 non-overlapping square crops (a 3 x 3 grid of the picture's shorter side / 3)."""
    import skimage.data

    out = {}
    for name in TEXTURES:
        im = _as_image(getattr(skimage.data, name)())
        side = min(im.size) // 3
        out[name] = [im.crop((c * side, r * side, (c + 1) * side, (r + 1) * side)) for r in range(3) for c in range(3)]
    return out


def _faces() -> list[Image.Image]:
    import skimage.data

    faces = skimage.data.lfw_subset()[:100]  # the first 100 are faces, the rest are not
    return [_as_image(f).resize((64, 64), Image.Resampling.BILINEAR) for f in faces]


def _digits() -> dict[int, list[Image.Image]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return {c: [Image.fromarray((img / 16.0 * 255).astype(np.uint8), mode="L").resize((64, 64), Image.Resampling.BILINEAR)
                for img in digits.images[digits.target == c][:20]] for c in range(10)}


def originals() -> list[tuple[str, str, Image.Image]]:
    """(kind, class folder, image) of every original; pairs of one class folder are the ordinary pairs."""
    out = [("photos", "photos", im) for im in _photos()]
    out += [("textures", f"texture_{name}", im) for name, crops in _textures().items() for im in crops]
    out += [("faces", "faces", im) for im in _faces()]
    out += [("digits", f"digit_{c}", im) for c, ims in _digits().items() for im in ims]
    return out


# --- the changes --------------------------------------------------------------------------------------------


def _crop(im: Image.Image, share: float) -> Image.Image:
    dx, dy = round(im.width * share / 2), round(im.height * share / 2)
    return im.crop((dx, dy, im.width - dx, im.height - dy))


def _scaled(im: Image.Image, factor: float) -> Image.Image:
    method = Image.Resampling.BICUBIC if factor > 1 else Image.Resampling.BILINEAR
    return im.resize((max(1, round(im.width * factor)), max(1, round(im.height * factor))), method)


def _all_at_once(im: Image.Image) -> Image.Image:
    return ImageOps.mirror(_crop(_scaled(im, 0.7), 0.06))


CHANGES: dict[str, tuple[Callable[[Image.Image], Image.Image], str, int | None]] = {
    # name -> (change, file format, JPEG quality)
    "JPEG 60": (lambda im: im, "JPEG", 60),
    "JPEG 95": (lambda im: im, "JPEG", 95),
    "half size": (lambda im: _scaled(im, 0.5), "PNG", None),
    "double size": (lambda im: _scaled(im, 2.0), "PNG", None),
    "10 % centre crop": (lambda im: _crop(im, 0.10), "PNG", None),
    "10 % off one side": (lambda im: im.crop((round(im.width * 0.10), 0, im.width, im.height)), "PNG", None),
    "brightness +15 %": (lambda im: ImageEnhance.Brightness(im).enhance(1.15), "PNG", None),
    "brightness -15 %": (lambda im: ImageEnhance.Brightness(im).enhance(0.85), "PNG", None),
    "mirror image": (ImageOps.mirror, "PNG", None),
    "everything at once": (_all_at_once, "JPEG", 75),
}


def _save(im: Image.Image, path: Path, fmt: str, quality: int | None) -> None:
    buf = io.BytesIO()
    im.save(buf, fmt, **({"quality": quality} if quality else {}))
    path.write_bytes(buf.getvalue())


def write_set(data: Path) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
    """Writes the originals and their copies into class folders under ``data`` (deterministic bytes, so a second
    run hits the caches).

    Returns (original -> (kind, class folder), copy -> (its original, the change)), relative posix paths.
    """
    origin: dict[str, tuple[str, str]] = {}
    copies: dict[str, tuple[str, str]] = {}
    for n, (kind, folder, im) in enumerate(originals()):
        (data / folder).mkdir(parents=True, exist_ok=True)
        rel = f"{folder}/{n:03d}.png"
        _save(im, data / rel, "PNG", None)
        origin[rel] = (kind, folder)
        for c, (name, (change, fmt, quality)) in enumerate(CHANGES.items()):
            copy = f"{folder}/{n:03d}_copy{c}.{'jpg' if fmt == 'JPEG' else 'png'}"
            _save(change(im), data / copy, fmt, quality)
            copies[copy] = (rel, name)
    return origin, copies


# --- measuring ----------------------------------------------------------------------------------------------


def reported(samples, vectors, mirrored, paths, embedding: float, pixels: float | None,
             size: int) -> set[frozenset[str]]:
    """The pairs the audit reports with these thresholds, through its own ``near_duplicates`` and ``thumbnails``
    (``pixels`` None: the embeddings alone decide), as ``audit`` calls them at embedding size ``size``."""
    from tl_desktop.core.insight.audit import near_duplicates, thumbnails

    def confirm(idx: list[int]) -> np.ndarray:
        return thumbnails([paths[i] for i in idx], image_size=size)

    found = near_duplicates(samples, vectors, mirrored, threshold=embedding,
                            confirm=None if pixels is None else confirm,
                            pixel_threshold=pixels if pixels is not None else 0.0)
    return {frozenset((p.a, p.b)) for p in found}


def figures(pairs: set[frozenset[str]], origin, copies) -> dict:
    """Copies found (overall, by change, by kind and change) and ordinary pairs flagged (by kind, in all)."""
    found = {copy: frozenset((copy, src)) in pairs for copy, (src, _) in copies.items()}
    by_change, by_kind = Counter(), defaultdict(Counter)
    for copy, (src, change) in copies.items():
        by_change[change] += found[copy]
        by_kind[origin[src][0]][change] += found[copy]
    family = {**{o: o for o in origin}, **{copy: src for copy, (src, _) in copies.items()}}
    ordinary, any_two, families = Counter(), 0, 0
    for pair in pairs:
        a, b = sorted(pair)
        families += family[a] != family[b]
        if a in origin and b in origin:
            any_two += 1
            if origin[a][1] == origin[b][1]:
                ordinary[origin[a][0]] += 1
    return {"found": sum(found.values()) / len(copies), "by_change": by_change, "by_kind": by_kind,
            "ordinary": ordinary, "any_two": any_two, "families": families}


def ordinary_totals(origin) -> tuple[Counter, int]:
    """Pairs of two different originals of one class folder, per kind, and of any two originals."""
    folders = Counter(folder for _, folder in origin.values())
    kind_of = {folder: kind for kind, folder in origin.values()}
    totals = Counter()
    for folder, n in folders.items():
        totals[kind_of[folder]] += n * (n - 1) // 2
    return totals, len(origin) * (len(origin) - 1) // 2


def family_total(origin, copies) -> int:
    """Pairs of files that come from two different originals (either file may be a copy)."""
    files = len(origin) + len(copies)
    per = Counter(src for src, _ in copies.values())
    return files * (files - 1) // 2 - sum((n + 1) * n // 2 for n in per.values())


# --- printing -----------------------------------------------------------------------------------------------


def _rule_name(embedding: float, pixels: float | None, size: int, default_size: int) -> str:
    text = f"embedding >= {embedding:.2f}" + (" alone" if pixels is None else f" and pixels >= {pixels:.2f}")
    shipped = (embedding, pixels) == DEFAULT_RULE and size == default_size
    return text + f", {size} px" + (" (default)" if shipped else "")


def print_table(results: list[tuple[str, dict]], totals: Counter, every: int, originals_n: int,
                families: int) -> None:
    head = ", ".join(f"{k} {totals[k]:,}" for k in KINDS)
    print(f"\n| rule | copies found | ordinary pairs flagged ({head}) | of all {every:,} "
          f"| files of two originals ({families:,}) |")
    print("|---|---|---|---|---|")
    for name, fig in results:
        flagged = ", ".join(str(fig["ordinary"][k]) for k in KINDS)
        print(f"| {name} | {100 * fig['found']:.0f} % | {flagged} | {fig['any_two']} | {fig['families']} |")
    print(f"\n(copies found: the mean over the {len(CHANGES)} changes, {originals_n} originals each)")


def print_by_change(name: str, fig: dict, counts: Counter) -> None:
    print(f"\nby change, {name}:")
    print("| change | all | " + " | ".join(KINDS) + " |")
    print("|---|---|" + "---|" * len(KINDS))
    for change in CHANGES:
        total = sum(counts.values())
        cells = [f"{100 * fig['by_kind'][k][change] / counts[k]:.0f} %" for k in KINDS]
        print(f"| {change} | {100 * fig['by_change'][change] / total:.0f} % | " + " | ".join(cells) + " |")


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}"


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"


def _parse_rule(text: str) -> tuple[float, float | None]:
    emb, _, pix = text.partition("/")
    return float(emb), (float(pix) if pix and pix != "-" else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tl-desktop-audit-calibration",
                        help="images and caches, kept for the next run")
    parser.add_argument("--size", type=int, default=None, help="embedding size (default: the audit's)")
    parser.add_argument("--rule", action="append", default=[], type=_parse_rule, metavar="EMB/PIX",
                        help="another rule to measure, e.g. 0.95/0.85 or 0.93/- (embedding alone)")
    parser.add_argument("--clean", action="store_true", help="delete the work folder at the end")
    args = parser.parse_args()
    os.environ["TL_DESKTOP_HOME"] = str(args.work / "home")
    from tl_desktop.core.data.scan import scan
    from tl_desktop.core.insight.audit import AUDIT_IMAGE_SIZE, embed

    size = args.size or AUDIT_IMAGE_SIZE
    print(f"machine: {_machine()}; load average at the start: {_load()}")
    start = time.perf_counter()
    data = args.work / "data"
    shutil.rmtree(data, ignore_errors=True)
    origin, copies = write_set(data)
    print(f"wrote {len(origin)} originals and {len(copies)} copies in {time.perf_counter() - start:.0f} s: {data}")
    mark = time.perf_counter()
    report = scan(data)
    assert not report.skipped, report.skipped[:3]
    paths = [report.abspath(s) for s in report.samples]
    vectors, mirrored = embed(paths, [s.sha256 for s in report.samples], image_size=size)
    print(f"scan + embeddings ({len(paths)} images at {size} px): {time.perf_counter() - mark:.0f} s")
    totals, every = ordinary_totals(origin)
    counts = Counter(origin[src][0] for src, _ in copies.values())
    counts = Counter({k: v // len(CHANGES) for k, v in counts.items()})  # copies per change, per kind
    results = []
    for embedding, pixels in list(RULES) + args.rule:
        pairs = reported(report.samples, vectors, mirrored, paths, embedding, pixels, size)
        results.append((_rule_name(embedding, pixels, size, AUDIT_IMAGE_SIZE), figures(pairs, origin, copies)))
    print_table(results, totals, every, len(origin), family_total(origin, copies))
    for name, fig in results[:2]:  # the embedding alone, the default rule
        print_by_change(name, fig, counts)
    no_mirror = figures(reported(report.samples, vectors, None, paths, 0.95, None, size), origin, copies)
    with_mirror = results[0][1]  # RULES[0]: 0.95, embedding alone
    print(f"\nmirrored copies reaching 0.95: without the mirror embedding "
          f"{100 * no_mirror['by_change']['mirror image'] / len(origin):.0f} %, with it "
          f"{100 * with_mirror['by_change']['mirror image'] / len(origin):.0f} %")
    print(f"\ntotal {time.perf_counter() - start:.0f} s; load average at the end: {_load()}; {_machine()}")
    if args.clean:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
