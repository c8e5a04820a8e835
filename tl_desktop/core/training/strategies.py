"""The training strategies: what each one trains, its default learning rate and layer decay, and ``auto``.

Light at import (no torch): the window's settings read the names and help texts from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

STRATEGIES = ("auto", "linear-probe", "fine-tune", "full", "scratch")
AUTO_PROBE_BELOW = 100  # images per class (median, training split) under which auto picks the linear probe
# key -> (what it does, in plain words; its technical name): the window shows the plain words first
STRATEGY_NAMES = {
    "auto": ("Let the app choose (by how many images)", "automatic"),
    "linear-probe": ("Train only the last layer (fast, few images)", "linear probe"),
    "fine-tune": ("Also adapt the last layers (more images)", "fine-tune"),
    "full": ("Adapt the whole network (many images, a GPU)", "full fine-tuning"),
    "scratch": ("Random start, no transfer (a baseline)", "training from scratch"),
}
STRATEGY_HELP = {
    "auto": (f"The app chooses: only the last layer below {AUTO_PROBE_BELOW} training images per class, the last "
             "layers too above that."),
    "linear-probe": "The pretrained network stays as it is and only its last layer learns your classes: fast, and "
                    "the best choice with few images.",
    "fine-tune": "The last layers of the pretrained network also adapt to your images, in smaller steps: needs "
                 "more images.",
    "full": "Every layer adapts, the early ones in the smallest steps: for large image sets and a GPU.",
    "scratch": "The same network starts from random weights, without the pretrained knowledge: the baseline "
               "that shows what transfer gained.",
}


def strategy_label(strategy: str) -> str:
    """``Train only the last layer (fast, few images) — linear probe``: plain words, then the technical name
    (an unknown key is returned as it is)."""
    plain, technical = STRATEGY_NAMES.get(strategy, (strategy, ""))
    return f"{plain} — {technical}" if technical else plain


def strategy_help(strategy: str) -> str:
    """What the strategy does, headed by its technical name: ``Linear probe: the pretrained network ...``."""
    _plain, technical = STRATEGY_NAMES.get(strategy, (strategy, ""))
    text = STRATEGY_HELP.get(strategy, "")
    return f"{technical[:1].upper()}{technical[1:]}: {text}" if technical and text else text


DEFAULT_LR = {"linear-probe": 5e-3, "fine-tune": 1e-3, "full": 5e-4, "scratch": 2e-3}
LAYER_DECAY = {"fine-tune": 0.7, "full": 0.8}


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
