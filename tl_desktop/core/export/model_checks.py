"""Checks of an ``.onnx`` file from outside before it is used: its metadata against its graph, with bounds.

An exported file travels: it may be damaged, edited or crafted. Before the predictor decodes a single image,
every metadata value it will rely on is parsed and bounded here (class names against the output size, the
preprocessing against the input size, thresholds in [0, 1], finite mean/std, the unfamiliar-image reference
against the ``features`` and ``unfamiliarity`` outputs; the ``task``, and for a multi-label file one threshold per
finding and no single-label decision rule), so a bad file gives one line
naming what is wrong instead of a traceback or a memory blow-up (a resize of 1,000,000 px would need
terabytes).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from tl_desktop.core.errors import PredictorError
from tl_desktop.core.models.preprocessing import _PIL_FILTERS, CROP_MODES, Preprocessing

MAX_CLASSES = 10_000
MAX_INPUT_SIDE = 1024      # px: the largest input size any catalog model is exported at is far below
MAX_RESIZE_FACTOR = 2.0    # resize_size / input size; timm's crop_pct (0.875-1.0) gives at most 1.15
MAX_FEATURE_DIM = 16_384   # the catalog's widest penultimate layer is 2,048
MAX_UNFAMILIAR_THRESHOLD = 1e6
MAX_REFERENCE_COUNT = 10_000_000
UNFAMILIAR_ACTIONS = ("flagged", "not sure")  # shown with a mark, or the model abstains ("not sure")
SINGLE_LABEL, MULTI_LABEL = "single-label", "multi-label"  # metadata ``task``; a file without it is single-label
SINGLE_LABEL_RULE = ("positive_class", "decision_threshold", "abstain_threshold")


@dataclass(frozen=True)
class ModelFacts:
    """What the predictor needs, each value checked."""

    class_names: list[str]
    preprocessing: Preprocessing
    input_name: str
    fixed_batch: int | None          # the graph's batch size when it is not dynamic
    decision_rule: dict[str, Any] | None
    unfamiliar: UnfamiliarRule | None = None  # None: an export from before the reference existed
    task: str = SINGLE_LABEL
    thresholds: dict[str, float] | None = None  # multi-label: a finding is present when its probability >= this

    @property
    def multilabel(self) -> bool:
        return self.task == MULTI_LABEL


@dataclass(frozen=True)
class UnfamiliarRule:
    """An image is unfamiliar when its ``unfamiliarity`` output exceeds ``threshold``; ``action`` says what then."""

    threshold: float
    action: str
    feature_dim: int


def _fail(name: str, what: str) -> PredictorError:
    return PredictorError(f"{name}: {what}; export the model again with tl-desktop")


def _json(meta: dict[str, str], key: str, name: str) -> Any:
    try:
        return json.loads(meta[key])
    except KeyError:
        raise _fail(name, f"incomplete tl-desktop metadata (no {key})") from None
    except (ValueError, TypeError):
        raise _fail(name, f"metadata {key} is not valid JSON") from None


def _number(meta: dict[str, str], key: str, name: str, lo: float, hi: float) -> float:
    try:
        value = float(meta[key])
    except KeyError:
        raise _fail(name, f"incomplete tl-desktop metadata (no {key})") from None
    except (ValueError, TypeError):
        raise _fail(name, f"metadata {key}={meta[key][:40]!r} is not a number") from None
    if not (math.isfinite(value) and lo <= value <= hi):
        raise _fail(name, f"metadata {key}={value:g} is outside {lo:g}..{hi:g}")
    return value


def _class_names(meta: dict[str, str], name: str, outputs: int | None) -> list[str]:
    names = _json(meta, "class_names", name)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise _fail(name, "metadata class_names is not a list of class names")
    if len(names) > MAX_CLASSES or len(set(names)) != len(names):
        raise _fail(name, f"metadata class_names has {len(names)} entries or repeats a name")
    if outputs is not None and outputs != len(names):
        raise _fail(name, f"the metadata names {len(names)} classes but the model has {outputs} outputs")
    return names


def _triple(meta: dict[str, str], key: str, name: str, positive: bool) -> tuple[float, float, float]:
    values = _json(meta, key, name)
    ok = isinstance(values, list) and len(values) == 3 and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)
    if not ok or (positive and min(values) <= 0):
        raise _fail(name, f"metadata {key} must be three finite numbers{' above 0' if positive else ''}")
    return tuple(float(v) for v in values)


def _preprocessing(meta: dict[str, str], name: str, graph_side: tuple[Any, Any]) -> Preprocessing:
    size = _json(meta, "input_size", name)
    if not (isinstance(size, list) and len(size) == 3 and all(isinstance(v, int) for v in size)
            and size[0] == 3 and size[1] == size[2] and 8 <= size[1] <= MAX_INPUT_SIDE):
        raise _fail(name, f"metadata input_size {str(size)[:40]} is not 3 x N x N with N in 8..{MAX_INPUT_SIDE}")
    side = size[1]
    if any(isinstance(g, int) and g != side for g in graph_side):
        raise _fail(name, f"the metadata says {side} px but the model's input is {graph_side[0]} x {graph_side[1]}")
    resize = _number(meta, "resize_size", name, side, side * MAX_RESIZE_FACTOR)
    crop_pct = _number(meta, "crop_pct", name, 0.05, 1.0)
    if meta.get("crop_mode") not in CROP_MODES or meta.get("interpolation") not in _PIL_FILTERS:
        raise _fail(name, "metadata crop_mode or interpolation is not one tl-desktop writes")
    return Preprocessing((3, side, side), int(resize), meta["crop_mode"], meta["interpolation"],
                         _triple(meta, "mean", name, False), _triple(meta, "std", name, True), crop_pct)


def _decision_rule(meta: dict[str, str], name: str, class_names: list[str]) -> dict[str, Any] | None:
    """``statistics.decide`` keyword arguments from the metadata, each value checked."""
    rule: dict[str, Any] = {}
    if "decision_threshold" in meta or "positive_class" in meta:
        if meta.get("positive_class") not in class_names:
            raise _fail(name, "metadata positive_class is not one of the model's classes")
        rule = {"positive": class_names.index(meta["positive_class"]),
                "threshold": _number(meta, "decision_threshold", name, 0.0, 1.0)}
    if "abstain_threshold" in meta:
        rule["abstain"] = _number(meta, "abstain_threshold", name, 0.0, 1.0)
    return rule or None


def _task(meta: dict[str, str], name: str) -> str:
    task = meta.get("task", SINGLE_LABEL)
    if task not in (SINGLE_LABEL, MULTI_LABEL):
        raise _fail(name, f"metadata task={task[:40]!r} is neither {SINGLE_LABEL} nor {MULTI_LABEL}")
    return task


def _thresholds(meta: dict[str, str], name: str, class_names: list[str], task: str) -> dict[str, float] | None:
    """A multi-label file's threshold per finding (finite, in [0, 1], one per class name); None for single-label.

    A single-label file with per-finding thresholds, or a multi-label one with a single-label decision rule, is
    refused: the predictor would not know which rule the file means.
    """
    if task == SINGLE_LABEL:
        if "thresholds" in meta:
            raise _fail(name, "metadata thresholds belong to a multi-label model but the file is single-label")
        return None
    rule = [key for key in SINGLE_LABEL_RULE if key in meta]
    if rule:
        raise _fail(name, f"a multi-label model has one threshold per finding, not {', '.join(rule)}")
    values = _json(meta, "thresholds", name)
    if not isinstance(values, dict) or set(values) != set(class_names):
        raise _fail(name, "metadata thresholds must give exactly one threshold per class name")
    out: dict[str, float] = {}
    for finding in class_names:
        value = values[finding]
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and 0.0 <= value <= 1.0):
            raise _fail(name, f"metadata threshold of {finding[:40]!r} is {str(value)[:20]}, not a number in 0..1")
        out[finding] = float(value)
    return out


def _count(info: dict[str, Any], key: str, name: str, lo: int, hi: int) -> int:
    value = info.get(key)
    if not (isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi):
        raise _fail(name, f"metadata unfamiliar_reference {key}={str(value)[:20]} is not a whole number in {lo}..{hi}")
    return value


def _reference_info(meta: dict[str, str], name: str, dim: int) -> None:
    """The reference's description: method, components, image counts, where the threshold was set."""
    info = _json(meta, "unfamiliar_reference", name)
    if not isinstance(info, dict) or not isinstance(info.get("method"), str) or len(info["method"]) > 500:
        raise _fail(name, "metadata unfamiliar_reference is not a description of the reference")
    _count(info, "components", name, 1, dim)
    _count(info, "n_reference", name, 1, MAX_REFERENCE_COUNT)
    _count(info, "n_threshold", name, 1, MAX_REFERENCE_COUNT)
    quantile = info.get("quantile")
    if not (isinstance(quantile, float) and 0.5 <= quantile < 1.0) or info.get("threshold_from") not in (
            "val", "test", "train"):
        raise _fail(name, "metadata unfamiliar_reference quantile or threshold_from is not one tl-desktop writes")


