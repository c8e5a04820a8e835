"""PyTorch datasets and loaders over prepared images (``data.prepared``), and the batch steps on the device.

The split of the work follows what each side does fastest. Loader workers read a prepared uint8 entry and cut
the crop the model sees (random resized crop for training, centre crop for evaluation): small uint8 tensors,
cheap to collate, pin and copy. On the training device, per batch: random flips and rotations (``Augment``) and
the conversion to normalised float (``Normalise``), on the GPU when training on CUDA.

Every random draw of a training item comes from a seed the sampler hands out with its index (a pure function of
the run's seed, the epoch and the position), so the crops of an epoch do not depend on the number of workers, on
persistent workers or on a resume.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from tl_desktop.core.data.prepared import PreparedCache, Spec, read_entry

Item = int | tuple[int, int]  # an index, or (index, seed of its random draws)


class CentreCrop:
    """The evaluation crop of a prepared (already resized) (H, W, 3) image, returned as (3, S, S): top =
    int(round((h - size) / 2)), left likewise; zero padding first where the image is smaller, as torchvision's
    CenterCrop."""

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        s = self.size
        h, w, _ = x.shape
        if s > h or s > w:
            padded = torch.zeros((max(h, s), max(w, s), 3), dtype=x.dtype)
            top, left = (s - h) // 2 if s > h else 0, (s - w) // 2 if s > w else 0
            padded[top:top + h, left:left + w] = x
            x, (h, w, _) = padded, padded.shape
        top, left = int(round((h - s) / 2.0)), int(round((w - s) / 2.0))
        return x[top:top + s, left:left + s].permute(2, 0, 1).contiguous()


class RandomResizedCrop:
    """torchvision's RandomResizedCrop (area ``scale``, aspect ``ratio``, 10 tries then a central crop) of an
    (H, W, 3) uint8 image, bilinear with antialiasing, returned as (3, S, S), with its draws taken from ``seed``.
    From channels-last uint8 torchvision takes its vectorised path (about 0.35 ms a 224 px crop on one core, 3x
    the planar layout)."""

    def __init__(self, size: int, scale: tuple[float, float] = (0.6, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)):
        self.size = int(size)
        self.scale, self.log_ratio = scale, (math.log(ratio[0]), math.log(ratio[1]))
        self.ratio = ratio

    def params(self, height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        area = height * width
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*self.log_ratio))
            w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            w, h = width, int(round(width / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            h, w = height, int(round(height * max(self.ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        rng = np.random.default_rng(seed)
        top, left, h, w = self.params(x.shape[0], x.shape[1], rng)
        return TF.resized_crop(x.permute(2, 0, 1), top, left, h, w, [self.size, self.size],
                               interpolation=v2.InterpolationMode.BILINEAR, antialias=True)


class PreparedImages(Dataset):
    """(uint8 crop (3, S, S), label index) pairs over prepared entries; the crop decides train or evaluation."""

    def __init__(self, entries: Sequence[Path], sources: Sequence[Path], labels: Sequence[int], spec: Spec,
                 crop: Callable[[torch.Tensor, int | None], torch.Tensor], cache: PreparedCache | None = None):
        self.entries, self.sources = [Path(e) for e in entries], [Path(s) for s in sources]
        self.labels, self.spec, self.crop, self.cache = list(labels), spec, crop, cache

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, item: Item) -> tuple[torch.Tensor, int]:
        index, seed = item if isinstance(item, tuple) else (item, None)
        array = read_entry(self.entries[index], self.sources[index], self.spec, self.cache)
        return self.crop(torch.from_numpy(array), seed), self.labels[index]


class Normalise:
    """uint8 batch -> float32 ``(x / 255 - mean) / std``, in the same operations as torchvision's ToTensor and
    Normalize (so evaluation figures equal those of the timm transform to the last bit)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.mean.to(x.device), self.std.to(x.device)
        return x.to(torch.float32).div(255).sub_(mean).div_(std)


class Augment:
    """Per-image random flips and rotations of a uint8 batch on its own device (the GPU when training there)."""

    def __init__(self, hflip: float = 0.0, vflip: float = 0.0, degrees: float = 0.0):
        self.hflip, self.vflip, self.degrees = float(hflip), float(vflip), float(degrees)

    @property
    def active(self) -> bool:
        return bool(self.hflip or self.vflip or self.degrees)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        for p, dim in ((self.hflip, -1), (self.vflip, -2)):
            if p:
                flip = (torch.rand(n, device=x.device) < p).view(n, 1, 1, 1)
                x = torch.where(flip, x.flip(dim), x)
        if self.degrees:
            angles = (torch.rand(n) * 2 - 1) * self.degrees
            x = torch.stack([TF.rotate(img, float(a), interpolation=v2.InterpolationMode.BILINEAR)
                             for img, a in zip(x, angles, strict=True)])
        return x


class EpochBatches:
    """The training batches of one epoch as lists of (index, seed); set ``epoch`` and ``batch_size`` before each
    pass. ``order(epoch, batch_size)`` returns the epoch's batches of indices (sharded under torchrun)."""

    def __init__(self, order: Callable[[int, int], list[list[int]]], seed: int):
        self.order, self.seed = order, int(seed)
        self.epoch, self.batch_size = 0, 1

    def _batches(self) -> list[list[int]]:
        return self.order(self.epoch, self.batch_size)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        base = (self.seed * 1_000_003 + self.epoch * 7_919) % 2**31
        for step, batch in enumerate(self._batches()):
            yield [(i, (base + step * 65_537 + k) % 2**31) for k, i in enumerate(batch)]

    def __len__(self) -> int:
        return len(self._batches())


def default_workers(device: torch.device, n_images: int) -> int:
    """Loader processes. On the CPU one (from 256 images): it cuts the next batch's crops on one thread while the
    network trains, where the training thread's own crops would cost ~10 % of a step and contend for its
    threads; none for small sets, where starting a process costs more than it saves. Up to 8 to feed a GPU."""
    if device.type == "cpu":
        return 0 if n_images < 256 else 1
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def make_loader(dataset: Dataset, *, workers: int, pin: bool, batch_size: int | None = None,
                batch_sampler: EpochBatches | None = None) -> DataLoader:
    """A loader over uint8 crops: persistent workers with prefetch when there are workers, pinned for CUDA."""
    extra = {"persistent_workers": True, "prefetch_factor": 4} if workers else {}
    if batch_sampler is not None:
        return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=workers, pin_memory=pin, **extra)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=pin, **extra)


def class_weights(labels: list[int], n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights, normalised so a balanced set gets all ones."""
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=n_classes).astype(float)
    counts[counts == 0] = 1.0
    weights = counts.sum() / (n_classes * counts)
    return torch.tensor(weights, dtype=torch.float32)
