"""ONNX export of a run, verified against PyTorch on the run's own images at every export.

The exported graph has one input ``input`` (float32, N x 3 x H x W, dynamic batch) and two outputs, ``logits``
and ``probabilities`` (softmax of logits / temperature), and carries everything a consumer needs in its
``metadata_props`` (see ``inference.Preprocessing.to_metadata`` and ``_metadata``). The file is written to a
temporary name, checked, compared with PyTorch, and only then moved into place; the figures go to
``<name>.verification.json`` next to it. Optional fp16 and int8 variants are written beside it
(``<name>.fp16.onnx``, ``<name>.int8.onnx``), each re-verified with its own stated tolerance.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tl_desktop import __version__
from tl_desktop.core import runs
from tl_desktop.core.events import CancelToken, Progress
from tl_desktop.core.export.predictor import METADATA_FORMAT, open_session
from tl_desktop.core.fsutil import atomic_write_json
from tl_desktop.core.models import run_model
from tl_desktop.core.models.preprocessing import Preprocessing

MAX_VERIFY_IMAGES = 64
MAX_ACCURACY_IMAGES = 2000
# What each precision must meet against PyTorch on the verification images.
TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"max_abs_diff": 1e-4, "top1_agreement": 1.0},
    "fp16": {"max_abs_diff": 1e-2, "top1_agreement": 0.98},
    "int8": {"top1_agreement": 0.95},
}


class ExportError(RuntimeError):
    """Export refused (unverifiable or outside tolerance, unusable run); ``str()`` is one readable line."""


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


def variant_path(out: Path, precision: str) -> Path:
    return out if precision == "fp32" else out.with_name(f"{out.stem}.{precision}{out.suffix}")


def verification_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.verification.json")


# --- the model with its two outputs ----------------------------------------------------------------------

def _wrapped(model, temperature: float):
    import torch

    class Classifier(torch.nn.Module):
        """logits and softmax(logits / temperature): what every consumer of the file gets."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x):
            logits = self.model(x)
            return logits, torch.softmax(logits / temperature, dim=1)

    return Classifier().eval()


# --- images ----------------------------------------------------------------------------------------------

def _readable(files: list[tuple[Path, str]], limit: int) -> Iterator[tuple[Any, str]]:
    from tl_desktop.core.data.decode import load_image

    for path, label in files:
        if limit <= 0:
            return
        try:
            image = load_image(path)
        except Exception:  # noqa: BLE001 - moved or damaged files are skipped and counted
            continue
        limit -= 1
        yield image, label


def _verification_images(run: run_model.LoadedRun, pre: Preprocessing, limit: int) -> _Images:
    import torch

    from tl_desktop.core.models.catalog import eval_transform

    transform = eval_transform(run.data_config)
    for subset in ("val", "test", "train"):
        files = run.files(subset)
        images = [image for image, _ in _readable(files, limit)]
        if images:
            tensors = torch.stack([transform(im) for im in images])
            arrays = np.stack([pre(im) for im in images])
            return _Images(subset, tensors, arrays, min(len(files), limit) - len(images))
    raise ExportError(f"cannot verify the export: none of the run's images can be read under {run.root} "
                      "(moved or deleted?)")


# --- metadata --------------------------------------------------------------------------------------------

def _metadata(run: run_model.LoadedRun, pre: Preprocessing, precision: str, which: str) -> dict[str, str]:
    config = run.config
    meta = {
        "tl_desktop_format": METADATA_FORMAT,
        "class_names": json.dumps(run.class_names, ensure_ascii=False),
        **pre.to_metadata(),
        "input_name": "input",
        "outputs": "logits (N, classes); probabilities (N, classes) = softmax(logits / temperature), "
                   "columns in class_names order",
        **_decision(run),
        "precision": precision,
        "model_name": str(config["model"]),
        "weights_source": str(config.get("weights_source", "unknown")),
        "strategy": str(config.get("strategy", "unknown")),
        "checkpoint": which,
        "app": "tl-desktop",
        "app_version": __version__,
        "created_utc": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "training_manifest_sha256": runs.manifest_hash(run.run_dir),
    }
    _refuse_paths(meta, run)
    return meta