def _unfamiliar(meta: dict[str, str], name: str, outputs: dict[str, Any]) -> UnfamiliarRule | None:
    """The unfamiliar-image rule; None for a file with neither the outputs nor the metadata (older exports)."""
    keys = ("unfamiliar_threshold", "unfamiliar_action", "feature_dim", "unfamiliar_reference")
    has_meta = [k for k in keys if k in meta]
    has_graph = [o for o in ("features", "unfamiliarity") if o in outputs]
    if not has_meta and not has_graph:
        return None
    if len(has_meta) < len(keys) or len(has_graph) < 2:
        raise _fail(name, "the unfamiliar-image reference is incomplete (metadata: "
                          f"{', '.join(has_meta) or 'none'}; outputs: {', '.join(has_graph) or 'none'})")
    shape, score_shape = outputs["features"].shape, outputs["unfamiliarity"].shape
    dim = int(_number(meta, "feature_dim", name, 1, MAX_FEATURE_DIM))
    if len(shape) != 2 or len(score_shape) != 1 or (isinstance(shape[1], int) and shape[1] != dim):
        raise _fail(name, f"the metadata says {dim} features but the model's features output is "
                          f"{' x '.join(map(str, shape))} (unfamiliarity: {' x '.join(map(str, score_shape))})")
    threshold = _number(meta, "unfamiliar_threshold", name, 1e-6, MAX_UNFAMILIAR_THRESHOLD)
    if meta["unfamiliar_action"] not in UNFAMILIAR_ACTIONS:
        raise _fail(name, f"metadata unfamiliar_action is not {' or '.join(UNFAMILIAR_ACTIONS)}")
    _reference_info(meta, name, dim)
    return UnfamiliarRule(threshold, meta["unfamiliar_action"], dim)


