"""The prepared-image cache: each file decoded once, the pixels the exported model sees, bounded and safe."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import _photo
from tl_desktop.core.data import prepared
from tl_desktop.core.data.datasets import (
    CentreCrop,
    EpochBatches,
    Normalise,
    PreparedImages,
    RandomResizedCrop,
)
from tl_desktop.core.data.decode import load_image
from tl_desktop.core.errors import CacheLimitError, UnreadableImage
from tl_desktop.core.events import Cancelled, CancelToken, EpochEnded, FitStarted, Progress
from tl_desktop.core.models.catalog import data_config, eval_transform
from tl_desktop.core.models.preprocessing import Preprocessing
from tl_desktop.sample import write_radiographs

_OPENED: list[str] | None = None  # while a list, the audit hook records every file opened


def _audit(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], str | Path):
        _OPENED.append(str(args[0]))


sys.addaudithook(_audit)


@pytest.fixture(scope="module")
def radiographs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dx")
    write_radiographs(root, per_class=12, side=160, seed=1)
    return root


class _Counter:
    """Counts the decodes of the prepared cache; ``then`` runs after each."""

    def __init__(self, monkeypatch, then=lambda n: None):
        self.calls: list[str] = []
        real = prepared.load_image

        def counting(path, **kw):
            image = real(path, **kw)
            self.calls.append(Path(path).name)
            then(len(self.calls))
            return image

        monkeypatch.setattr(prepared, "load_image", counting)


def test_two_epochs_decode_each_dicom_once_and_the_second_epoch_reads_no_source_file(radiographs, tmp_path,
                                                                                      monkeypatch):
    global _OPENED
    from tl_desktop.core.training.run import TrainConfig, train

    counter = _Counter(monkeypatch)
    root = str(radiographs)
    sources = lambda: [p for p in _OPENED if p.startswith(root)]  # noqa: E731
    at_epoch: dict[int, tuple[int, list[str]]] = {}

    def watch(event):
        global _OPENED
        if isinstance(event, FitStarted):
            _OPENED = []
        if isinstance(event, EpochEnded):
            at_epoch[event.epoch] = (len(counter.calls), sources())
            _OPENED = []

    config = dict(data=root, strategy="fine-tune", epochs=2, image_size=32, batch_size=8, workers=0, patience=0)
    result = train(TrainConfig(out=str(tmp_path / "a"), **config), watch)
    _OPENED = None
    assert result.test_metrics["n"] > 0
    assert sorted(counter.calls) == sorted(p.name for p in radiographs.rglob("*.dcm"))  # once each, before epoch 1
    assert at_epoch[1][0] == at_epoch[2][0] == 24
    assert at_epoch[2][1] == [], "epoch 2 opened source files"
    before = len(counter.calls)
    train(TrainConfig(out=str(tmp_path / "b"), **config))
    assert len(counter.calls) == before  # a second run (and its evaluation) reuses every prepared image


@pytest.mark.parametrize("kind", ["dicom", "photo"])
def test_prepared_centre_crop_is_the_exported_models_preprocessing(kind, radiographs, tmp_path):
    if kind == "dicom":
        source = next(radiographs.rglob("*.dcm"))
    else:
        source = tmp_path / "astronaut.png"
        _photo("astronaut", side=150).save(source)
    cfg = data_config("tf_efficientnet_lite0", image_size=64)
    spec = prepared.Spec.from_data_config(cfg)
    (entry,) = prepared.prepare([source], spec)
    dataset = PreparedImages([entry], [source], [0], spec, CentreCrop(64))
    ours = Normalise(cfg["mean"], cfg["std"])(dataset[0][0].unsqueeze(0))[0].numpy()
    image = load_image(source)
    assert np.array_equal(ours, eval_transform(cfg)(image).numpy())  # the timm transform of the old path
    assert np.abs(ours - Preprocessing.from_data_config(cfg)(image)).max() < 1e-5  # and the ONNX consumer's


def test_a_changed_file_is_prepared_again_and_a_damaged_entry_is_rebuilt(tmp_path, monkeypatch):
    counter = _Counter(monkeypatch)
    source = tmp_path / "a.png"
    _photo("camera", side=80).save(source)
    spec = prepared.Spec(40, "center", "bilinear")
    (first,) = prepared.prepare([source], spec)
    assert prepared.prepare([source], spec) == [first] and counter.calls == ["a.png"]
    _photo("coins", side=80).save(source)
    (second,) = prepared.prepare([source], spec)
    assert second != first and len(counter.calls) == 2  # keyed by content: the old pixels are never reused
    second.write_bytes(b"not an array")
    array = prepared.read_entry(second, source, spec)
    assert array.shape[2] == 3 and min(array.shape[:2]) == 40 and array.dtype == np.uint8 and len(counter.calls) == 3
    assert np.array_equal(np.load(second), array)  # rebuilt in place


def test_an_interrupted_build_resumes_where_it_stopped(radiographs, monkeypatch):
    token = CancelToken()
    counter = _Counter(monkeypatch, then=lambda n: n == 6 and token.cancel())
    files = sorted(radiographs.rglob("*.dcm"))
    spec = prepared.Spec(48)
    seen: list[Progress] = []
    with pytest.raises(Cancelled):
        prepared.prepare(files, spec, callback=seen.append, cancel=token, workers=1)
    made = len(counter.calls)
    assert 6 <= made < len(files)
    assert any(e.eta_s is not None and e.eta_s > 0 for e in seen[1:])
    prepared.prepare(files, spec)
    assert len(counter.calls) == len(files)  # only the rest was decoded
    assert not list(prepared.PreparedCache().folder.rglob("*.tmp"))


def test_the_cache_is_bounded(tmp_path, monkeypatch):
    cache = prepared.PreparedCache(tmp_path / "c")
    sources = []
    for i, name in enumerate(["camera", "coins", "moon"]):
        sources.append(tmp_path / f"{name}.png")
        _photo(name, side=60 + i).save(sources[-1])
    spec = prepared.Spec(32, "center", "bilinear")
    entries = prepared.prepare(sources, spec, cache=cache)
    sizes = [e.stat().st_size for e in entries]
    for age, entry in zip((30, 20, 10), entries, strict=True):
        os.utime(entry, (time.time() - age, time.time() - age))
    cache.evict({entries[2]}, sizes[2] + sizes[1])
    assert [e.is_file() for e in entries] == [False, True, True]  # least recently used first, kept ones stay
    monkeypatch.setattr(prepared, "cache_limit_bytes", lambda: sum(sizes) // 2)
    with pytest.raises(CacheLimitError, match=r"need 0\.0 GB, over the cache limit.*--limit-gb"):
        prepared.prepare(sources, spec, cache=cache)
    monkeypatch.setenv("TL_DESKTOP_CACHE_GB", "-3")
    with pytest.raises(CacheLimitError, match="between 0.5 and"):
        prepared.cache_limit_gb()


def test_an_elongated_or_broken_file_is_one_line(tmp_path):
    strip = tmp_path / "strip.png"
    _photo("camera", side=64).resize((640, 20)).save(strip)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    for path, words in ((strip, "more elongated than 1:16"), (broken, "broken.png")):
        with pytest.raises(UnreadableImage, match=words) as info:
            prepared.prepare([path], prepared.Spec(32))
        assert "\n" not in str(info.value)


def test_training_crops_depend_only_on_the_seed_not_on_workers():
    x = torch.arange(3 * 50 * 70, dtype=torch.int64).remainder(251).to(torch.uint8).view(50, 70, 3)
    crop = RandomResizedCrop(32)
    assert torch.equal(crop(x, 5), crop(x, 5)) and not torch.equal(crop(x, 5), crop(x, 6))
    batches = EpochBatches(lambda epoch, bs: [[0, 1], [2, 3]] if epoch == 0 else [[3, 2], [1, 0]], seed=1)
    first = list(batches)
    batches.epoch = 1
    assert list(batches) != first and len(batches) == 2
    batches.epoch = 0
    assert list(batches) == first  # a resumed epoch draws the same crops


def test_cli_cache_shows_limits_and_clears(tmp_path):
    cli = [sys.executable, "-m", "tl_desktop.cli"]
    source = tmp_path / "a.png"
    _photo("camera", side=60).save(source)
    prepared.prepare([source], prepared.Spec(32))
    shown = subprocess.run([*cli, "cache"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "prepared images: 1 files" in shown.stdout and "of 20 GB" in shown.stdout
    bad = subprocess.run([*cli, "cache", "--limit-gb", "0.1"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "between 0.5 and" in bad.stderr
    ok = subprocess.run([*cli, "cache", "--limit-gb", "2"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "of 2 GB" in ok.stdout and prepared.cache_limit_gb() == 2.0
    cleared = subprocess.run([*cli, "cache", "--clear"], capture_output=True, text=True, timeout=120)
    assert "prepared images: 0 files" in cleared.stdout


def test_persistent_workers_deliver_the_same_epochs_as_the_training_thread(tmp_path):
    from tl_desktop.core.data.datasets import Augment, make_loader

    sources = []
    for name in ("camera", "coins", "moon", "astronaut", "coffee", "chelsea"):
        sources.append(tmp_path / f"{name}.png")
        _photo(name, side=48).save(sources[-1])
    spec = prepared.Spec(40, "center", "bilinear")
    dataset = PreparedImages(prepared.prepare(sources, spec), sources, list(range(6)), spec, RandomResizedCrop(32))
    n = len(dataset)

    def epochs(workers: int) -> list[torch.Tensor]:
        sampler = EpochBatches(lambda epoch, bs: [list(range(epoch % 2, n, 2)), list(range(1 - epoch % 2, n, 2))],
                               seed=4)
        loader = make_loader(dataset, workers=workers, pin=False, batch_sampler=sampler)
        out = []
        for epoch in range(3):
            sampler.epoch = epoch
            out.extend(x for x, _ in loader)
        return out

    inline, pooled = epochs(0), epochs(2)
    assert all(torch.equal(a, b) for a, b in zip(inline, pooled, strict=True)) and len(inline) == 6
    assert not torch.equal(inline[0], inline[2])  # epoch 2 draws other crops of the same images
    flips = Augment(hflip=0.5)(torch.stack([inline[0][0]] * 64))
    flipped = [torch.equal(f, inline[0][0].flip(-1)) for f in flips]
    assert all(fl or torch.equal(f, inline[0][0]) for f, fl in zip(flips, flipped, strict=True))
    assert 10 < sum(flipped) < 54  # each image of the batch draws its own flip