def _decision(run: run_model.LoadedRun) -> dict[str, str]:
    """Temperature, and positive class / decision / abstain thresholds when chosen in the clinical evaluation.

    Read once per export and kept with the loaded run: the model, its verification and its metadata must all
    use the same values even if clinical.json is written while the export runs.
    """
    from tl_desktop.core.evaluation.run_evaluation import decision_metadata

    if run.decision is None:
        run.decision = decision_metadata(run.run_dir, run.config)
    return run.decision


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


# --- comparison ------------------------------------------------------------------------------------------

def _compare(reference: np.ndarray, got: np.ndarray) -> dict[str, float]:
    return {"max_abs_diff": float(np.abs(reference - got).max()),
            "top1_agreement": float((reference.argmax(1) == got.argmax(1)).mean())}


def _verify(path: Path, images: _Images, torch_probs: np.ndarray, precision: str,
            providers: list[str] | None) -> dict[str, Any]:
    session = open_session(path, providers)

    def run(batch: np.ndarray) -> np.ndarray:
        return np.concatenate([session.run(["probabilities"], {"input": batch[i: i + 32]})[0]
                               for i in range(0, len(batch), 32)])

    model_only = _compare(torch_probs, run(images.torch_batch.numpy()))
    end_to_end = _compare(torch_probs, run(images.app_batch))
    tol = TOLERANCES[precision]
    figures = {
        "precision": precision,
        "tolerance": tol,
        "max_abs_diff": max(model_only["max_abs_diff"], end_to_end["max_abs_diff"]),
        "top1_agreement": min(model_only["top1_agreement"], end_to_end["top1_agreement"]),
        "model_only": model_only,
        "with_app_preprocessing": end_to_end,
        "preprocessing_max_abs_diff": float(np.abs(images.torch_batch.numpy() - images.app_batch).max()),
        "n_images": len(images.app_batch),
        "images_from": images.subset,
        "unreadable_skipped": images.skipped,
        "providers": list(session.get_providers()),
    }
    figures["passed"] = (figures["max_abs_diff"] <= tol.get("max_abs_diff", np.inf)
                         and figures["top1_agreement"] >= tol["top1_agreement"])
    return figures


def _test_accuracy(run: run_model.LoadedRun, pre: Preprocessing, paths: dict[str, Path],
                   providers: list[str] | None) -> dict[str, Any]:
    """Accuracy of each file on the test split (falls back to val) and its top-1 agreement with fp32."""
    subset = "test" if run.files("test") else "val"
    files = run.files(subset)[:MAX_ACCURACY_IMAGES]
    sessions = {name: open_session(p, providers) for name, p in paths.items()}
    index = {name: i for i, name in enumerate(run.class_names)}
    preds: dict[str, list[np.ndarray]] = {name: [] for name in sessions}
    labels: list[int] = []
    images = list(_readable(files, len(files)))
    for start in range(0, len(images), 32):
        chunk = images[start: start + 32]
        batch = np.stack([pre(im) for im, _ in chunk])
        labels.extend(index.get(label, -1) for _, label in chunk)
        for name, session in sessions.items():
            preds[name].append(session.run(["probabilities"], {"input": batch})[0].argmax(1))
    y = np.asarray(labels)
    top1 = {name: np.concatenate(p) if p else np.zeros(0, int) for name, p in preds.items()}
    out: dict[str, Any] = {"subset": subset, "n_images": int(y.size)}
    for name, pred in top1.items():
        out[name] = {"accuracy": float((pred == y).mean()) if y.size else None,
                     "top1_agreement_with_fp32": float((pred == top1["fp32"]).mean()) if y.size else None}
    return out


# --- variants --------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """onnxruntime's quantiser logs advice on the root logger and prints calibration notes."""
    class Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "onnxruntime" not in record.pathname

    root = logging.getLogger()
    dropper = Drop()
    root.addFilter(dropper)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.removeFilter(dropper)


