"""Typed, frozen, versioned configuration: where the images are, how to train, and what a run resolved.

- ``DataSource``: the images (a folder, or a CSV next to them) and how they are divided (seed, fractions,
  grouping, or a stored split). Training, the transfer check, the label budget, jobs and the window share it.
- ``TrainOptions``: how to train (network, strategy, schedule, augmentation, device...), every default once.
- ``TrainConfig``: what the user asks for: a ``DataSource`` plus ``TrainOptions`` plus the output folder.
- ``RunConfig``: the resolved ``RUN_DIR/config.json``: the options after "auto" was decided, plus class names,
  weights, preprocessing (``data_config``) and library versions. ``to_dict``/``from_dict`` are its only
  (de)serialiser; ``from_dict`` checks every field's type and migrates older files.

The image size is a model setting (``TrainOptions.image_size``), not part of the data source: it decides how
the network sees each image (its preprocessing), not which images there are or how they are split.

Schema history of ``config.json``:
    1  no ``schema_version``; options written flat by ``TrainConfig.to_dict()`` plus the resolved fields; older
       runs may lack later options (``allow_rotate``, ``fine_tune_stages``, ``train_counts``...).
    2  current: ``schema_version``, every field present, ``init_from`` as ``{"run_dir", "class_names"}``.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tl_desktop.core.errors import DataError, RunError, TrainingError

SCHEMA_VERSION = 2


@dataclass(frozen=True, kw_only=True)
class SplitOptions:
    """How the images are divided into training, validation and test images when no split is stored."""

    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    group_by: str | None = None  # CSV column or "regex:..." naming the patient/group of each image


@dataclass(frozen=True, kw_only=True)
class DataSource(SplitOptions):
    """The images and how they are split: ``data`` is the folder, ``csv`` an optional file/label list (its
    paths relative to ``data``), ``split`` a stored ``Split.to_dict()`` that, when given, wins over the
    seed, fractions and grouping, ``review`` the user's review decisions (``data.review.Review.to_dict()``:
    excluded, relabelled and keep-together files) that the split applies, ``labels`` the labels given in the
    app (``data.labels.Labels.to_dict()``) that the scan applies, ``label_columns`` the CSV's 0/1 columns
    that make it a multi-label task (a label column of ``a;b`` values is one without them)."""

    data: str
    csv: str | None = None
    split: dict[str, Any] | None = field(default=None, repr=False)
    review: dict[str, Any] | None = field(default=None, repr=False)
    labels: dict[str, Any] | None = field(default=None, repr=False)
    label_columns: list[str] | None = None  # one 0/1 column of the CSV per label: a multi-label task

    @property
    def source(self) -> DataSource:
        """Only the data-source part (of a ``TrainConfig`` or ``RunConfig``)."""
        return DataSource(**{f.name: getattr(self, f.name) for f in fields(DataSource)})


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """How to train, apart from the data: the one place that lists these options and their defaults."""

    model: str = "tf_efficientnet_lite0"
    strategy: str = "auto"
    epochs: int = 10
    batch_size: int = 32
    lr: float | None = None
    image_size: int | None = None
    augmentation: str = "light"
    allow_flip: bool = False
    allow_rotate: bool = False
    label_smoothing: float = 0.0
    balance: str = "auto"          # auto | weighted-loss | sampler | off
    patience: int = 5
    device: str = "auto"
    workers: int | None = None
    weights_file: str | None = None
    fine_tune_stages: int = 2


@dataclass(frozen=True, kw_only=True)
class TrainConfig(TrainOptions, DataSource):
    """A training request: the data source, the options and a new (or empty) output folder.

    ``init_from`` names an earlier finished run to continue from (new images and/or classes).
    """

    out: str
    init_from: str | None = None

    @classmethod
    def of(cls, source: DataSource, out: str, **options: Any) -> TrainConfig:
        """A request to train on ``source`` (its data-source fields only) into ``out`` with ``options``."""
        return cls(**{f.name: getattr(source, f.name) for f in fields(DataSource)}, out=str(out), **options)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Keyword arguments of a plain dict (unknown keys, e.g. of a job file, are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class ContinuedFrom:
    """The earlier run a run continued from: its folder and its classes (which keep their head rows)."""

    run_dir: str
    class_names: list[str]


@dataclass(frozen=True, kw_only=True)
class RunConfig(TrainOptions, DataSource):
    """``RUN_DIR/config.json``: every option as resolved when the run was created (see the module docstring).

    ``strategy`` and ``lr`` are resolved ("auto" and None decided); ``strategy_requested`` keeps what was asked.
    ``data_config`` is timm's preprocessing config (input_size, interpolation, mean, std, crop_pct, crop_mode).
    ``temperature`` is an older calibration stored with the run; ``clinical.json``'s wins when present.
    """

    out: str
    lr: float
    strategy_requested: str
    class_names: list[str]
    weights: str                   # "pretrained" | "none"
    weights_source: str = "unknown"
    data_config: dict[str, Any]
    init_from: ContinuedFrom | None = None
    versions: dict[str, str] = field(default_factory=dict)
    train_counts: dict[str, int] = field(default_factory=dict)
    skipped_files: int = 0
    temperature: float | None = None
    task: str = "single-label"     # "multi-label": several findings per image, sigmoid outputs (data/multilabel.py)
    schema_version: int = SCHEMA_VERSION

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(channels, height, width) of the network's input, from ``data_config``."""
        c, h, w = (int(v) for v in self.data_config["input_size"])
        return c, h, w

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``config.json`` (every field, ``schema_version`` included)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> RunConfig:
        """Read a ``config.json`` object of any schema version, checking every field.

        Raises:
            RunError: not an object, from a newer app, a required field missing, a wrong type or unknown key.
        """
        data = migrate(data)
        hints = typing.get_type_hints(cls)
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise RunError(f"config.json has unknown field(s) {', '.join(unknown)}")
        missing = [f.name for f in fields(cls) if f.name not in data
                   and f.default is MISSING and f.default_factory is MISSING]
        if missing:
            raise RunError(f"config.json is incomplete: {', '.join(missing)} missing")
        values = {name: _checked(name, value, hints[name]) for name, value in data.items()}
        _check_data_config(values["data_config"])
        if isinstance(values.get("init_from"), dict):
            values["init_from"] = ContinuedFrom(**values["init_from"])
        return cls(**values)


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's type hint (ints count as floats, bools never as numbers)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is ContinuedFrom:
        return (isinstance(value, dict) and set(value) == {"run_dir", "class_names"}
                and _matches(value["run_dir"], str) and _matches(value["class_names"], list[str]))
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        _, item = typing.get_args(hint)
        return isinstance(value, dict) and all(isinstance(k, str) and _matches(v, item) for k, v in value.items())
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _checked(name: str, value: Any, hint: Any) -> Any:
    if not _matches(value, hint):
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:37]}..."
        raise RunError(f"config.json field '{name}' is {shown}, which is not a valid {_describe(hint)}")
    return float(value) if hint is float or (hint == float | None and value is not None) else value


