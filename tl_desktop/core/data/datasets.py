"""PyTorch datasets and loaders over scanned files; decoding goes through ``data.load_image``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from tl_desktop.core.data.decode import load_image
from tl_desktop.core.errors import ImageDecodeError, UnreadableImage

# Decoded images are kept in memory when the whole set fits in this many bytes (decoding DICOM or big TIFFs
# every epoch would dominate CPU training time otherwise).
DECODED_CACHE_BYTES = 1_500_000_000


class ImageFiles(Dataset):
    """(image tensor, label index) pairs for a list of files."""

    def __init__(self, paths: list[Path], labels: list[int], transform: Callable, *, cache: bool = False):
        self.paths = [Path(p) for p in paths]
        self.labels = list(labels)
        self.transform = transform
        self._cache: dict[int, Any] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.paths)

    def _image(self, index: int):
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        try:
            image = load_image(self.paths[index])
        except (ImageDecodeError, OSError) as exc:
            raise UnreadableImage(f"{self.paths[index].name}: {exc}") from exc
        if self._cache is not None:
            self._cache[index] = image
        return image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self._image(index)), self.labels[index]


def fits_in_memory(sizes: list[tuple[int, int]]) -> bool:
    return sum(w * h * 3 for w, h in sizes) <= DECODED_CACHE_BYTES


def default_workers(n_images: int) -> int:
    """0 (decode in the training thread) for small sets, else up to 4 worker processes."""
    if n_images < 512:
        return 0
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def class_weights(labels: list[int], n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights, normalised so a balanced set gets all ones."""
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=n_classes).astype(float)
    counts[counts == 0] = 1.0
    weights = counts.sum() / (n_classes * counts)
    return torch.tensor(weights, dtype=torch.float32)


def make_loader(dataset: Dataset, *, batch_size: int, shuffle: bool, seed: int, workers: int,
                sample_weights: torch.Tensor | None = None, drop_last: bool = False) -> DataLoader:
    """A loader whose order is a pure function of ``seed`` (so a resumed run sees the same batches)."""
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if sample_weights is not None:
        sampler = WeightedRandomSampler(sample_weights, num_samples=len(dataset), replacement=True,
                                        generator=generator)
        shuffle = False
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, num_workers=workers,
                      generator=generator, drop_last=drop_last, persistent_workers=False,
                      pin_memory=torch.cuda.is_available())
