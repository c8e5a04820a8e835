"""The training losses: softmax cross-entropy for one class per image, binary cross-entropy per finding for a
multi-label run (sigmoid outputs: each finding present or absent on its own), with positive weights for rare
findings and label smoothing."""

from __future__ import annotations

from typing import Any

import torch

from tl_desktop.core.config import RunConfig
from tl_desktop.core.data.scan import WEIGHTING_RATIO as IMBALANCE_RATIO
from tl_desktop.core.evaluation import multilabel_run
from tl_desktop.core.events import Notice


def label_targets(rows: list[dict[str, Any]], class_names: list[str], multi: bool) -> Any:
    """The training targets of manifest rows: class indices, or (multi-label) an (n, labels) 0/1 float tensor."""
    if multi:
        return torch.from_numpy(multilabel_run.targets(rows, class_names))
    index = {name: i for i, name in enumerate(class_names)}
    return [index[f["label"]] for f in rows]


MAX_POSITIVE_WEIGHT = 50.0  # a finding on 1 of 1,000 images weighs 50x, not 999x: one image must not rule the loss


def positive_weights(config: RunConfig, targets: torch.Tensor, emit) -> torch.Tensor | None:
    """Binary cross-entropy's ``pos_weight`` per label: (images without it) / (images with it), between 1 and
    ``MAX_POSITIVE_WEIGHT``, so a rare finding's few positive images count as much as its negatives. Balance
    "auto" weighs when some label is rarer than 1 in ``IMBALANCE_RATIO + 1``; "sampler" weighs too (a sampler
    cannot balance several labels at once); "off" does not."""
    positive = targets.sum(0)
    ratio = (len(targets) - positive) / positive.clamp(min=1)
    mode = config.balance
    if mode == "off" or (mode == "auto" and not bool((ratio > IMBALANCE_RATIO).any())):
        return None
    weights = ratio.clamp(1.0, MAX_POSITIVE_WEIGHT)
    rare = [f"{name} ({w:.1f}x)" for name, w in zip(config.class_names, weights.tolist(), strict=True) if w > 1]
    how = " (instead of a sampler, which cannot balance several findings at once)" if mode == "sampler" else ""
    emit(Notice(f"Rare findings weigh more in the loss{how}: {', '.join(rare) or 'none'}"))
    return weights


class _SmoothedBCE(torch.nn.BCEWithLogitsLoss):
    """Binary cross-entropy with label smoothing: targets pulled towards 0.5 by ``smoothing``."""

    def __init__(self, pos_weight: torch.Tensor | None, smoothing: float):
        super().__init__(pos_weight=pos_weight)
        self.smoothing = float(smoothing)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return super().forward(logits, targets * (1 - self.smoothing) + 0.5 * self.smoothing)


def loss_for(config: RunConfig, weights) -> torch.nn.Module:
    """Softmax cross-entropy with class weights; for a multi-label run binary cross-entropy per label, with
    ``weights`` as positive weights (sigmoid outputs: each finding present or absent on its own)."""
    if config.task == "multi-label":
        if config.label_smoothing:
            return _SmoothedBCE(weights, config.label_smoothing)
        return torch.nn.BCEWithLogitsLoss(pos_weight=weights)
    return torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=float(config.label_smoothing))


__all__ = ["label_targets", "positive_weights", "loss_for", "MAX_POSITIVE_WEIGHT"]
