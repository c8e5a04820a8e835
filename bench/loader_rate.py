"""The training loader alone (no model): images/s of batches from the prepared-image cache, as the engine builds
them (``catalog.train_pipeline`` crops in persistent workers, flips and normalisation per batch on ``device``).
Shared by ``clinical_size.py`` and ``gpu_check.py``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def loader_rate(files: list[Path], *, image_size: int = 224, workers: int = 2, batch: int = 64,
                device: str = "cpu", seconds: float = 8.0) -> dict[str, Any]:
    """{"prepare_per_s", "uint8", "normalised"}: preparing ``files`` (0 work when already prepared), then the
    loader's uint8 batches, then the same batches flipped and normalised on ``device``, each for ``seconds``."""
    import torch

    from tl_desktop.core.data.datasets import EpochBatches, PreparedImages, make_loader
    from tl_desktop.core.data.prepared import prepare
    from tl_desktop.core.models.catalog import data_config, train_pipeline

    pipe = train_pipeline(data_config("tf_efficientnet_lite0", image_size=image_size), "light")
    start = time.perf_counter()
    entries = prepare(files, pipe.spec)
    prepare_rate = len(files) / (time.perf_counter() - start)
    dataset = PreparedImages(entries, files, [0] * len(files), pipe.spec, pipe.crop)
    n, target = len(files), torch.device(device)
    sampler = EpochBatches(lambda epoch, bs: [list(range(i, min(i + bs, n))) for i in range(0, n, bs)], 0)
    sampler.batch_size = batch
    loader = make_loader(dataset, workers=workers, pin=target.type == "cuda", batch_sampler=sampler)

    def on_device(x):
        x = pipe.normalise(pipe.augment(x.to(target, non_blocking=True)))
        if target.type == "cuda":
            torch.cuda.synchronize()
        return x

    rates: dict[str, Any] = {"prepare_per_s": prepare_rate, "workers": workers, "batch": batch}
    for label, step in (("uint8", None), ("normalised", on_device)):
        seen, epoch, begin = 0, 0, None
        while begin is None or time.perf_counter() - begin < seconds:
            sampler.epoch = epoch
            for x, _ in loader:
                if step is not None:
                    x = step(x)
                if begin is None:  # the first batch pays for starting the workers
                    begin = time.perf_counter()
                    continue
                seen += len(x)
            epoch += 1
        rates[label] = seen / (time.perf_counter() - begin)
    del loader
    return rates