def check_model(session: Any, name: str) -> ModelFacts:
    """Every value the predictor uses, from an onnxruntime session's graph and metadata.

    Raises:
        PredictorError: one line naming the value that is missing, malformed or inconsistent with the graph.
    """
    meta: dict[str, str] = dict(session.get_modelmeta().custom_metadata_map)
    if "class_names" not in meta:
        raise PredictorError(f"{name} was not exported by tl-desktop (no class_names metadata)")
    inputs, outputs = session.get_inputs(), {o.name: o for o in session.get_outputs()}
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise _fail(name, "the model does not take one batch of images (N x 3 x H x W)")
    if "probabilities" not in outputs or len(outputs["probabilities"].shape) != 2:
        raise _fail(name, "the model has no 'probabilities' output of shape N x classes")
    n_out = outputs["probabilities"].shape[1]
    class_names = _class_names(meta, name, n_out if isinstance(n_out, int) else None)
    batch, channels, height, width = inputs[0].shape
    if isinstance(channels, int) and channels != 3:
        raise _fail(name, f"the model takes {channels} channels, not 3 (RGB)")
    pre = _preprocessing(meta, name, (height, width))
    fixed = batch if isinstance(batch, int) and batch > 0 else None
    task = _task(meta, name)
    thresholds = _thresholds(meta, name, class_names, task)
    rule = _decision_rule(meta, name, class_names) if thresholds is None else None
    return ModelFacts(class_names, pre, inputs[0].name, fixed, rule, _unfamiliar(meta, name, outputs), task,
                      thresholds)
