"""A run's settings (``config.json``) in plain words, and several runs' settings side by side.

No Qt here. Each row is (what it is, in the user's words; its value, in words); the technical name follows in
brackets where a user may meet it elsewhere (the strategy, the CSV column a split groups by). The compare
window and the Train step's "Settings" tab show exactly these rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tl_desktop.core.config import RunConfig
from tl_desktop.core.project.run_list import network_label
from tl_desktop.core.training.strategies import strategy_label

AUGMENTATION_WORDS = {
    "none": "none: every image exactly as it is",
    "light": "light: random crops and left-right flips",
    "medical": "medical: brightness and contrast never changed",
}
BALANCE_WORDS = {
    "auto": "automatic",
    "weighted-loss": "rare classes count more in the loss",
    "sampler": "rare classes are shown more often",
    "off": "off",
}


@dataclass(frozen=True)
class SettingRow:
    """One setting across several runs; ``differs`` when not every run has the same value."""

    label: str
    values: tuple[str, ...]

    @property
    def differs(self) -> bool:
        return len(set(self.values)) > 1


def settings_rows(config: RunConfig) -> list[tuple[str, str]]:
    """The run's settings as (label, value) in plain words, in the order a user reads them."""
    _, height, width = config.input_size
    strategy = strategy_label(config.strategy)
    if config.strategy_requested == "auto":
        strategy += " (chosen by the app)"
    stop = (f"after {config.patience} epochs without improvement" if config.patience > 0
            else "no: every epoch is trained")
    return [
        ("Task", "several findings per image" if config.task == "multi-label" else "one class per image"),
        ("Classes" if config.task != "multi-label" else "Findings", ", ".join(config.class_names)),
        ("Network", network_label(config.model)),
        ("Pretrained weights", config.weights_source if config.weights == "pretrained" else "none (random start)"),
        ("Training method", strategy),
        ("Image size", f"{width} × {height} px"),
        ("Epochs (at most)", str(config.epochs)),
        ("Stop early", stop),
        ("Batch size", f"{config.batch_size} images per step"),
        ("Learning rate", f"{config.lr:g}"),
        ("Image changes while training", AUGMENTATION_WORDS.get(config.augmentation, config.augmentation)),
        ("Flips allowed", _yes(config.allow_flip)),
        ("Small rotations allowed", _yes(config.allow_rotate)),
        ("Label smoothing", f"{config.label_smoothing:g}" if config.label_smoothing else "off"),
        ("Class balance", BALANCE_WORDS.get(config.balance, config.balance)),
        ("Device asked for", {"auto": "automatic", "cpu": "CPU", "cuda": "GPU (CUDA)"}.get(config.device,
                                                                                        config.device)),
        ("Training images", _counts(config.train_counts)),
        ("Validation / test share", f"{100 * config.val_fraction:.0f} % / {100 * config.test_fraction:.0f} %"),
        ("Split", _split_words(config)),
        ("Continued from", Path(config.init_from.run_dir).name if config.init_from else "no (a new model)"),
        ("Images", config.csv or config.data),
        ("App version", config.versions.get("tl-desktop", "unknown")),
    ]


def compare_settings(configs: list[RunConfig | None]) -> list[SettingRow]:
    """The settings of several runs side by side, one row per setting (a run without a readable
    ``config.json`` shows "–" everywhere)."""
    tables = [dict(settings_rows(c)) if c is not None else {} for c in configs]
    labels: list[str] = []
    for table in tables:
        labels += [name for name in table if name not in labels]
    return [SettingRow(name, tuple(table.get(name, "–") for table in tables)) for name in labels]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _counts(counts: dict[str, int]) -> str:
    if not counts:
        return "not recorded"
    total = sum(counts.values())
    return f"{total:,} ({', '.join(f'{name} {n:,}' for name, n in counts.items())})"


def _split_words(config: RunConfig) -> str:
    if config.split is not None:
        return "the project's stored split"
    grouped = f", images of one patient kept together ({config.group_by})" if config.group_by else ""
    return f"made from seed {config.seed}{grouped}"