_DATA_CONFIG_HINTS: dict[str, Any] = {"input_size": list[int], "mean": list[float], "std": list[float],
                                      "interpolation": str}


def _check_data_config(cfg: dict[str, Any]) -> None:
    """timm's preprocessing keys the app relies on (crop_pct and crop_mode have defaults where read)."""
    for key, hint in _DATA_CONFIG_HINTS.items():
        value = cfg.get(key)
        if not _matches(value, hint) or (isinstance(value, list) and len(value) != 3):
            raise RunError(f"config.json field 'data_config' has no valid '{key}' ({value!r})")


def _describe(hint: Any) -> str:
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("tl_desktop.core.config.", "")


# --- bounds on the options ------------------------------------------------------------------------------

# field -> (what the user calls it, lowest, highest, whole number?); None is allowed where the default is None.
OPTION_BOUNDS: dict[str, tuple[str, float, float, bool]] = {
    "epochs": ("epochs", 1, 10_000, True),
    "batch_size": ("batch size", 1, 4096, True),
    "lr": ("learning rate", 1e-8, 10, False),
    "image_size": ("image size (px)", 16, 1024, True),
    "label_smoothing": ("label smoothing", 0, 0.5, False),
    "patience": ("patience (epochs)", 0, 10_000, True),
    "workers": ("data loader workers", 0, 256, True),
    "fine_tune_stages": ("fine-tune stages", 1, 100, True),
    "seed": ("seed", 0, 2**32 - 1, True),
    "val_fraction": ("validation fraction", 0, 0.9, False),
    "test_fraction": ("test fraction", 0, 0.9, False),
}


