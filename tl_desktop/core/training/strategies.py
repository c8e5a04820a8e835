"""The training strategies: what each one trains, its default learning rate and layer decay, and ``auto``.

Light at import (no torch): the window's settings read the names and help texts from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

STRATEGIES = ("auto", "linear-probe", "fine-tune", "full", "scratch")
STRATEGY_HELP = {
    "auto": "Picks linear-probe for small data sets and fine-tune for larger ones.",
    "linear-probe": "Keeps the pretrained network frozen and trains only the last layer: fast, best for few images.",
    "fine-tune": "Also adapts the last stages of the network, at a lower learning rate: needs more images.",
    "full": "Adapts the whole network with smaller steps for early layers: for large data sets and a GPU.",
    "scratch": "Same network from random weights, no transfer: the baseline that shows what transfer gained.",
}
DEFAULT_LR = {"linear-probe": 5e-3, "fine-tune": 1e-3, "full": 5e-4, "scratch": 2e-3}
LAYER_DECAY = {"fine-tune": 0.7, "full": 0.8}
AUTO_PROBE_BELOW = 100  # images per class (median, training split) under which auto picks the linear probe


def resolve_strategy(strategy: str, train_counts: dict[str, int]) -> str:
    if strategy != "auto":
        return strategy
    median = float(np.median(list(train_counts.values()))) if train_counts else 0.0
    return "linear-probe" if median < AUTO_PROBE_BELOW else "fine-tune"


def set_trainable(model: torch.nn.Module, strategy: str, stages: int) -> None:
    """linear-probe: head only; fine-tune: head + last ``stages`` stages; full/scratch: everything."""
    from timm.models._manipulate import group_parameters

    if strategy in ("full", "scratch"):
        model.requires_grad_(True)
        return
    groups = group_parameters(model, model.group_matcher(coarse=True))
    keep = 1 if strategy == "linear-probe" else 1 + max(0, stages)
    trainable = {name for gid in sorted(groups)[-keep:] for name in groups[gid]}
    for name, param in model.named_parameters():
        param.requires_grad_(name in trainable)


def freeze_bn_of_frozen(model: torch.nn.Module) -> None:
    """Batch-norm layers whose parameters are all frozen stay in eval mode (running statistics kept)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            if not any(p.requires_grad for p in module.parameters(recurse=False)):
                module.eval()


def optimizer(model: torch.nn.Module, strategy: str, lr: float):
    from timm.optim import create_optimizer_v2

    return create_optimizer_v2(model, "adamw", lr=lr, weight_decay=0.01, layer_decay=LAYER_DECAY.get(strategy))
