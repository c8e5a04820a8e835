"""Offline prediction with an exported ``.onnx`` file and nothing else.

The file's ``metadata_props`` (written by ``core/export.py``) say how to preprocess: the same steps as timm's
evaluation transform, re-implemented here with PIL and numpy so that inference needs neither torch nor timm:

1. resize the shorter side to ``resize_size = floor(input_size / crop_pct)`` with PIL (``crop_mode`` "center"),
   or both sides to ``resize_size`` ("squash");
2. centre crop to ``input_size`` with torchvision's rounding (``int(round((h - th) / 2.0))``);
3. scale 0..255 to 0..1, subtract ``mean``, divide by ``std`` (float32), lay out as RGB, NCHW.

Files exported with an unfamiliar-image reference also give each image its ``unfamiliarity`` (an output of the
graph) and ``unfamiliar`` (above the file's ``unfamiliar_threshold``); with ``unfamiliar_action`` "not sure" such an
image's decision is "not sure". Older files give None for both.

A multi-label file (metadata ``task`` = ``multi-label``, see ``multilabel``) gives each image its ``findings``:
the findings whose probability is at or above their threshold, most probable first (the rule of the run's
evaluation, ``evaluation.multilabel.predicted_findings``), an empty list for "no finding"; single-label files
give ``findings`` None.

Decoding and preprocessing of the next batch run in a thread pool while onnxruntime runs the current one.
This module must not import torch (tests check it): a lab script or a frozen bundle can use it alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tl_desktop.core.data.decode import is_candidate, load_image
from tl_desktop.core.errors import PredictorError
from tl_desktop.core.events import CancelToken, Progress
from tl_desktop.core.export.model_checks import check_model
from tl_desktop.core.models.preprocessing import Preprocessing

METADATA_FORMAT = "1"
NO_FINDING = "no finding"  # a multi-label image without any finding at or above its threshold


# --- results ---------------------------------------------------------------------------------------------

@dataclass
class Prediction:
    """One file's answer: the top-k (label, probability), all probabilities, or a one-line error; whether the
    image is unlike the model's training images (None when the model file has no such reference); for a
    multi-label model the (finding, probability) at or above their thresholds, most probable first."""

    path: str
    top: list[tuple[str, float]] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    error: str | None = None
    decision: str | None = None  # set when the model carries a decision/abstain threshold; may be "not sure"
    unfamiliar: bool | None = None
    unfamiliarity: float | None = None
    findings: list[tuple[str, float]] | None = None  # multi-label models only; [] = no finding

    @property
    def label(self) -> str | None:
        """The answer: the decision when set ("not sure"), else a multi-label image's findings (``a;b``, or
        "no finding"), else the most probable class."""
        if self.decision is not None:
            return self.decision
        if self.findings is not None and not self.error:
            return self.findings_text or NO_FINDING
        return self.top[0][0] if self.top else None

    @property
    def findings_text(self) -> str | None:
        """A multi-label image's findings as ``a;b`` in name order, like a manifest's labels ("" for none);
        None for a single-label model. (``findings`` keeps them most probable first.)"""
        return None if self.findings is None else ";".join(sorted(name for name, _ in self.findings))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["top"] = [{"label": label, "probability": p} for label, p in self.top]
        if self.findings is None:
            data.pop("findings")
        else:
            data["findings"] = [{"label": label, "probability": p} for label, p in self.findings]
        return data


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given (in order); folders replaced by their image files, recursively, sorted, hidden skipped."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.is_file() and is_candidate(p)  # DICOM without suffix too
                     and not any(part.startswith(".") for part in p.relative_to(path).parts)]
            out.extend(sorted(found))
        else:
            out.append(path)
    return out


# --- the predictor ---------------------------------------------------------------------------------------

def default_providers() -> list[str]:
    """CUDA when this onnxruntime build has it, always CPU as the fallback."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def open_session(path: Path, providers: Sequence[str] | None = None):
    """An onnxruntime session on every core, quiet about graph-optimisation notes."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    available = set(ort.get_available_providers())
    chosen = [p for p in (providers or default_providers()) if p in available] or ["CPUExecutionProvider"]
    return ort.InferenceSession(str(path), sess_options=options, providers=chosen)


class OnnxPredictor:
    """Classify images with a tl-desktop ``.onnx`` file; needs nothing but the file.

    Raises:
        PredictorError: the file is missing, damaged or truncated, or was not exported by tl-desktop.
    """

    def __init__(self, path: Path | str, providers: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise PredictorError(f"{self.path.name}: no such model file")
        try:
            self.session = open_session(self.path, providers)
        except Exception as exc:  # noqa: BLE001 - protobuf/graph errors of every kind
            raise PredictorError(f"{self.path.name} is not a readable ONNX model (damaged or truncated file?): "
                                 f"{_first_line(exc)}") from exc
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        facts = check_model(self.session, self.path.name)
        self.class_names: list[str] = facts.class_names
        self.preprocessing: Preprocessing = facts.preprocessing
        self.input_name = facts.input_name
        self.fixed_batch = facts.fixed_batch
        self.providers: list[str] = list(self.session.get_providers())
        self.decision_rule = facts.decision_rule
        self.unfamiliar_rule = facts.unfamiliar
        self.task: str = facts.task
        self.thresholds: dict[str, float] | None = facts.thresholds  # multi-label: one per finding
        self._outputs = ["probabilities"] + (["unfamiliarity"] if self.unfamiliar_rule is not None else [])

    @property
    def multilabel(self) -> bool:
        """Several findings per image, each present at or above its threshold (``thresholds``)."""
        return self.thresholds is not None

    def summary(self) -> ModelSummary:
        """What the model answers, for a window to show before it predicts."""
        return ModelSummary(list(self.class_names), self.task, dict(self.thresholds) if self.thresholds else None)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (n, classes) for a ready float32 batch (n, 3, H, W); a graph with a fixed batch size
        is fed in chunks of that size (the last one padded)."""
        return self.run_outputs(batch)[0]

    def run_outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        """Probabilities and, when the file has its reference, the unfamiliarity (n,) of a ready batch."""
        if self.fixed_batch is None:
            return self.session.run(self._outputs, {self.input_name: batch})
        n, size = len(batch), self.fixed_batch
        padded = np.concatenate([batch, np.zeros((-n % size, *batch.shape[1:]), batch.dtype)])
        parts = [self.session.run(self._outputs, {self.input_name: padded[i: i + size]})
                 for i in range(0, len(padded), size)]
        return [np.concatenate([part[j] for part in parts])[:n] for j in range(len(self._outputs))]

    def load(self, path: Path) -> np.ndarray:
        """Decode and preprocess one file (raises ImageDecodeError / OSError)."""
        return self.preprocessing(load_image(path))

    def predict(self, paths: Iterable[str | Path], top_k: int = 3, batch_size: int = 32, *,
                callback=None, cancel: CancelToken | None = None) -> list[Prediction]:
        """Predict files and folders (expanded recursively); unreadable files get ``error``, never abort."""
        return list(self.iter_predict(paths, top_k, batch_size, callback=callback, cancel=cancel))

    def iter_predict(self, paths: Iterable[str | Path], top_k: int = 3, batch_size: int = 32, *,
                     callback=None, cancel: CancelToken | None = None) -> Iterator[Prediction]:
        """Like ``predict`` but yields each batch's results as soon as they are ready."""
        files = expand_paths(paths)
        batches = [files[i: i + batch_size] for i in range(0, len(files), max(1, batch_size))]
        workers = max(2, min(8, os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tl-decode") as pool:
            pending = [pool.submit(self._safe_load, p) for p in batches[0]] if batches else []
            done = 0
            for index, batch in enumerate(batches):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                current = pending
                pending = [pool.submit(self._safe_load, p) for p in batches[index + 1]] \
                    if index + 1 < len(batches) else []
                yield from self._finish_batch(batch, current, top_k)
                done += len(batch)
                if callback is not None:
                    callback(Progress("predict", done, len(files)))

    def _safe_load(self, path: Path) -> np.ndarray | str:
        try:
            return self.load(path)
        except FileNotFoundError:
            return "no such file"
        except IsADirectoryError:
            return "is a folder"
        except Exception as exc:  # noqa: BLE001 - one bad file must never stop the batch
            return _first_line(exc)

    def _finish_batch(self, batch: list[Path], futures: list[Future], top_k: int) -> Iterator[Prediction]:
        loaded = [f.result() for f in futures]
        ready = [i for i, item in enumerate(loaded) if isinstance(item, np.ndarray)]
        outputs = self.run_outputs(np.stack([loaded[i] for i in ready])) if ready else [
            np.zeros((0, len(self.class_names))), np.zeros(0)]
        by_index = dict(zip(ready, outputs[0], strict=True))
        scores = dict(zip(ready, outputs[1], strict=True)) if len(outputs) > 1 else {}
        k = max(1, min(top_k, len(self.class_names)))
        for i, path in enumerate(batch):
            if i not in by_index:
                yield Prediction(str(path), error=str(loaded[i]))
                continue
            p = by_index[i].astype(float)
            score = float(scores[i]) if i in scores else None
            if not np.all(np.isfinite(p)) or (score is not None and not np.isfinite(score)):
                yield Prediction(str(path), error="the model gave no valid probabilities (NaN or infinite) "
                                                  "for this image: the model file is broken")
                continue
            order = np.argsort(-p, kind="stable")[:k]
            yield self._unfamiliar(Prediction(str(path), [(self.class_names[j], float(p[j])) for j in order],
                                              p.tolist(), decision=self._decide(p), findings=self._findings(p)),
                                   score)

    def _unfamiliar(self, prediction: Prediction, score: float | None) -> Prediction:
        """Mark an image above the file's threshold; under the "not sure" action its decision is "not sure"."""
        rule = self.unfamiliar_rule
        if rule is None or score is None:
            return prediction
        prediction.unfamiliarity = score
        prediction.unfamiliar = score > rule.threshold
        if prediction.unfamiliar and rule.action == "not sure":
            from tl_desktop.core.evaluation.statistics import NOT_SURE

            prediction.decision = NOT_SURE
        return prediction

    def _findings(self, p: np.ndarray) -> list[tuple[str, float]] | None:
        """A multi-label image's findings at the file's thresholds (the evaluation's own rule); None otherwise."""
        if self.thresholds is None:
            return None
        from tl_desktop.core.evaluation.multilabel import predicted_findings

        return predicted_findings(p, self.class_names, self.thresholds)

    def _decide(self, p: np.ndarray) -> str | None:
        """The label under the exported decision/abstain thresholds, or None when the file has neither."""
        if self.decision_rule is None:
            return None
        from tl_desktop.core.evaluation.statistics import NOT_SURE, decide

        index = int(decide(p[None, :], **self.decision_rule)[0])
        return NOT_SURE if index < 0 else self.class_names[index]


@dataclass(frozen=True)
class ModelSummary:
    """An opened model's class (finding) names, its task and, for a multi-label model, its thresholds."""

    class_names: list[str]
    task: str
    thresholds: dict[str, float] | None = None

    @property
    def multilabel(self) -> bool:
        return self.thresholds is not None


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."
