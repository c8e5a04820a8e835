"""Frozen-backbone embeddings for the linear probe: onnxruntime for speed, a disk cache for retrains.

The backbone is exported to ONNX once (kept in the cache folder) and checked against PyTorch on a few images of
each process's first batch; if the two disagree (or onnxruntime is unavailable) extraction falls back to
PyTorch channels-last. The linear probe may use a statically quantised int8 copy for the training images
(``int8=``, ``models.quantise``), under the gate the probe applies. Embeddings are
cached in ``cache_dir()/embeddings.sqlite`` keyed by the backbone's weights, the preprocessing and each
file's SHA-256, so a retrain with a warm cache skips extraction entirely.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tl_desktop.core.data.prepared import DECODE_VERSION
from tl_desktop.core.events import CancelToken, Progress
from tl_desktop.paths import cache_dir

VERIFY_TOLERANCE = 1e-3
KEEP_BACKBONES = 6  # exported backbones (and their int8 copies) kept in cache_dir()/backbones
VERIFY_IMAGES = 4  # images of the first batch run through both PyTorch and onnxruntime


class FeatureExtractor(torch.nn.Module):
    """The backbone up to the pooled, pre-classifier features."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


def backbone_key(model: torch.nn.Module, data_config: dict[str, Any]) -> str:
    """Digest of the backbone weights (classifier excluded), the preprocessing and the decoder version."""
    digest = hashlib.sha256(json.dumps(data_config, sort_keys=True).encode())
    digest.update(DECODE_VERSION.encode())
    head = {f"{model.default_cfg.get('classifier', 'classifier')}.weight",
            f"{model.default_cfg.get('classifier', 'classifier')}.bias"}
    for name, tensor in sorted(model.state_dict().items()):
        if name not in head:
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class EmbeddingCache:
    """sqlite-backed map (backbone key, file sha256) -> float32 vector; safe to share between threads."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else cache_dir() / "embeddings.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")

    @staticmethod
    def _key(backbone: str, sha: str) -> str:
        return hashlib.sha256(f"{backbone}:{sha}".encode()).hexdigest()

    def get_many(self, backbone: str, shas: list[str]) -> dict[str, np.ndarray]:
        keys = {self._key(backbone, s): s for s in shas}
        found: dict[str, np.ndarray] = {}
        with self._lock:
            items = list(keys)
            for start in range(0, len(items), 500):
                chunk = items[start:start + 500]
                rows = self._db.execute(
                    f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})", chunk).fetchall()
                for key, blob in rows:
                    found[keys[key]] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, backbone: str, items: dict[str, np.ndarray]) -> None:
        rows = [(self._key(backbone, s), np.asarray(v, dtype=np.float32).tobytes()) for s, v in items.items()]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)", rows)

    def close(self) -> None:
        self._db.close()


class Int8Unavailable(Exception):
    """int8 extraction cannot be used here (no onnxruntime session, the quantiser failed, or it is not faster)."""


@dataclass(frozen=True)
class Calibration:
    """The training images the int8 backbone is calibrated on; they, the recipe and the CPU key its features."""

    paths: tuple[Path, ...]
    shas: tuple[str, ...]

    @classmethod
    def sample(cls, paths: list[Path], shas: list[str], n: int) -> Calibration:
        """``n`` images spread over the list ordered by content hash (independent of the listing order)."""
        order = sorted(range(len(shas)), key=lambda i: shas[i])
        picked = [order[round(k * (len(order) - 1) / max(n - 1, 1))] for k in range(min(n, len(order)))]
        return cls(tuple(Path(paths[i]) for i in picked), tuple(shas[i] for i in picked))

    def key(self, backbone: str) -> str:
        from tl_desktop.core.models.quantise import RECIPE, vnni_flags

        text = ":".join([backbone, RECIPE, ",".join(vnni_flags()), *sorted(self.shas)])
        return hashlib.sha256(text.encode()).hexdigest()


class _Runner:
    """Runs the extractor through onnxruntime when it matches PyTorch, else through PyTorch.

    The exported backbone is kept in ``cache_dir()/backbones`` named by its key (weights, preprocessing,
    onnxruntime version), so a later run exports nothing; every session is checked against PyTorch on a few
    images of the first batch, whether freshly exported or read from the cache. The export traces a single
    image: tracing the whole first batch cost 10 s of eager PyTorch at 224 px on 2 cores.
    """

    def __init__(self, extractor: FeatureExtractor, example: torch.Tensor, key: str):
        self.extractor = extractor.eval().to(memory_format=torch.channels_last)
        self.session = None
        self.backend = "pytorch"
        self.path = _backbone_file(key)
        self._int8: dict[str, Callable[[torch.Tensor], np.ndarray] | Int8Unavailable] = {}
        try:
            from tl_desktop.core.models.onnx_tools import cpu_session, export_module

            if not self.path.is_file():
                with tempfile.TemporaryDirectory(dir=self.path.parent) as tmp:
                    os.replace(export_module(self.extractor, example[:1], Path(tmp) / "backbone.onnx",
                                             output_names=["embedding"]), self.path)
            self.session = cpu_session(self.path)
            probe = example[:VERIFY_IMAGES]
            if float(np.abs(self._onnx(probe) - self._torch(probe)).max()) <= VERIFY_TOLERANCE:
                self.backend = "onnxruntime"
            else:
                self.session = None
                self.path.unlink(missing_ok=True)
        except Exception:  # noqa: BLE001 - any export/runtime problem: PyTorch still works
            self.session = None

    def _torch(self, batch: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return self.extractor(batch.contiguous(memory_format=torch.channels_last)).float().numpy()

    def _onnx(self, batch: torch.Tensor) -> np.ndarray:
        return self.session.run(None, {"input": batch.numpy()})[0]

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        return self._onnx(batch) if self.session is not None else self._torch(batch)

    def int8(self, calibration: Calibration, key: str, load: Callable[[Path], np.ndarray]):
        """The int8 session's run function for ``calibration`` (built once, remembered with its refusal).

        Raises:
            Int8Unavailable: no onnxruntime session, the quantiser failed, or int8 is not faster on this CPU.
        """
        if key not in self._int8:
            try:
                self._int8 = {key: self._quantised(calibration, key, load)}
            except Int8Unavailable as exc:
                self._int8 = {key: exc}
        found = self._int8[key]
        if isinstance(found, Int8Unavailable):
            raise found
        return found

    def _quantised(self, calibration: Calibration, key: str, load: Callable[[Path], np.ndarray]):
        import time

        from tl_desktop.core.models.onnx_tools import cpu_session
        from tl_desktop.core.models.quantise import MIN_SPEEDUP, quantise_static

        if self.session is None:
            raise Int8Unavailable("the backbone does not run in onnxruntime")
        images = np.stack([load(p) for p in calibration.paths])
        dst = self.path.with_name(f"{key[:40]}-int8.onnx")
        try:
            if not dst.is_file():
                with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
                    quantise_static(self.path, Path(tmp) / "int8.onnx", images)
                    os.replace(Path(tmp) / "int8.onnx", dst)
            session = cpu_session(dst, quiet=True)
            rates = []
            for run in (self.session, session):
                run.run(None, {"input": images})  # warm-up
                start = time.perf_counter()
                run.run(None, {"input": images})
                rates.append(1 / max(time.perf_counter() - start, 1e-9))
        except Exception as exc:  # noqa: BLE001 - the quantiser or runtime refused this graph
            dst.unlink(missing_ok=True)
            raise Int8Unavailable(f"quantisation failed ({type(exc).__name__})") from exc
        if rates[1] < MIN_SPEEDUP * rates[0]:
            raise Int8Unavailable(f"int8 was not faster than fp32 on this CPU ({rates[1] / rates[0]:.2f}x)")
        return lambda batch: session.run(None, {"input": batch.numpy()})[0]


def _backbone_file(key: str) -> Path:
    import onnxruntime

    from tl_desktop.core.models.onnx_tools import OPSET

    name = hashlib.sha256(f"{key}:{onnxruntime.__version__}:{torch.__version__}:{OPSET}".encode()).hexdigest()
    folder = cache_dir() / "backbones"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name[:40]}.onnx"
    older = []
    for other in folder.glob("*.onnx"):
        with contextlib.suppress(OSError):  # another process may delete it meanwhile
            if other != path:
                older.append((other.stat().st_mtime, other))
    for _, stale in sorted(older)[:max(0, len(older) - KEEP_BACKBONES + 1)]:
        stale.unlink(missing_ok=True)  # ~13 MB each: only the most recently used backbones stay
    with contextlib.suppress(OSError):
        os.utime(path)
    return path


def uncached(model: torch.nn.Module, data_config: dict[str, Any], shas: list[str],
             cache: EmbeddingCache | None = None) -> int:
    """How many of ``shas`` have no fp32 embedding in the cache yet."""
    cache = cache or EmbeddingCache()
    return len(set(shas) - set(cache.get_many(backbone_key(model, data_config), list(dict.fromkeys(shas)))))


def extract(model: torch.nn.Module, data_config: dict[str, Any], paths: list[Path], shas: list[str], *,
            callback: Callable | None = None, cancel: CancelToken | None = None, batch_size: int = 32,
            cache: EmbeddingCache | None = None, int8: Calibration | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Embeddings of ``paths`` (rows in the same order) and figures about how they were obtained.

    With ``int8`` the statically quantised backbone calibrated on those images computes them (cached apart
    from the fp32 ones).

    Raises:
        UnreadableImage: a file can no longer be decoded.
        Cancelled: the token was set.
        Int8Unavailable: ``int8`` was asked for and cannot be used here.
    """
    import time

    cache = cache or EmbeddingCache()
    base = backbone_key(model, data_config)
    key = base if int8 is None else int8.key(base)
    known = cache.get_many(key, list(dict.fromkeys(shas)))
    todo = [i for i, s in enumerate(shas) if s not in known]
    info = {"cached": len(shas) - len(todo), "computed": len(todo), "backend": "cache", "images_per_s": None}
    if todo:
        start = time.perf_counter()
        new = _compute([Path(paths[i]) for i in todo], data_config, (base, key), FeatureExtractor(model),
                       batch_size, callback, cancel, info, int8)
        info["images_per_s"] = len(todo) / max(time.perf_counter() - start, 1e-9)
        fresh = {shas[i]: vec for i, vec in zip(todo, new, strict=False)}
        cache.put_many(key, fresh)
        known.update(fresh)
    return np.stack([known[s] for s in shas]).astype(np.float32), info


