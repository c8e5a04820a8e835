"""Data audit at scale: 10,000 generated images with planted copies and swapped labels.

Makes its own data: 64 px PNGs of random shapes (class = the shape: ellipse, rectangle, triangle, cross) on
noise, each image different, plus planted changed copies of random images (JPEG quality 60-95, resized 0.5-2x,
cropped up to 10 %, brightness +-15 %, mirrored; same class, so the split may put them anywhere) and images moved
into a wrong class folder. Runs the audit once to fill the embedding cache, then again, and prints:

- seconds of the warm audit (goal < 60 s on a 2-core machine) and of its parts, and of the nearest-neighbour
  search alone;
- recall of the planted copies (by change) and the false-positive pairs among the ordinary images;
- recall and precision of the swapped labels among the label issues, and how many rank in the top k.

    .venv/bin/python bench/audit_speed.py [--images 10000] [--copies 200] [--swapped 100] [--keep] [--work DIR]

``--work DIR`` reuses a folder kept by ``--keep`` (its data, planted truth and caches), so the first audit is
warm too; the figures come from the second.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHAPES = ("ellipse", "rectangle", "triangle", "cross")


def _shape_image(kind: str, rng: np.random.Generator, side: int = 64) -> Image.Image:
    base = rng.normal(rng.uniform(60, 140), rng.uniform(5, 30), (side, side)).clip(0, 255).astype(np.uint8)
    im = Image.fromarray(base).convert("RGB")
    draw = ImageDraw.Draw(im)
    colour = tuple(int(c) for c in rng.integers(150, 256, 3))
    cx, cy, r = rng.uniform(20, 44), rng.uniform(20, 44), rng.uniform(8, 18)
    box = (cx - r, cy - r * rng.uniform(0.6, 1.0), cx + r, cy + r * rng.uniform(0.6, 1.0))
    if kind == "ellipse":
        draw.ellipse(box, fill=colour)
    elif kind == "rectangle":
        draw.rectangle(box, fill=colour)
    elif kind == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r * rng.uniform(0.5, 1), cy + r)], fill=colour)
    else:
        w = r * rng.uniform(0.25, 0.45)
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=colour)
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=colour)
    for _ in range(int(rng.integers(1, 4))):  # clutter: small random dots and lines
        x, y = rng.uniform(0, side, 2)
        draw.line((x, y, x + rng.uniform(-15, 15), y + rng.uniform(-15, 15)), fill=tuple(int(c) for c in rng.integers(0, 256, 3)),
                  width=int(rng.integers(1, 3)))
    return im


def _changed(im: Image.Image, change: str, rng: np.random.Generator) -> Image.Image:
    if change == "jpeg":
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=int(rng.integers(60, 96)))
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if change == "resize":
        f = float(rng.choice([0.5, 0.75, 1.5, 2.0]))
        return im.resize((round(im.width * f), round(im.height * f)), Image.Resampling.BICUBIC)
    if change == "crop":
        share = rng.uniform(0.04, 0.10)
        dx, dy = round(im.width * share / 2), round(im.height * share / 2)
        return im.crop((dx, dy, im.width - dx, im.height - dy))
    if change == "brightness":
        return ImageEnhance.Brightness(im).enhance(float(rng.choice([0.85, 0.9, 1.1, 1.15])))
    return im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


CHANGES = ("jpeg", "resize", "crop", "brightness", "mirror")


def write_data(root: Path, images: int, copies: int, swapped: int, seed: int = 0):
    """Returns (copy -> (original, change), moved files (relative paths))."""
    rng = np.random.default_rng(seed)
    names: list[str] = []
    for i in range(images - copies):
        kind = SHAPES[i % len(SHAPES)]
        (root / kind).mkdir(parents=True, exist_ok=True)
        rel = f"{kind}/{i:05d}.png"
        _shape_image(kind, rng).save(root / rel)
        names.append(rel)
    planted: dict[str, tuple[str, str]] = {}
    for n, i in enumerate(rng.choice(len(names), copies, replace=False)):
        src, change = names[i], CHANGES[n % len(CHANGES)]
        rel = f"{src.split('/')[0]}/copy_{n:04d}_{change}.png"
        _changed(Image.open(root / src).convert("RGB"), change, rng).save(root / rel)
        planted[rel] = (src, change)
    used = set(planted) | {s for s, _ in planted.values()}
    moved = []
    for rel in rng.permutation([n for n in names if n not in used])[:swapped]:
        kind = rel.split("/")[0]
        target = SHAPES[(SHAPES.index(kind) + 1 + int(rng.integers(0, len(SHAPES) - 1))) % len(SHAPES)]
        dest = f"{target}/moved_{Path(rel).name}"
        shutil.move(root / rel, root / dest)
        moved.append(dest)
    return planted, moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--copies", type=int, default=200)
    parser.add_argument("--swapped", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the data and cache folder (printed)")
    parser.add_argument("--work", type=Path, help="reuse this kept folder (data, truth.json, caches)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="audit-bench-"))
    os.environ["TL_DESKTOP_HOME"] = str(work / "home")
    from tl_desktop.core.config import DataSource
    from tl_desktop.core.insight.audit import audit, embed, similar_pairs

    data, truth = work / "data", work / "truth.json"
    start = time.perf_counter()
    if truth.is_file():
        known = json.loads(truth.read_text())
        planted, moved = {k: tuple(v) for k, v in known["planted"].items()}, known["moved"]
        print(f"reusing the images in {work}")
    else:
        planted, moved = write_data(data, args.images, args.copies, args.swapped)
        truth.write_text(json.dumps({"planted": planted, "moved": moved}))
        print(f"wrote {args.images} images ({args.copies} changed copies, {args.swapped} moved) in "
              f"{time.perf_counter() - start:.0f} s into {work}")
    source = DataSource(data=str(data))
    start = time.perf_counter()
    audit(source)
    print(f"first audit (fills the embedding cache unless reused): {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    report = audit(source)
    warm = time.perf_counter() - start
    print(f"warm audit: {warm:.1f} s (goal < 60 s); parts: {report.seconds}")
    _search_alone(report, embed, similar_pairs)
    _duplicate_figures(report, planted, args.images)
    _label_figures(report, moved)
    if args.keep or args.work:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def _search_alone(report, embed, similar_pairs) -> None:
    from tl_desktop.core.data.scan import scan

    scanned = scan(report.root)
    vectors, mirrored = embed([scanned.abspath(s) for s in scanned.samples], [s.sha256 for s in scanned.samples])
    start = time.perf_counter()
    similar_pairs(vectors, mirrored, report.threshold)
    print(f"nearest-neighbour search alone ({len(vectors)} x {vectors.shape[1]}, images and mirror images): "
          f"{time.perf_counter() - start:.1f} s")


def _duplicate_figures(report, planted: dict[str, tuple[str, str]], images: int) -> None:
    pairs = {frozenset((p.a, p.b)) for p in report.near_duplicates}
    found = Counter(change for copy, (src, change) in planted.items() if frozenset((copy, src)) in pairs)
    total = Counter(change for _, change in planted.values())
    print(f"planted copies found: {sum(found.values())}/{len(planted)} "
          f"({100 * sum(found.values()) / max(len(planted), 1):.1f} %); by change: "
          + ", ".join(f"{c} {found[c]}/{total[c]}" for c in CHANGES))
    wanted = {frozenset((c, s)) for c, (s, _) in planted.items()}
    false = [p for p in report.near_duplicates if frozenset((p.a, p.b)) not in wanted]
    ordinary = images - len(planted)
    print(f"false-positive pairs: {len(false)} of {ordinary * (ordinary - 1) // 2:,} ordinary pairs "
          f"({len({x for p in false for x in (p.a, p.b)})} images involved); crossing parts among found: "
          f"{sum(p.crosses_splits for p in report.near_duplicates)}")


def _label_figures(report, moved: list[str]) -> None:
    flagged = [i.path for i in report.label_issues]
    hits = len(set(flagged) & set(moved))
    top = len(set(flagged[:len(moved)]) & set(moved))
    print(f"swapped labels flagged: {hits}/{len(moved)} (recall {100 * hits / max(len(moved), 1):.0f} %); "
          f"label issues {len(flagged)} (precision {100 * hits / max(len(flagged), 1):.0f} %); "
          f"swapped in the top {len(moved)}: {top}")


if __name__ == "__main__":
    main()
