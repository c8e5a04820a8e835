"""Linear-probe feature extraction: the reused verified session, the int8 backbone and the gate that picks it."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from tests.helpers import write_digits_folder
from tl_desktop.core.events import Notice
from tl_desktop.core.models import embeddings, quantise
from tl_desktop.core.models.catalog import create_model, data_config
from tl_desktop.core.models.embeddings import Calibration, EmbeddingCache, extract
from tl_desktop.core.training.run import TrainConfig, train
from tl_desktop.paths import cache_dir

TINY = dict(image_size=32, batch_size=16, seed=3, patience=0, workers=0)


def _files(folder, n=None):
    paths = sorted(folder.rglob("*.png"))[:n]
    return paths, [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


@pytest.fixture(scope="module")
def lite0():
    return create_model("tf_efficientnet_lite0", 3)


def test_reused_session_equals_a_fresh_export(digits_dir, lite0, tmp_path):
    paths, shas = _files(digits_dir, 40)
    cfg = data_config(lite0, 32)
    first, info = extract(lite0, cfg, paths, shas, cache=EmbeddingCache(tmp_path / "a.sqlite"))
    assert info["backend"] == "onnxruntime" and info["computed"] == 40
    runner = next(iter(embeddings._RUNNERS.values()))
    again, _ = extract(lite0, cfg, paths, shas, cache=EmbeddingCache(tmp_path / "b.sqlite"))
    assert next(iter(embeddings._RUNNERS.values())) is runner  # the verified session was reused
    embeddings._RUNNERS.clear()
    for exported in (cache_dir() / "backbones").glob("*.onnx"):
        exported.unlink()
    fresh, info = extract(lite0, cfg, paths, shas, cache=EmbeddingCache(tmp_path / "c.sqlite"))
    assert info["backend"] == "onnxruntime" and next(iter(embeddings._RUNNERS.values())) is not runner
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, fresh, atol=1e-5)


def test_int8_features_are_cached_apart_from_fp32(tmp_path, lite0, monkeypatch):
    monkeypatch.setattr(quantise, "MIN_SPEEDUP", 0.0)  # the figures, not this CPU's speed, are under test
    folder = write_digits_folder(tmp_path / "d", per_class=8, size=64)
    paths, shas = _files(folder)
    cfg = data_config(lite0, 64)
    cache = EmbeddingCache(tmp_path / "e.sqlite")
    fp32, _ = extract(lite0, cfg, paths, shas, cache=cache)
    calibration = Calibration.sample(paths, shas, 8)
    int8, info = extract(lite0, cfg, paths, shas, cache=cache, int8=calibration)
    assert info["backend"] == "onnxruntime int8" and info["computed"] == len(paths)
    assert int8.shape == fp32.shape and np.isfinite(int8).all() and not np.array_equal(int8, fp32)
    _, again = extract(lite0, cfg, paths, shas, cache=cache, int8=calibration)
    assert again["computed"] == 0
    assert embeddings.uncached(lite0, cfg, shas, cache) == 0
    reread, _ = extract(lite0, cfg, paths, shas, cache=cache)
    np.testing.assert_array_equal(reread, fp32)  # the int8 vectors never replace the fp32 ones


def test_gate_on_real_features(digits_dir, lite0, tmp_path):
    paths, shas = _files(digits_dir)
    labels = np.array([int(p.parent.name[-1]) for p in paths])
    x, _ = extract(lite0, data_config(lite0, 32), paths, shas, cache=EmbeddingCache(tmp_path / "g.sqlite"))
    train_idx, val_idx = np.arange(0, len(x), 2), np.arange(1, len(x), 2)
    same = quantise.int8_gate(x[train_idx], labels[train_idx], x[val_idx], x[val_idx], labels[val_idx], 3)
    assert same.use_int8 and same.agreement == 1.0 and "int8 features used" in same.sentence()
    shuffled = x[val_idx][np.random.default_rng(0).permutation(len(val_idx))]
    bad = quantise.int8_gate(x[train_idx], labels[train_idx], x[val_idx], shuffled, labels[val_idx], 3)
    assert not bad.use_int8 and bad.agreement < 0.99
    assert bad.sentence().startswith("int8 features disagreed on ") and bad.sentence().endswith("fp32 used")
    assert bad.record()["backend"] == "fp32"


def _train_notes(digits_dir, out, monkeypatch, int8_run) -> list[str]:
    """A linear probe whose int8 backbone is ``int8_run(fp32_runner)`` (no quantiser involved)."""
    monkeypatch.setattr(quantise, "MIN_IMAGES", 0)
    monkeypatch.setattr(embeddings._Runner, "int8", lambda self, calibration, key, load: int8_run(self))
    notes: list[str] = []
    train(TrainConfig(data=str(digits_dir), out=str(out), strategy="linear-probe", epochs=2, **TINY),
          lambda e: notes.append(e.message) if isinstance(e, Notice) else None)
    return [m for m in notes if m.startswith("Image features ready") or "int8" in m]


def test_probe_uses_int8_when_the_gate_agrees(digits_dir, tmp_path, monkeypatch):
    notes = _train_notes(digits_dir, tmp_path / "run", monkeypatch, lambda fp32: fp32)
    assert any("pretrained network in 8-bit (int8)" in m and "int8 features used for training" in m for m in notes), notes
    assert not any("train images" in m and "onnxruntime)" in m for m in notes), notes  # no fp32 pass


def test_probe_falls_back_to_fp32_with_a_note_when_int8_disagrees(digits_dir, tmp_path, monkeypatch):
    def scrambled(fp32):
        return lambda batch: fp32(batch)[:, ::-1].copy()  # features in the wrong order: a broken backbone

    notes = _train_notes(digits_dir, tmp_path / "run", monkeypatch, scrambled)
    refused = [m for m in notes if "int8 features disagreed on" in m]
    assert refused and refused[0].endswith("fp32 used"), notes
    assert any("train images" in m and "(feature extraction, onnxruntime)" in m for m in notes), notes