_RUNNERS: dict[str, _Runner] = {}  # the last backbone's session, reused for the next subset and retrains


def _runner(key: str, extractor: FeatureExtractor, example: torch.Tensor) -> _Runner:
    if key not in _RUNNERS:
        _RUNNERS.clear()
        _RUNNERS[key] = _Runner(extractor, example, key)
    return _RUNNERS[key]


def _loader(data_config: dict[str, Any], paths: list[Path], callback, cancel) -> Callable[[Path], np.ndarray]:
    """path -> preprocessed float32 (3, H, W) array, from the prepared-image cache (``paths`` are prepared now,
    with progress; any other path when first asked for): the centre crop and normalisation of the evaluation
    transform, equal to the exported model's preprocessing.

    Raises:
        UnreadableImage: a file cannot be decoded (now, or when called for another path).
        Cancelled: the token was set while preparing.
    """
    from tl_desktop.core.data.prepared import prepare, read_entry
    from tl_desktop.core.models.catalog import eval_pipeline

    pipe = eval_pipeline(data_config)
    entries = dict(zip(paths, prepare(paths, pipe.spec, callback=callback, cancel=cancel), strict=True))
    mean, std = (np.asarray(data_config[k], dtype=np.float32).reshape(3, 1, 1) for k in ("mean", "std"))

    def load(path: Path) -> np.ndarray:
        entry = entries.get(path) or prepare([path], pipe.spec)[0]
        crop = pipe.crop(torch.from_numpy(read_entry(entry, path, pipe.spec))).numpy()
        return (crop.astype(np.float32) / np.float32(255) - mean) / std  # Normalise's operations, in numpy

    return load


