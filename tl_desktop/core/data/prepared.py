"""Prepared images: every source file decoded once and kept on disk, as uint8, at the size the model needs.

Decoding a 1,000-3,000 px 16-bit DICOM or a large TIFF costs tens of milliseconds; the network then sees 224 px.
``prepare`` decodes each file of a job once (DICOM windowing, 16-bit stretch, EXIF, CMYK: ``decode.load_image``)
and resizes it as the model's evaluation transform does (the shorter side to ``resize_size`` with the model's
interpolation, in PIL), storing an (H, W, 3) uint8 ``.npy`` file under ``cache_dir()/prepared`` (channels last:
the layout torchvision's fast uint8 resize and the network's channels-last input both want). Training crops
and augments from these, validation and the run's evaluation centre-crop them, so every figure is computed on the
pixels the exported model's own preprocessing (``models.preprocessing.Preprocessing``: resize, then crop) sees.

Entries are keyed by the file's content SHA-256 (from the scan cache: one ``stat`` per unchanged file), the
decoder's version and the resize rule: a changed file, a new decoder or another model size never reuses stale
pixels. Each entry is written to a temporary file and renamed into place, so concurrent jobs and interrupted
builds leave only whole entries, and an interrupted build resumes where it stopped. The folder is bounded: past
the limit (``cache_limit_bytes``: ``tl-desktop cache --limit-gb N`` or ``TL_DESKTOP_CACHE_GB``) the least recently
used entries that the current job does not need are deleted.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tl_desktop.core.data.decode import DEFAULT_MAX_PIXELS, load_image
from tl_desktop.core.errors import CacheLimitError, ImageDecodeError, UnreadableImage
from tl_desktop.core.events import CancelToken, Progress

# Bump when decoding changes what an image looks like (DICOM windowing, 16-bit scaling, colour handling...):
# prepared pixels and cached embeddings of the old decoder must not be reused.
DECODE_VERSION = "decode-1"
FORMAT = "prepared-2"  # 2: (H, W, 3) entries (1 was (3, H, W))
CROP_MODES = ("center", "squash")
PIL_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}
MAX_ASPECT = 16            # a resized image's long side is at most 16 times its short side
DEFAULT_LIMIT_GB = 20.0
LIMIT_GB_BOUNDS = (0.5, 10_000.0)
_SETTINGS_FILE = "cache.json"
_STALE_TMP_S = 3600        # a temporary file older than this was left by a build that died


# --- the resize rule, shared with the exported model's preprocessing ------------------------------------------

def resized_size(width: int, height: int, resize_size: int, crop_mode: str) -> tuple[int, int]:
    """(width, height) after the evaluation resize: the shorter side to ``resize_size``, the long side
    ``int(size * long / short)`` (torchvision's Resize(int)), or both sides for ``squash``.

    Raises:
        ValueError: an image more elongated than 1:16, whose resized long side would be unbounded.
    """
    if crop_mode == "squash":
        return resize_size, resize_size
    short, long = (width, height) if width <= height else (height, width)
    if long > MAX_ASPECT * short:
        raise ValueError(f"{width} x {height} px is more elongated than 1:{MAX_ASPECT}; crop it to the region "
                         "of interest first")
    new_long = int(resize_size * long / short)
    return (resize_size, new_long) if width <= height else (new_long, resize_size)


def resize(image: Image.Image, resize_size: int, crop_mode: str, interpolation: str) -> Image.Image:
    """An RGB image resized by the evaluation rule (``resized_size``) with a PIL filter."""
    size = resized_size(image.width, image.height, resize_size, crop_mode)
    if size == image.size:
        return image
    return image.resize(size, PIL_FILTERS[interpolation])


@dataclass(frozen=True)
class Spec:
    """How prepared images are sized: the evaluation resize of one model configuration."""

    resize_size: int
    crop_mode: str = "center"
    interpolation: str = "bicubic"

    def __post_init__(self) -> None:
        if not 8 <= int(self.resize_size) <= 4096:
            raise ValueError(f"resize size {self.resize_size} is outside 8-4096 px")
        if self.crop_mode not in CROP_MODES:
            raise ValueError(f"crop mode '{self.crop_mode}' is not supported (only {', '.join(CROP_MODES)})")
        if self.interpolation not in PIL_FILTERS:
            raise ValueError(f"interpolation '{self.interpolation}' is not supported")

    @classmethod
    def from_data_config(cls, cfg: dict[str, Any]) -> Spec:
        """From a timm-style data config: ``resize_size = floor(input / crop_pct)``, as timm's eval transform."""
        side = int(cfg["input_size"][-1])
        crop_pct = float(cfg.get("crop_pct") or 0.875)
        return cls(int(math.floor(side / crop_pct)), str(cfg.get("crop_mode") or "center"),
                   str(cfg["interpolation"]))

    @property
    def tag(self) -> str:
        return f"{FORMAT}:{DECODE_VERSION}:{self.resize_size}:{self.crop_mode}:{self.interpolation}"

    def key(self, sha256: str) -> str:
        return hashlib.sha256(f"{self.tag}:{sha256}".encode()).hexdigest()

    def nbytes(self, width: int, height: int) -> int:
        """Bytes of the prepared entry of a width x height source (0 when it cannot be resized)."""
        try:
            w, h = resized_size(width, height, self.resize_size, self.crop_mode)
        except ValueError:
            return 0
        return 3 * w * h + 128

    def make(self, source: Path) -> np.ndarray:
        """Decode ``source`` and resize it: an (H, W, 3) uint8 array.

        Raises:
            UnreadableImage: one line naming the file and why.
        """
        try:
            image = resize(load_image(source, max_pixels=DEFAULT_MAX_PIXELS), self.resize_size, self.crop_mode,
                           self.interpolation)
        except (ImageDecodeError, OSError, ValueError) as exc:
            raise UnreadableImage(f"{source.name}: {exc}") from exc
        return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


# --- the limit --------------------------------------------------------------------------------------------

def _settings_path() -> Path:
    from tl_desktop.paths import config_dir

    return config_dir() / _SETTINGS_FILE


def _check_gb(value: Any, source: str) -> float:
    try:
        gb = float(value)
    except (TypeError, ValueError):
        raise CacheLimitError(f"the cache limit in {source} is not a number: {value!r}") from None
    lo, hi = LIMIT_GB_BOUNDS
    if not (math.isfinite(gb) and lo <= gb <= hi):
        raise CacheLimitError(f"the cache limit must be between {lo:g} and {hi:,.0f} GB (got {value!r} in {source})")
    return gb


def cache_limit_gb() -> float:
    """The user's limit on the prepared-image cache: TL_DESKTOP_CACHE_GB, else the saved setting, else 20 GB."""
    if os.environ.get("TL_DESKTOP_CACHE_GB"):
        return _check_gb(os.environ["TL_DESKTOP_CACHE_GB"], "TL_DESKTOP_CACHE_GB")
    path = _settings_path()
    if not path.is_file():
        return DEFAULT_LIMIT_GB
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.stat().st_size < 4096 else None
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or "prepared_limit_gb" not in data:
        return DEFAULT_LIMIT_GB  # a damaged settings file falls back to the default, it never stops a job
    return _check_gb(data["prepared_limit_gb"], str(path))


def set_cache_limit_gb(gb: float) -> float:
    """Save the limit (validated) for every later job; returns it."""
    from tl_desktop.core.fsutil import atomic_write_json

    value = _check_gb(gb, "the setting")
    atomic_write_json(_settings_path(), {"prepared_limit_gb": value})
    return value


def cache_limit_bytes() -> int:
    return int(cache_limit_gb() * 1e9)


# --- the store --------------------------------------------------------------------------------------------

class PreparedCache:
    """The folder of prepared entries: ``<folder>/<key[:2]>/<key>.npy``."""

    def __init__(self, folder: Path | None = None):
        if folder is None:
            from tl_desktop.paths import cache_dir

            folder = cache_dir() / "prepared"
        self.folder = Path(folder)

    def entry(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def write(self, key: str, array: np.ndarray) -> Path:
        """Store an entry atomically (a temporary file renamed into place); concurrent writers are safe."""
        path = self.entry(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def usage(self) -> list[tuple[Path, int, float]]:
        """(entry, bytes, last use) of every entry; temporary files of dead builds are deleted on the way."""
        items: list[tuple[Path, int, float]] = []
        if not self.folder.is_dir():
            return items
        now = time.time()
        for sub in os.scandir(self.folder):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for item in os.scandir(sub.path):
                try:
                    st = item.stat(follow_symlinks=False)
                except OSError:
                    continue  # deleted by another job meanwhile
                if item.name.endswith(".tmp"):
                    if now - st.st_mtime > _STALE_TMP_S:
                        Path(item.path).unlink(missing_ok=True)
                elif item.name.endswith(".npy"):
                    items.append((Path(item.path), st.st_size, st.st_mtime))
        return items

    def size_bytes(self) -> int:
        return sum(size for _, size, _ in self.usage())

    def evict(self, keep: set[Path], limit: int) -> int:
        """Delete least recently used entries outside ``keep`` until the folder is under ``limit``; bytes freed."""
        items = self.usage()
        total = sum(size for _, size, _ in items)
        freed = 0
        for path, size, _ in sorted(items, key=lambda item: item[2]):
            if total - freed <= limit:
                break
            if path not in keep:
                path.unlink(missing_ok=True)
                freed += size
        return freed

    def clear(self) -> int:
        """Delete every entry; bytes freed."""
        return self.evict(set(), 0)


def read_entry(path: Path, source: Path, spec: Spec, cache: PreparedCache | None = None) -> np.ndarray:
    """A prepared image; rebuilt from ``source`` when the entry is missing (evicted by another job) or damaged."""
    try:
        array = np.load(path, allow_pickle=False)
        if array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3 and min(array.shape[:2]) >= 1:
            return array
    except (OSError, ValueError, EOFError):
        pass
    array = spec.make(source)
    (cache or PreparedCache(path.parent.parent)).write(path.stem, array)
    return array


# --- a job's images ---------------------------------------------------------------------------------------

def _current_files(paths: Sequence[Path], cancel: CancelToken | None) -> list[tuple[str, int, int]]:
    """(sha256, width, height) of each file as it is now, from the scan cache (one stat per unchanged file)."""
    from tl_desktop.core.data.scancache import examine_files

    found = examine_files(dict(enumerate(paths)), max_pixels=DEFAULT_MAX_PIXELS, cancel=cancel)
    out = []
    for i, path in enumerate(paths):
        result = found.get(i)
        if result is None or result.sha256 is None:
            raise UnreadableImage(f"{path.name}: {result.error if result else 'cannot be read'}")
        out.append((result.sha256, result.width, result.height))
    return out


def prepare(paths: Sequence[Path | str], spec: Spec, *, callback: Callable | None = None,
            cancel: CancelToken | None = None, cache: PreparedCache | None = None,
            workers: int | None = None) -> list[Path]:
    """The prepared entry of each file (in order), decoding only those not prepared before.

    Progress comes as ``Progress("preparing images", done, total, eta_s)`` events.

    Raises:
        UnreadableImage: a file cannot be decoded (nothing is lost: the entries made so far stay).
        CacheLimitError: the job's prepared images alone would exceed the cache limit.
        Cancelled: the token was set (the entries made so far stay, so the next job resumes).
    """
    emit = callback or (lambda event: None)
    cache = cache or PreparedCache()
    sources = [Path(p) for p in paths]
    current = _current_files(sources, cancel)
    entries = [cache.entry(spec.key(sha)) for sha, _, _ in current]
    needed = sum(spec.nbytes(w, h) for _, w, h in {e: c for e, c in zip(entries, current, strict=True)}.values())
    limit = cache_limit_bytes()
    if needed > limit:
        raise CacheLimitError(f"the prepared images of these {len(sources):,} files need {needed / 1e9:.1f} GB, "
                              f"over the cache limit of {limit / 1e9:g} GB; raise it with "
                              "'tl-desktop cache --limit-gb N' (or TL_DESKTOP_CACHE_GB)")
    todo: dict[Path, Path] = {}
    for entry, source in zip(entries, sources, strict=True):
        if entry.is_file():
            os.utime(entry)  # the least recently used entries go first when the folder is full
        else:
            todo.setdefault(entry, source)
    _build(todo, spec, cache, emit, cancel, workers, len(set(entries)))
    cache.evict(set(entries), limit)
    return entries


def _build(todo: dict[Path, Path], spec: Spec, cache: PreparedCache, emit: Callable, cancel: CancelToken | None,
           workers: int | None, total: int) -> None:
    """Decode and store ``todo`` (entry -> source) in a thread pool (decoding and resizing release the GIL)."""
    done = total - len(todo)
    emit(Progress("preparing images", done, total, None if todo else 0.0))
    if not todo:
        return
    start, last = time.perf_counter(), 0.0
    n_workers = workers or max(1, min(8, os.cpu_count() or 1))

    def one(item: tuple[Path, Path]) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        entry, source = item
        cache.write(entry.stem, spec.make(source))

    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        futures = [pool.submit(one, item) for item in todo.items()]
        try:
            for n, future in enumerate(futures, 1):
                future.result()  # re-raises UnreadableImage / Cancelled
                now = time.perf_counter()
                if now - last >= 0.25 or n in (1, len(futures)):
                    last = now
                    eta = (now - start) / n * (len(futures) - n)
                    emit(Progress("preparing images", done + n, total, eta))
        except BaseException:
            for future in futures:
                future.cancel()
            raise
