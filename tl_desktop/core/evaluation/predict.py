"""A model's logits over files, batch by batch, with cancellation: the one forward pass that the fit's
validation, the run's evaluation, the transfer check and the forgetting check all use.

Images come from the prepared-image cache (``data.prepared``), centre-cropped as the model's evaluation
transform does, so a file is decoded once for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from tl_desktop.core.events import CancelToken


def eval_images(data_config: dict, paths: Sequence[Path], labels: Sequence[int], *, callback: Callable | None = None,
                cancel: CancelToken | None = None):
    """(dataset of uint8 centre crops, normaliser) over ``paths``, preparing the files not prepared yet.

    Raises:
        UnreadableImage: a file cannot be decoded. Cancelled: the token was set.
    """
    from tl_desktop.core.data.datasets import PreparedImages
    from tl_desktop.core.data.prepared import prepare
    from tl_desktop.core.models.catalog import eval_pipeline

    pipe = eval_pipeline(data_config)
    entries = prepare(list(paths), pipe.spec, callback=callback, cancel=cancel) if len(paths) else []
    return PreparedImages(entries, paths, labels, pipe.spec, pipe.crop), pipe.normalise


def predict_logits(model, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device, amp, cancel,
                   normalise: Callable[[torch.Tensor], torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of every (uint8 images, labels) batch, in order, in eval mode."""
    model.eval()
    outs, labels = [], []
    with torch.inference_mode(), torch.autocast(device.type, dtype=amp, enabled=amp is not None):
        for x, y in batches:
            if cancel is not None:
                cancel.raise_if_cancelled()
            x = normalise(x.to(device, non_blocking=True)).contiguous(memory_format=torch.channels_last)
            outs.append(model(x).float().cpu())
            labels.append(y)
    if not outs:
        return np.zeros((0, model.num_classes), np.float32), np.zeros((0,), np.int64)
    return torch.cat(outs).numpy(), torch.cat(labels).numpy()


def predict_files(model, data_config: dict, paths: Sequence[Path], labels: Sequence[int], *, batch_size: int = 32,
                  callback: Callable | None = None, cancel: CancelToken | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of files on the CPU (the evaluation transform), preparing them first."""
    from tl_desktop.core.data.datasets import make_loader

    dataset, normalise = eval_images(data_config, paths, labels, callback=callback, cancel=cancel)
    loader = make_loader(dataset, workers=0, pin=False, batch_size=batch_size)
    return predict_logits(model, loader, torch.device("cpu"), None, cancel, normalise)


def predict_features(model, data_config: dict, paths: Sequence[Path], labels: Sequence[int], *,
                     batch_size: int = 32, callback: Callable | None = None,
                     cancel: CancelToken | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate pooled features (``forward_head(forward_features(x), pre_logits=True)``, float32, n x d) and
    labels of files on the CPU, read like ``predict_files`` (the evaluation transform, prepared first).

    Raises:
        UnreadableImage: a file cannot be decoded. Cancelled: the token was set.
    """
    from tl_desktop.core.data.datasets import make_loader

    dataset, normalise = eval_images(data_config, paths, labels, callback=callback, cancel=cancel)
    loader = make_loader(dataset, workers=0, pin=False, batch_size=batch_size)
    model.eval()
    outs, ys = [], []
    with torch.inference_mode():
        for x, y in loader:
            if cancel is not None:
                cancel.raise_if_cancelled()
            x = normalise(x).contiguous(memory_format=torch.channels_last)
            outs.append(model.forward_head(model.forward_features(x), pre_logits=True).float())
            ys.append(y)
    if not outs:
        return np.zeros((0, model.num_features), np.float32), np.zeros((0,), np.int64)
    return torch.cat(outs).numpy(), torch.cat(ys).numpy()
