"""Frozen-backbone embeddings for the linear probe: onnxruntime for speed, a disk cache for retrains.

The backbone is exported to ONNX once per run and checked against PyTorch on the first batch; if the two
disagree (or onnxruntime is unavailable) extraction falls back to PyTorch channels-last. Embeddings are
cached in ``cache_dir()/embeddings.sqlite`` keyed by the backbone's weights, the preprocessing and each
file's SHA-256, so a retrain with a warm cache skips extraction entirely.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tl_desktop.core.errors import UnreadableImage
from tl_desktop.core.events import CancelToken, Progress
from tl_desktop.paths import cache_dir

VERIFY_TOLERANCE = 1e-3
# Bump when decoding changes what an image looks like (DICOM windowing, 16-bit scaling, colour handling...):
# cached embeddings of the old pixels must not be reused.
DECODE_VERSION = "decode-1"


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


class _Runner:
    """Runs the extractor through onnxruntime when it matches PyTorch, else through PyTorch."""

    def __init__(self, extractor: FeatureExtractor, example: torch.Tensor):
        self.extractor = extractor.eval().to(memory_format=torch.channels_last)
        self.session = None
        self.backend = "pytorch"
        try:
            from tl_desktop.core.models.onnx_tools import cpu_session, export_module

            with tempfile.TemporaryDirectory() as tmp:
                path = export_module(self.extractor, example, Path(tmp) / "backbone.onnx",
                                     output_names=["embedding"])
                self.session = cpu_session(path)
            if float(np.abs(self._onnx(example) - self._torch(example)).max()) <= VERIFY_TOLERANCE:
                self.backend = "onnxruntime"
            else:
                self.session = None
        except Exception:  # noqa: BLE001 - any export/runtime problem: PyTorch still works
            self.session = None

    def _torch(self, batch: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return self.extractor(batch.contiguous(memory_format=torch.channels_last)).float().numpy()

    def _onnx(self, batch: torch.Tensor) -> np.ndarray:
        return self.session.run(None, {"input": batch.numpy()})[0]

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        return self._onnx(batch) if self.session is not None else self._torch(batch)


def extract(model: torch.nn.Module, data_config: dict[str, Any], paths: list[Path], shas: list[str], *,
            callback: Callable | None = None, cancel: CancelToken | None = None, batch_size: int = 32,
            cache: EmbeddingCache | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Embeddings of ``paths`` (rows in the same order) and figures about how they were obtained.

    Raises:
        UnreadableImage: a file can no longer be decoded.
        Cancelled: the token was set.
    """
    import time

    cache = cache or EmbeddingCache()
    key = backbone_key(model, data_config)
    known = cache.get_many(key, list(dict.fromkeys(shas)))
    todo = [i for i, s in enumerate(shas) if s not in known]
    info = {"cached": len(shas) - len(todo), "computed": len(todo), "backend": "cache", "images_per_s": None}
    if todo:
        start = time.perf_counter()
        new = _compute([Path(paths[i]) for i in todo], data_config, key, FeatureExtractor(model), batch_size,
                       callback, cancel, info)
        info["images_per_s"] = len(todo) / max(time.perf_counter() - start, 1e-9)
        fresh = {shas[i]: vec for i, vec in zip(todo, new, strict=False)}
        cache.put_many(key, fresh)
        known.update(fresh)
    return np.stack([known[s] for s in shas]).astype(np.float32), info


_RUNNERS: dict[str, _Runner] = {}  # the last backbone's session, reused for the next subset of the same run


def _runner(key: str, extractor: FeatureExtractor, example: torch.Tensor) -> _Runner:
    if key not in _RUNNERS:
        _RUNNERS.clear()
        _RUNNERS[key] = _Runner(extractor, example)
    return _RUNNERS[key]


def _compute(paths: list[Path], data_config: dict[str, Any], key: str, extractor: FeatureExtractor,
             batch_size: int, callback, cancel, info) -> np.ndarray:
    """Decode and preprocess every image of the next batch in parallel while the current batch runs.

    Preprocessing is the exported model's own PIL + numpy code (``inference.Preprocessing``), equal to timm's
    evaluation transform within 1e-5 and several times faster than it.
    """
    from tl_desktop.core.data.decode import load_image
    from tl_desktop.core.errors import ImageDecodeError
    from tl_desktop.core.models.preprocessing import Preprocessing

    try:
        pre = Preprocessing.from_data_config(data_config)
    except ValueError:  # a config the numpy code does not cover: timm's own transform
        from tl_desktop.core.models.catalog import eval_transform

        transform = eval_transform(data_config)

        def pre(image):
            return transform(image).numpy()

    def load(path: Path) -> np.ndarray:
        try:
            return pre(load_image(path))
        except (ImageDecodeError, OSError) as exc:
            raise UnreadableImage(f"{path.name}: {exc}") from exc

    batches = [paths[s:s + batch_size] for s in range(0, len(paths), batch_size)]
    out: list[np.ndarray] = []
    with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 1))) as pool:
        pending = [pool.submit(load, p) for p in batches[0]]
        runner = None
        for n, _ in enumerate(batches):
            if cancel is not None:
                cancel.raise_if_cancelled()
            batch = torch.from_numpy(np.stack([f.result() for f in pending]))  # re-raises UnreadableImage
            pending = [pool.submit(load, p) for p in batches[n + 1]] if n + 1 < len(batches) else []
            if runner is None:
                runner = _runner(key, extractor, batch)
                info["backend"] = runner.backend
            out.append(runner(batch))
            if callback is not None:
                callback(Progress("embedding", min((n + 1) * batch_size, len(paths)), len(paths)))
    return np.concatenate(out)