def _bound_problem(name: str, value: Any) -> str | None:
    label, low, high, whole = OPTION_BOUNDS[name]
    kind = "a whole number" if whole else "a number"
    ok = isinstance(value, int if whole else int | float) and not isinstance(value, bool)
    if ok and (not math.isfinite(value) or not low <= value <= high):
        ok = False
    if ok:
        return None
    shown = repr(value) if len(repr(value)) <= 30 else f"{repr(value)[:27]}..."
    shown_range = f"{int(low):,} to {int(high):,}" if whole else f"{low:g} to {high:g}"
    return f"{label} must be {kind} from {shown_range} (got {shown})"


def check_options(options: TrainOptions | SplitOptions) -> None:
    """Refuse an option outside its range (``OPTION_BOUNDS``), NaN and infinity included, before anything runs.

    Raises:
        TrainingError: one line naming the first such option, its allowed range and the value given.
    """
    for f in fields(options):
        value = getattr(options, f.name)
        if f.name in OPTION_BOUNDS and not (value is None and f.default is None):
            problem = _bound_problem(f.name, value)
            if problem:
                raise TrainingError(problem)


def check_output_folder(out: str | Path, source: DataSource) -> None:
    """Refuse an output folder inside a class-folder data set: the next scan would find its files (report
    images, checkpoints) as images, or a class made of them. A CSV data set lists its files, so any folder
    is fine there.

    Raises:
        DataError: ``out`` is the data folder or inside it.
    """
    data = Path(source.data).expanduser()
    if source.csv or data.suffix.lower() == ".csv" or not data.is_dir():
        return
    root, target = data.resolve(), Path(out).expanduser().resolve()
    if target == root or root in target.parents:
        raise DataError(f"the output folder {out} is inside the image folder {source.data}; the next scan would "
                        "take its files for images: choose a folder outside it")


# --- migration -------------------------------------------------------------------------------------------

_V1_DEFAULTS: dict[str, Any] = {"weights_source": "unknown", "versions": {}, "train_counts": {},
                                "skipped_files": 0, "init_from": None}


def _migrate_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 (no ``schema_version``): fill options added later with their defaults, drop the always-empty
    ``split`` and keys no version knows, and default ``strategy_requested`` to the resolved strategy."""
    options = {f.name: f.default for f in fields(TrainOptions)} | {f.name: f.default for f in fields(SplitOptions)}
    known = {f.name for f in fields(RunConfig)}
    out = {**options, "csv": None, **_V1_DEFAULTS,
           **{k: v for k, v in data.items() if k in known and k != "split"}}
    if "strategy" in data:
        out.setdefault("strategy_requested", data["strategy"])
    out["schema_version"] = 2
    return out


_MIGRATIONS = {1: _migrate_1_to_2}


def migrate(data: Any) -> dict[str, Any]:
    """Bring a ``config.json`` object of any earlier schema to the current one.

    Raises:
        RunError: not a JSON object, or written by a newer app.
    """
    if not isinstance(data, dict):
        raise RunError("config.json is not a JSON object")
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RunError(f"config.json has an invalid schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise RunError(f"config.json was written by a newer tl-desktop (format {version}); please update the app")
    while version < SCHEMA_VERSION:
        data = _MIGRATIONS[version](data)
        version = data["schema_version"]
    return data


__all__ = ["SCHEMA_VERSION", "SplitOptions", "DataSource", "TrainOptions", "TrainConfig", "ContinuedFrom",
           "RunConfig", "migrate", "OPTION_BOUNDS", "check_options", "check_output_folder"]
