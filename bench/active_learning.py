"""Labels saved by the labelling loop's uncertainty order (with diversity) against random order.

Replays the loop (``core/insight/labelling_simulation.py``, the code behind ``tl-desktop simulate-labelling``)
on real image sets that ship with the dependencies, with their labels hidden:

- ``digits``: scikit-learn's 1,797 handwritten digits (10 classes), written as 32 px PNGs, embedded by the
  default backbone (tf_efficientnet_lite0, ImageNet weights, its own 224 px input; cached by file content);
- ``faces``: scikit-image's ``lfw_subset`` (100 faces and 100 other pictures, 25 px), embedded the same way.

For each set it prints, from one run: test accuracy of both orders at every budget (mean over seeds, one fixed
held-out part), the full-data accuracy (every pool image labelled), the budget at which random order first
reaches 90 % of it, the labels the uncertainty order needs for the same accuracy (linear interpolation
between budgets) and the share of labels saved (goal: at least 30 %).

    .venv/bin/python bench/active_learning.py [--sets digits,faces] [--seeds 3] [--step 10] [--max 400]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _digits(folder: Path) -> Path:
    from tests.helpers import write_digits_folder

    counts = np.bincount(__import__("sklearn.datasets", fromlist=["load_digits"]).load_digits().target)
    return write_digits_folder(folder, classes=range(10), per_class=int(counts.min()), size=32)


def _faces(folder: Path) -> Path:
    from PIL import Image
    from skimage.data import lfw_subset

    images = lfw_subset()
    for i, image in enumerate(images):
        cls = folder / ("face" if i < 100 else "other")
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255).astype(np.uint8)).save(cls / f"{i:03d}.png")
    return folder


def _needed(budgets: list[int], means: list[float], target: float) -> float | None:
    """Labels at which the curve first reaches ``target`` (linear between budgets), or None."""
    for i, (b, m) in enumerate(zip(budgets, means, strict=True)):
        if m >= target:
            if i == 0:
                return float(b)
            b0, m0 = budgets[i - 1], means[i - 1]
            return b0 + (target - m0) / (m - m0) * (b - b0)
    return None


def run_set(name: str, data: Path, seeds: int, budgets: list[int]) -> dict:
    from tl_desktop.core.config import DataSource
    from tl_desktop.core.insight.labelling_simulation import embed_source, simulate

    start = time.perf_counter()
    _, x, y = embed_source(DataSource(data=str(data)))
    embed_s = time.perf_counter() - start
    pool = int(round(len(y) * 0.7))
    budgets = [b for b in budgets if b <= pool]
    curves, seconds = {}, {}
    for order in ("random", "uncertainty"):
        mark = time.perf_counter()
        curves[order] = simulate(x, y, order, budgets, seeds)
        seconds[order] = time.perf_counter() - mark
    full = curves["random"].full_accuracy
    means = {o: [c.mean(b) for b in budgets] for o, c in curves.items()}
    target = 0.9 * full
    random_at = _needed(budgets, means["random"], target)
    smart_at = _needed(budgets, means["uncertainty"], target)
    print(f"\n== {name}: {len(y)} images, {len(set(y))} classes; pool {curves['random'].pool}, "
          f"held out {curves['random'].test}; {seeds} seeds; embeddings {embed_s:.0f} s "
          f"(random {seconds['random']:.0f} s, uncertainty {seconds['uncertainty']:.0f} s of fits)")
    print(f"{'labels':>7} {'random %':>9} {'uncertainty %':>14}")
    for b, r, u in zip(budgets, means["random"], means["uncertainty"], strict=True):
        print(f"{b:>7} {100 * r:>9.1f} {100 * u:>14.1f}{'' if u >= r else '   (below random)'}")
    print(f"full-data accuracy {100 * full:.1f} %; 90 % of it = {100 * target:.1f} %")
    saved = None
    if random_at is not None and smart_at is not None:
        saved = 1 - smart_at / random_at
        print(f"random reaches it at {random_at:.0f} labels, uncertainty at {smart_at:.0f}: "
              f"{100 * saved:.0f} % fewer labels (goal >= 30 %)")
    else:
        print("one of the orders does not reach 90 % of the full-data accuracy within the budgets")
    below = [b for b, r, u in zip(budgets, means["random"], means["uncertainty"], strict=True) if u < r]
    print(f"budgets where uncertainty is below random: {below or 'none'}")
    return {"set": name, "saved": saved, "below": below}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="digits,faces")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--step", type=int, default=10, help="budget spacing")
    parser.add_argument("--max", type=int, default=400, help="largest budget")
    args = parser.parse_args()
    budgets = list(range(args.step, args.max + 1, args.step))
    makers = {"digits": _digits, "faces": _faces}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            run_set(name, makers[name](Path(tmp) / name), args.seeds, budgets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
