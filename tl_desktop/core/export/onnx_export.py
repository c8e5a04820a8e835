"""ONNX export of a run, verified against PyTorch on the run's own images at every export.

The exported graph has one input ``input`` (float32, N x 3 x H x W, dynamic batch) and four outputs: ``logits``,
``probabilities`` (softmax of logits / temperature), ``features`` (the penultimate pooled features) and
``unfamiliarity`` (how unlike the training images, see ``unfamiliar``), and carries everything a consumer needs in its
``metadata_props`` (see ``inference.Preprocessing.to_metadata`` and ``_metadata``). The file is written to a
temporary name, checked, compared with PyTorch, and only then moved into place; the figures go to
``<name>.verification.json`` next to it. Optional fp16 and int8 variants are written beside it
(``<name>.fp16.onnx``, ``<name>.int8.onnx``), each re-verified with its own stated tolerance (``variants``
makes them, ``verify`` holds the comparison and the tolerances).

``export_onnx`` exports whatever the run folder holds now; front ends call ``policy.export_run``, which first
makes the run's clinical evaluation current so that every export carries its temperature and the decision rule
the user chose or accepted (none otherwise: the label is then the most probable class; ``decision``).

A multi-label run's file differs (``multilabel``): ``probabilities`` = sigmoid(logits), no temperature and no
single-label rule, its per-finding thresholds in the metadata (``task`` = ``multi-label``); it is verified on
the findings at those thresholds instead of the top-1 answer (``verify``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tl_desktop import __version__
from tl_desktop.core import runs
from tl_desktop.core.errors import ExportError
from tl_desktop.core.events import CancelToken, Progress
from tl_desktop.core.export import multilabel, unfamiliar, verify
from tl_desktop.core.export.model_checks import MULTI_LABEL, SINGLE_LABEL, UNFAMILIAR_ACTIONS
from tl_desktop.core.export.predictor import METADATA_FORMAT
from tl_desktop.core.export.variants import MAKERS
from tl_desktop.core.export.verify import TOLERANCES  # noqa: F401 - re-exported: the limits every export meets
from tl_desktop.core.fsutil import atomic_write_json
from tl_desktop.core.models import run_model
from tl_desktop.core.models.preprocessing import Preprocessing

MAX_VERIFY_IMAGES = 64
OUTPUT_NAMES = ["logits", "probabilities", "features", "unfamiliarity"]
# The metadata keys that differ between two exports of the same run (all others are a function of the run,
# its clinical evaluation, the precision, the checkpoint and the app version; when the user chose a rule).
TIMESTAMP_KEYS = frozenset({"created_utc", "evaluation_computed_utc", "decision_chosen_utc"})


@dataclass
class ExportResult:
    path: Path
    verification_path: Path
    verification: dict[str, Any]
    variants: dict[str, ExportResult] = field(default_factory=dict)


@dataclass
class _Images:
    """Verification images preprocessed twice: by timm's eval transform and by the app's own numpy code."""

    subset: str
    torch_batch: Any          # torch.Tensor (n, 3, H, W) from models.eval_transform
    app_batch: np.ndarray     # float32 (n, 3, H, W) from inference.Preprocessing
    skipped: int
    probe: np.ndarray         # float32 (m, 3, H, W): made-up images unlike any data set (verify.probe_images)


def output_path(out: Path | str) -> Path:
    """``out`` as a Path. Raises ExportError unless it names an ``.onnx`` file."""
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ExportError(f"{out.name}: the output file must end in .onnx")
    return out


def variant_path(out: Path, precision: str) -> Path:
    return out if precision == "fp32" else out.with_name(f"{out.stem}.{precision}{out.suffix}")


def verification_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.verification.json")


# --- the model with its four outputs ---------------------------------------------------------------------

def _wrapped(model, temperature: float, reference: unfamiliar.Reference, multi_label: bool = False):
    import torch

    class Classifier(torch.nn.Module):
        """logits, softmax(logits / temperature) (multi-label: sigmoid(logits)), pooled features and their
        unfamiliarity: what every consumer of the file gets."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model
            setattr(self, unfamiliar.SCOPE, unfamiliar.score_module(reference))

        def forward(self, x):
            feature_map = self.model.forward_features(x)
            features = self.model.forward_head(feature_map, pre_logits=True)
            logits = self.model.forward_head(feature_map)
            score = getattr(self, unfamiliar.SCOPE)(features)
            probs = torch.sigmoid(logits) if multi_label else torch.softmax(logits / temperature, dim=1)
            return logits, probs, features, score

    return Classifier().eval()


