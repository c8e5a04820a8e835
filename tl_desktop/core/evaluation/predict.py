"""A model's logits over a dataset, batch by batch, with cancellation: the one forward pass that the fit's
test evaluation, the clinical evaluation and the transfer check all use."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader


def predict_logits(model, dataset, batch_size, device, amp, workers, cancel) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of a whole dataset, in order, in eval mode."""
    if not len(dataset):
        return np.zeros((0, model.num_classes), np.float32), np.zeros((0,), np.int64)
    model.eval()
    outs, labels = [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    with torch.inference_mode(), torch.autocast(device.type, dtype=amp, enabled=amp is not None):
        for x, y in loader:
            cancel.raise_if_cancelled()
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            outs.append(model(x).float().cpu())
            labels.append(y)
    return torch.cat(outs).numpy(), torch.cat(labels).numpy()