def _make_fp16(src: Path, dst: Path) -> None:
    """Float16 weights and activations; float32 input and outputs so callers need no change."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    with _quiet_quantizer():
        model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
        wrapper = OnnxModel(model)
        wrapper.topological_sort()  # the converter appends its input casts at the end of the node list
    onnx.save(wrapper.model, str(dst))


def _make_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 weights (no calibration data needed).

    Depthwise convolutions and the stem stay in float32: quantised per tensor they wreck the accuracy of
    EfficientNet/MobileNet-style nets (measured in docs/benchmarks.md), while the pointwise convolutions
    and the head hold almost all the weights.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src)).graph
    convs = [n for n in graph.node if n.op_type == "Conv"]
    keep_float = [n.name for n in convs[:1]] + [
        n.name for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)]
    with _quiet_quantizer():
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8, nodes_to_exclude=keep_float)


_MAKERS: dict[str, Callable[[Path, Path], None]] = {"fp16": _make_fp16, "int8": _make_int8}


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


def _summary(figures: dict[str, Any]) -> str:
    return (f"max |dp| {figures['max_abs_diff']:.2e} (limit {figures['tolerance'].get('max_abs_diff', 'none')}), "
            f"top-1 agreement {figures['top1_agreement']:.3f} (limit {figures['tolerance']['top1_agreement']}) "
            f"on {figures['n_images']} {figures['images_from']} images")


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
                providers: list[str] | None = None) -> ExportResult:
    """Export a run's model to ``out`` (.onnx), verify it, and optionally write fp16/int8 variants beside it.

    Raises:
        ExportError: the run cannot be exported, or a file fails verification (the figures are in the
            message; a refused file is not left on disk, already verified ones are kept).
        RunError: the run folder is missing or damaged.
    """
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ExportError(f"{out.name}: the output file must end in .onnx")
    wanted = ["fp32"] + [name for name, on in (("fp16", fp16), ("int8", int8)) if on]
    steps = 4 + 2 * (len(wanted) - 1)
    emit = _progress(callback, steps)

    run = run_model.load_run(run_dir, which)
    try:
        pre = Preprocessing.from_data_config(run.data_config)
    except ValueError as exc:
        raise ExportError(f"cannot export: {exc}") from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    images = _verification_images(run, pre, MAX_VERIFY_IMAGES)
    emit(1, cancel)
    result, temps = None, []
    try:
        fp32_tmp, fp32_meta = _export_fp32(run, pre, images, which, out, temps)
        emit(2, cancel)
        reference = _torch_probs(run, images)
        figures = _verify(fp32_tmp, images, reference, "fp32", providers)
        if not figures["passed"]:
            raise ExportError(f"export refused: ONNX and PyTorch disagree: {_summary(figures)}")
        emit(3, cancel)
        variants, refused = _variants(run, pre, images, reference, which, out, fp32_tmp, wanted[1:],
                                      temps, providers, lambda i: emit(3 + i, cancel))
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


def _export_fp32(run, pre, images: _Images, which: str, out: Path, temps: list[Path]) -> tuple[Path, dict]:
    from tl_desktop.core.models.onnx_tools import export_module

    tmp = _temp_onnx(out)
    temps.append(tmp)
    temperature = float(_decision(run)["temperature"])
    export_module(_wrapped(run.model, temperature), images.torch_batch[:2], tmp,
                  output_names=["logits", "probabilities"], input_name="input")
    meta = _metadata(run, pre, "fp32", which)
    _finish_model(tmp, meta)
    _check(tmp)
    return tmp, meta


def _torch_probs(run, images: _Images) -> np.ndarray:
    import torch

    temperature = float(_decision(run)["temperature"])
    with torch.inference_mode():
        return _wrapped(run.model, temperature)(images.torch_batch)[1].numpy()


def _variants(run, pre, images, reference, which, out, fp32_tmp, names, temps, providers, step):
    """Build and verify each variant; returns ({name: (tmp, figures, meta), "_accuracy": ...}, refusals)."""
    built: dict[str, Any] = {}
    refused: list[str] = []
    for i, name in enumerate(names):
        tmp = _temp_onnx(out)
        temps.append(tmp)
        _MAKERS[name](fp32_tmp, tmp)
        meta = _metadata(run, pre, name, which)
        _finish_model(tmp, meta)
        _check(tmp)
        figures = _verify(tmp, images, reference, name, providers)
        step(2 * i + 1)
        if figures["passed"]:
            built[name] = (tmp, figures, meta)
        else:
            refused.append(f"the {name} variant: {_summary(figures)}")
    if names:
        accuracy = _test_accuracy(run, pre, {"fp32": fp32_tmp, **{n: v[0] for n, v in built.items()}}, providers)
        for name, (_, figures, _) in built.items():
            figures["test_accuracy_change"] = (
                None if accuracy[name]["accuracy"] is None
                else accuracy[name]["accuracy"] - accuracy["fp32"]["accuracy"])
        built["_accuracy"] = accuracy
        step(2 * len(names))
    return built, refused