# --- images ----------------------------------------------------------------------------------------------

def _verification_images(run: run_model.LoadedRun, pre: Preprocessing, limit: int) -> _Images:
    import torch

    from tl_desktop.core.models.catalog import eval_transform

    transform = eval_transform(run.data_config)
    for subset in ("val", "test", "train"):
        files = run.files(subset)
        images = [image for image, _ in verify.readable(files, limit)]
        if images:
            tensors = torch.stack([transform(im) for im in images])
            arrays = np.stack([pre(im) for im in images])
            return _Images(subset, tensors, arrays, min(len(files), limit) - len(images), verify.probe_images(pre))
    raise ExportError(f"cannot verify the export: none of the run's images can be read under {run.root} "
                      "(moved or deleted?)")


# --- metadata --------------------------------------------------------------------------------------------

def _metadata(run: run_model.LoadedRun, pre: Preprocessing, precision: str, which: str,
              reference: unfamiliar.Reference, action: str) -> dict[str, str]:
    config = run.config
    multi = multilabel.is_multilabel(config)
    meta = {
        "tl_desktop_format": METADATA_FORMAT,
        "task": MULTI_LABEL if multi else SINGLE_LABEL,
        "class_names": json.dumps(run.class_names, ensure_ascii=False),
        **pre.to_metadata(),
        "input_name": "input",
        "outputs": multilabel.OUTPUTS if multi else (
            "logits (N, classes); probabilities (N, classes) = softmax(logits / temperature), "
            "columns in class_names order; features (N, feature_dim), penultimate pooled; unfamiliarity (N), "
            "unfamiliar when above unfamiliar_threshold (see unfamiliar_reference)"),
        **_decision(run),
        **reference.metadata(action),
        "precision": precision,
        "model_name": config.model,
        "weights_source": config.weights_source,
        "strategy": config.strategy,
        "checkpoint": which,
        "app": "tl-desktop",
        "app_version": __version__,
        "created_utc": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "training_manifest_sha256": runs.manifest_hash(run.run_dir),
    }
    _refuse_paths(meta, run)
    return meta


def _decision(run: run_model.LoadedRun, which: str = "best") -> dict[str, str]:
    """Temperature, and positive class / decision / abstain thresholds when the user chose them in Evaluate;
    for a multi-label run its per-finding thresholds instead (``multilabel.decision_metadata``).

    Read once per export and kept with the loaded run: the model, its verification and its metadata must all
    use the same values even if clinical.json is written while the export runs.
    """
    from tl_desktop.core.evaluation.run_evaluation import decision_metadata

    if run.decision is None:
        run.decision = (multilabel.decision_metadata(run.run_dir, run.class_names, which)
                        if multilabel.is_multilabel(run.config) else decision_metadata(run.run_dir, run.config, which))
    return run.decision


def _temperature(run: run_model.LoadedRun) -> float:
    """The softmax temperature of the graph (a multi-label graph has none: its sigmoid is taken as it is)."""
    return 1.0 if multilabel.is_multilabel(run.config) else float(_decision(run)["temperature"])


def _cut(run: run_model.LoadedRun) -> np.ndarray | None:
    """A multi-label run's thresholds in class order (what the findings are verified at); None otherwise."""
    if not multilabel.is_multilabel(run.config):
        return None
    thresholds = json.loads(_decision(run)["thresholds"])
    return np.array([thresholds[name] for name in run.class_names], dtype=np.float64)


def _refuse_paths(meta: dict[str, str], run: run_model.LoadedRun) -> None:
    """Metadata travels with the file to other sites: never a user's folder (names may identify people)."""
    forbidden = {str(run.run_dir.resolve()), str(run.run_dir), str(run.root), tempfile.gettempdir()}
    home = str(Path.home())
    if len(home) > 1:
        forbidden.add(home)
    for key, value in meta.items():
        for bad in forbidden:
            if bad and len(bad) > 1 and bad in value:
                raise ExportError(f"metadata '{key}' would contain a local folder path; refusing to export")


