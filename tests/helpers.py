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
