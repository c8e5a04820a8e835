"""Training throughput of the engine versus a minimal hand-written PyTorch loop, and linear-probe speed.

Prints images/s of both loops (same model, batch, image size, images, transforms) and their ratio
(goal: engine >= 0.95x the plain loop), then embedding extraction images/s and the wall time of a
linear-probe run on 1,000 images with a cold and a warm embedding cache.

    .venv/bin/python bench/train_throughput.py [--images 1000] [--train-images 192] [--size 128]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_photos(root: Path, n: int, side: int = 320) -> Path:
    """Random crops of scikit-image's real photos, two classes (animals/people vs objects), as JPEGs."""
    from skimage import data

    sources = {"living": [data.chelsea(), data.astronaut(), data.cat()],
               "objects": [data.coffee(), data.rocket(), data.immunohistochemistry()]}
    rng = np.random.default_rng(0)
    for label, images in sources.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n // 2):
            img = images[i % len(images)]
            h, w = img.shape[:2]
            c = int(rng.integers(min(h, w) // 2, min(h, w)))
            y, x = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
            crop = Image.fromarray(img[y:y + c, x:x + c]).resize((side, side), Image.BILINEAR)
            crop.save(root / label / f"{i:05d}.jpg", quality=90)
    return root


def plain_loop(paths, labels, cfg, batch: int, epochs: int) -> float:
    """The loop a PyTorch user would write over the same prepared images and transforms: AdamW, cross-entropy,
    channels-last; images/s."""
    import torch

    from tl_desktop.core.data.datasets import EpochBatches, PreparedImages, make_loader
    from tl_desktop.core.data.prepared import prepare
    from tl_desktop.core.models.catalog import create_model, train_pipeline

    model = create_model("tf_efficientnet_lite0", 2).to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    pipe = train_pipeline(cfg, "light")
    data = PreparedImages(prepare(paths, pipe.spec), paths, labels, pipe.spec, pipe.crop)  # decoded once, as the engine
    n = len(data)

    def order(epoch: int, bs: int) -> list[list[int]]:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(epoch)).tolist()
        return [perm[i:i + bs] for i in range(0, n - bs + 1, bs)]

    sampler = EpochBatches(order, 0)
    sampler.batch_size = batch
    loader = make_loader(data, workers=0, pin=False, batch_sampler=sampler)
    rates = []
    for epoch in range(epochs + 1):  # the first epoch warms the kernels up, as the engine's does
        sampler.epoch = epoch
        seen, start = 0, time.perf_counter()
        for x, y in loader:
            x = pipe.normalise(pipe.augment(x)).contiguous(memory_format=torch.channels_last)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            seen += len(y)
        rates.append(seen / (time.perf_counter() - start))
    return float(np.mean(rates[1:]))


def engine(data_dir: Path, out: Path, size: int, batch: int, epochs: int) -> float:
    """images/s the engine reports for its training epochs after the first (the first warms the kernels)."""
    from tl_desktop.core.events import EpochEnded
    from tl_desktop.core.training.run import TrainConfig, train

    rates: list[float] = []
    train(TrainConfig(data=str(data_dir), out=str(out), strategy="full", epochs=epochs + 1, image_size=size,
                      batch_size=batch, val_fraction=0.05, test_fraction=0.05, patience=0, workers=0),
          lambda e: rates.append(e.images_per_s) if isinstance(e, EpochEnded) else None)
    return float(np.mean(rates[1:]))


def linear_probe_times(data_dir: Path, tmp: Path) -> tuple[float, float, float]:
    """(cold wall s, warm wall s, embedding images/s) of a 224 px linear probe over the data set."""
    from tl_desktop.core.events import Notice
    from tl_desktop.core.training.run import TrainConfig, train

    notes: list[str] = []
    walls = []
    for name in ("cold", "warm"):
        start = time.perf_counter()
        train(TrainConfig(data=str(data_dir), out=str(tmp / f"probe-{name}"), strategy="linear-probe", epochs=10,
                          image_size=224, patience=0),
              lambda e: notes.append(e.message) if isinstance(e, Notice) else None)
        walls.append(time.perf_counter() - start)
    computed = [m for m in notes if "computed (" in m and " 0 computed" not in m]
    print("embedding backends:", sorted({m.rsplit("(", 1)[1].split(")")[0] for m in computed}))
    total = sum(int(m.split(" computed")[0].split(", ")[-1]) for m in computed)
    secs = sum(float(m.rsplit(" in ", 1)[1].split(" s")[0]) for m in computed)
    return walls[0], walls[1], total / secs


def bare_session_rate(batch: int = 32, repeats: int = 5) -> float:
    """images/s of the backbone's onnxruntime session (the one extraction used) on a ready 224 px batch."""
    import torch

    from tl_desktop.core.models import embeddings

    runner = next(iter(embeddings._RUNNERS.values()))
    x = torch.randn(batch, 3, 224, 224)
    runner(x)
    start = time.perf_counter()
    for _ in range(repeats):
        runner(x)
    return batch * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="images for the linear-probe timing")
    parser.add_argument("--train-images", type=int, default=192, help="images for the training-loop comparison")
    parser.add_argument("--size", type=int, default=128, help="image size of the training-loop comparison")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tl-bench-"))
    os.environ.setdefault("TL_DESKTOP_HOME", str(tmp / "home"))
    try:
        from tl_desktop.core.data.scan import scan
        from tl_desktop.core.models.catalog import data_config

        small = make_photos(tmp / "small", args.train_images)
        report = scan(small)
        index = {c: i for i, c in enumerate(report.classes)}
        paths = [report.abspath(s) for s in report.samples]
        labels = [index[s.label] for s in report.samples]
        cfg = data_config("tf_efficientnet_lite0", args.size)
        import torch

        print(f"CPU threads: {torch.get_num_threads()}, {args.train_images} images at {args.size} px, batch {args.batch}")
        plain = plain_loop(paths, labels, cfg, args.batch, args.epochs)
        ours = engine(small, tmp / "engine", args.size, args.batch, args.epochs)
        print(f"plain PyTorch loop: {plain:.1f} images/s")
        print(f"engine (full):      {ours:.1f} images/s")
        print(f"ratio engine/plain: {ours / plain:.2f} (goal >= 0.95)")
        big = make_photos(tmp / "big", args.images)
        cold, warm, rate = linear_probe_times(big, tmp)
        bare = bare_session_rate()
        print(f"embedding extraction at 224 px (decode, preprocess, onnxruntime; ONNX export included): "
              f"{rate:.0f} images/s; bare onnxruntime session on ready tensors: {bare:.0f} images/s "
              f"(ratio {rate / bare:.2f}; issue goal >= 200 images/s)")
        print(f"linear probe, {args.images} images, 10 epochs: cold cache {cold:.1f} s, warm cache {warm:.1f} s "
              f"(warm/cold {warm / cold:.2f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