def _finish_model(path: Path, meta: dict[str, str]) -> None:
    """Strip exporter doc strings (they hold local source paths), set metadata, save in place."""
    import onnx

    model = onnx.load(str(path))
    model.doc_string = "tl-desktop image classifier; see metadata_props for preprocessing and classes"
    for node in model.graph.node:
        node.doc_string = ""
    model.graph.doc_string = ""
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, meta)
    onnx.save(model, str(path))


def _check(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # noqa: BLE001 - checker errors of every kind refuse the export
        raise ExportError(f"the exported graph fails onnx.checker: {str(exc).strip().splitlines()[0]}") from exc


def _verify(path: Path, images: _Images, reference: dict[str, np.ndarray], precision: str,
            providers: list[str] | None) -> dict[str, Any]:
    return verify.verify(path, images.torch_batch.numpy(), images.app_batch, images.subset, images.skipped,
                         reference["probabilities"], precision, providers,
                         unfamiliar=verify.UnfamiliarCheck(images.probe, reference["features"], reference["score"],
                                                           reference["probe_score"], reference["threshold"]),
                         cut=reference["cut"])


# --- files -----------------------------------------------------------------------------------------------

def _temp_onnx(out: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".onnx.tmp", dir=out.parent)
    os.close(fd)
    return Path(name)


def _file_figures(path: Path, name: str) -> dict[str, Any]:
    import onnx
    import onnxruntime
    import torch

    data = path.read_bytes()
    return {"file": name, "file_size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "versions": {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                         "torch": torch.__version__, "tl-desktop": __version__}}


def _finalise(tmp: Path, final: Path, figures: dict[str, Any], meta: dict[str, str]) -> ExportResult:
    """Move the verified file into place; its old verification is removed first, so a model never sits next
    to figures that belong to another one (the new figures follow right after)."""
    figures.update(_file_figures(tmp, final.name))
    figures["metadata"] = meta
    os.chmod(tmp, 0o644)  # mkstemp makes it private; the model is meant to be shared
    report = verification_path(final)
    report.unlink(missing_ok=True)
    os.replace(tmp, final)
    atomic_write_json(report, figures)
    return ExportResult(final, report, figures)


def _remove_stale_variants(out: Path, wanted: list[str]) -> None:
    """Variants of an earlier export to the same name that this export did not make belong to another model."""
    for name in ("fp16", "int8"):
        if name not in wanted:
            stale = variant_path(out, name)
            stale.unlink(missing_ok=True)
            verification_path(stale).unlink(missing_ok=True)


# --- the export ------------------------------------------------------------------------------------------

def export_onnx(run_dir: Path | str, out: Path | str, *, fp16: bool = False, int8: bool = False,
                which: str = "best", callback: Callable | None = None, cancel: CancelToken | None = None,
                providers: list[str] | None = None, unfamiliar_action: str = "flagged") -> ExportResult:
    """Export a run's model to ``out`` (.onnx), verify it, and optionally write fp16/int8 variants beside it.

    ``unfamiliar_action`` is what a predictor does with an image unlike the training images: "flagged" (the
    answer is shown with a mark) or "not sure" (the model abstains on it).

    Raises:
        ExportError: the run cannot be exported, or a file fails verification (the figures are in the
            message; a refused file is not left on disk, already verified ones are kept).
        RunError: the run folder is missing or damaged.
    """
    out = output_path(out)
    if unfamiliar_action not in UNFAMILIAR_ACTIONS:
        raise ExportError(f"unfamiliar images can be {' or '.join(UNFAMILIAR_ACTIONS)}, not {unfamiliar_action!r}")
    wanted = ["fp32"] + [name for name, on in (("fp16", fp16), ("int8", int8)) if on]
    steps = 5 + 2 * (len(wanted) - 1)
    emit = _progress(callback, steps)

    run = run_model.load_run(run_dir, which)
    _decision(run, which)  # the evaluation of this checkpoint, read once
    try:
        pre = Preprocessing.from_data_config(run.data_config)
    except ValueError as exc:
        raise ExportError(f"cannot export: {exc}") from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    images = _verification_images(run, pre, MAX_VERIFY_IMAGES)
    emit(1, cancel)
    ref = unfamiliar.build(run, cancel)
    emit(2, cancel)
    result, temps = None, []
    try:
        fp32_tmp, fp32_meta = _export_fp32(run, pre, images, which, out, temps, ref, unfamiliar_action)
        emit(3, cancel)
        reference = _torch_outputs(run, images, ref)
        figures = _verify(fp32_tmp, images, reference, "fp32", providers)
        if not figures["passed"]:
            raise ExportError(f"export refused: ONNX and PyTorch disagree: {verify.summary(figures)}")
        emit(4, cancel)
        variants, refused = _variants(run, pre, images, reference, which, out, fp32_tmp, wanted[1:], temps,
                                      providers, lambda i: emit(4 + i, cancel), (ref, unfamiliar_action))
        if len(wanted) > 1:
            figures["test_accuracy"] = variants.pop("_accuracy")
        result = _finalise(fp32_tmp, out, figures, fp32_meta)
        _remove_stale_variants(out, wanted)
        for name, (tmp, vfig, meta) in variants.items():
            vfig["test_accuracy"] = figures["test_accuracy"]
            result.variants[name] = _finalise(tmp, variant_path(out, name), vfig, meta)
        emit(steps, cancel)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
    if refused:
        raise ExportError(f"{out.name} exported and verified, but refused {'; '.join(refused)}")
    return result


def _progress(callback: Callable | None, total: int) -> Callable[[int, CancelToken | None], None]:
    def emit(done: int, cancel: CancelToken | None) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        if callback is not None:
            callback(Progress("export", done, total))
    return emit


def _export_fp32(run, pre, images: _Images, which: str, out: Path, temps: list[Path],
                 ref: unfamiliar.Reference, action: str) -> tuple[Path, dict]:
    from tl_desktop.core.models.onnx_tools import export_module

    tmp = _temp_onnx(out)
    temps.append(tmp)
    wrapped = _wrapped(run.model, _temperature(run), ref, multilabel.is_multilabel(run.config))
    export_module(wrapped, images.torch_batch[:2], tmp,
                  output_names=OUTPUT_NAMES, input_name="input")
    meta = _metadata(run, pre, "fp32", which, ref, action)
    _finish_model(tmp, meta)
    _check(tmp)
    return tmp, meta


def _torch_outputs(run, images: _Images, ref: unfamiliar.Reference) -> dict[str, Any]:
    """PyTorch's probabilities, features and scores on the verification images, and its scores on the probes."""
    import torch

    wrapped = _wrapped(run.model, _temperature(run), ref, multilabel.is_multilabel(run.config))
    with torch.inference_mode():
        _, probs, features, score = (t.numpy() for t in wrapped(images.torch_batch))
        probe_score = wrapped(torch.from_numpy(images.probe))[3].numpy()
    return {"probabilities": probs, "features": features, "score": score, "probe_score": probe_score,
            "threshold": ref.threshold, "cut": _cut(run)}


def _variants(run, pre, images, reference, which, out, fp32_tmp, names, temps, providers, step, unfamiliar_rule):
    """Build and verify each variant; returns ({name: (tmp, figures, meta), "_accuracy": ...}, refusals)."""
    built: dict[str, Any] = {}
    refused: list[str] = []
    for i, name in enumerate(names):
        tmp = _temp_onnx(out)
        temps.append(tmp)
        MAKERS[name](fp32_tmp, tmp)
        meta = _metadata(run, pre, name, which, *unfamiliar_rule)
        _finish_model(tmp, meta)
        _check(tmp)
        figures = _verify(tmp, images, reference, name, providers)
        step(2 * i + 1)
        if figures["passed"]:
            built[name] = (tmp, figures, meta)
        else:
            refused.append(f"the {name} variant: {verify.summary(figures)}")
    if names:
        accuracy = verify.split_accuracy(run, pre, {"fp32": fp32_tmp, **{n: v[0] for n, v in built.items()}},
                                         providers, _cut(run))
        for name, (_, figures, _) in built.items():
            figures["test_accuracy_change"] = (
                None if accuracy[name]["accuracy"] is None
                else accuracy[name]["accuracy"] - accuracy["fp32"]["accuracy"])
        built["_accuracy"] = accuracy
        step(2 * len(names))
    return built, refused