def _compute(paths: list[Path], data_config: dict[str, Any], keys: tuple[str, str], extractor: FeatureExtractor,
             batch_size: int, callback, cancel, info, int8: Calibration | None = None) -> np.ndarray:
    """Decode and preprocess every image of the next batch in parallel while the current batch runs."""
    load = _loader(data_config, paths, callback, cancel)
    batches = [paths[s:s + batch_size] for s in range(0, len(paths), batch_size)]
    out: list[np.ndarray] = []
    with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 1))) as pool:
        pending = [pool.submit(load, p) for p in batches[0]]
        run = None
        for n, _ in enumerate(batches):
            if cancel is not None:
                cancel.raise_if_cancelled()
            batch = torch.from_numpy(np.stack([f.result() for f in pending]))  # re-raises UnreadableImage
            pending = [pool.submit(load, p) for p in batches[n + 1]] if n + 1 < len(batches) else []
            if run is None:
                runner = _runner(keys[0], extractor, batch)
                run = runner if int8 is None else runner.int8(int8, keys[1], load)
                info["backend"] = runner.backend if int8 is None else "onnxruntime int8"
            out.append(run(batch))
            if callback is not None:
                callback(Progress("embedding", min((n + 1) * batch_size, len(paths)), len(paths)))
    return np.concatenate(out)
