"""The clinical evaluation of a run folder, stored as ``RUN_DIR/clinical.json``.

This file is the run's one evaluation artefact: every figure the window, the report, the CLI and the export show
is computed from its stored per-image predictions (``stored_result``), never from ``metrics.json``.

``evaluate_clinical(run_dir, which="best")`` runs the named checkpoint on the validation and test splits
(evaluation transform, CPU), stores the per-image logits with the checkpoint it evaluated (``checkpoint``: which,
epoch, SHA-256 of the file) and the SHA-256 of the test files in the manifest (``test_manifest_sha256``), fits the
temperature on the validation split and reports every figure on the test split. ``current.stale_reason``
compares those hashes with the run folder. The decision rule (``decision``): none for more than two classes
(the most probable class), a suggested operating point for two, a user's choice when asked for; only the user's
goes into an export. ``set_decision`` records the user's choice afterwards (the GUI's "Use this operating
point"), and ``decision_metadata`` is what the ONNX export carries, so the exported model decides exactly as the
user chose. The best checkpoint's artefact is ``clinical.json``, the last one's ``clinical_last.json``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tl_desktop.core import runs
from tl_desktop.core.config import RunConfig
from tl_desktop.core.errors import ClinicalError
from tl_desktop.core.evaluation import decision, multilabel_run
from tl_desktop.core.evaluation import statistics as clinical
from tl_desktop.core.evaluation import subgroups as subgroup_figures
from tl_desktop.core.events import CancelToken, Notice, Progress
from tl_desktop.core.fsutil import atomic_write_json, read_json
from tl_desktop.core.models import run_model
from tl_desktop.core.runlock import locking

CLINICAL_FILE = "clinical.json"
FORMAT = 3  # 2: the checkpoint's SHA-256 and the test manifest hash; 3: the decision's source (``decision``)
CHECKPOINTS = ("best", "last")


def clinical_path(run_dir: Path | str, which: str = "best") -> Path:
    """Where the evaluation of checkpoint ``which`` lives: ``clinical.json`` (best), ``clinical_last.json``."""
    if which not in CHECKPOINTS:
        raise ValueError(f"unknown checkpoint '{which}'")
    return Path(run_dir) / (CLINICAL_FILE if which == "best" else f"clinical_{which}.json")


def load_clinical(run_dir: Path | str, which: str = "best") -> dict[str, Any] | None:
    """The stored evaluation of checkpoint ``which``, or None when the run has none yet (current or not)."""
    path = clinical_path(run_dir, which)
    return decision.upgrade(read_json(path)) if path.is_file() else None


def test_manifest_hash(manifest: dict[str, Any]) -> str:
    """SHA-256 over (path, label, sha256) of the manifest's test files: changes when any test image does."""
    return runs.files_digest([f for f in manifest["files"] if f["subset"] == "test"])


def checkpoint_label(data: dict[str, Any] | None) -> str:
    """Which checkpoint an evaluation belongs to, in words: "best checkpoint, epoch 7, sha256 1a2b3c4d"."""
    info = (data or {}).get("checkpoint") or {}
    if not info.get("sha256"):
        return "checkpoint not recorded (evaluated by an earlier version)"
    epoch = f", epoch {info['epoch']}" if info.get("epoch") is not None else ""
    return f"{info.get('which', 'best')} checkpoint{epoch}, sha256 {info['sha256'][:8]}"


def _checkpoint_info(run_dir: Path, which: str) -> dict[str, Any]:
    """Which checkpoint, its epoch and the SHA-256 of its file now."""
    sidecar = run_dir / "checkpoints" / f"{which}.json"
    epoch = read_json(sidecar).get("epoch") if sidecar.is_file() else None
    return {"which": which, "epoch": epoch, "sha256": runs.checkpoint_sha256(run_dir, which)}


# --- logits ----------------------------------------------------------------------------------------------

def run_logits(loaded: run_model.LoadedRun, subsets: tuple[str, ...] = ("val", "test"),
               callback: Callable | None = None, cancel: CancelToken | None = None) -> dict[str, dict[str, Any]]:
    """Logits of the run's model on its subsets: ``{subset: {"paths" (relative), "labels", "logits"}}``."""
    from tl_desktop.core.evaluation.predict import predict_files

    emit = callback or (lambda event: None)
    cancel = cancel or CancelToken()
    index = {name: i for i, name in enumerate(loaded.class_names)}
    multi = loaded.config.task == multilabel_run.TASK
    out = {}
    for subset in subsets:
        rows = [f for f in loaded.manifest["files"] if f["subset"] == subset]
        emit(Progress(f"predicting {subset}", 0, len(rows)))
        targets = multilabel_run.targets(rows, loaded.class_names) if multi else [index[f["label"]] for f in rows]
        logits, labels = predict_files(loaded.model, loaded.data_config, [loaded.root / f["path"] for f in rows],
                                       targets, callback=emit, cancel=cancel)
        emit(Progress(f"predicting {subset}", len(rows), len(rows)))
        out[subset] = {"paths": [f["path"] for f in rows], "labels": labels.astype(int).tolist(),
                       "logits": np.round(logits.astype(np.float64), 6).tolist()}
    return out


# --- the evaluation --------------------------------------------------------------------------------------

def _probs(preds: dict[str, Any], temperature: float) -> tuple[np.ndarray, np.ndarray]:
    logits = np.asarray(preds["logits"], dtype=np.float64).reshape(len(preds["labels"]), -1)
    return np.asarray(preds["labels"], dtype=int), clinical.softmax(logits, temperature) if len(logits) else logits


def _test_groups(loaded, predictions: dict[str, Any]) -> np.ndarray | None:
    """The patient (group) of each test image when the run's split was grouped; None otherwise."""
    return clinical.case_groups(predictions["paths"], (loaded.manifest.get("split") or {}).get("groups"))


@locking("evaluating")
def evaluate_clinical(run_dir: Path | str, *, which: str = "best", positive_class: str | None = None,
                      threshold_method: str | None = None,
                      target: float | None = None, abstain_threshold: float | None = None,
                      abstain_accuracy: float | None = None, n_boot: int = 1000, seed: int = 0, n_bins: int = 10,
                      subgroups: Sequence[str] = (), callback: Callable | None = None,
                      cancel: CancelToken | None = None) -> dict[str, Any]:
    """Compute the clinical evaluation of a finished run and write ``clinical.json``.

    Args:
        which: the checkpoint to evaluate, ``best`` or ``last``.
        positive_class: the class of interest the user chose; with ``threshold_method`` the user's operating
            point (the one an export carries). Neither: no decision rule for more than two classes, a
            suggested one for two (``decision.suggest``, not exported until the user accepts it).
        threshold_method, target: see ``clinical.pick_threshold`` (default "youden" once a class is chosen);
            applied to the validation split's temperature-scaled probability of the class of interest.
        abstain_threshold: answer "not sure" below this top probability; or ``abstain_accuracy``: the lowest
            threshold whose answered validation cases reach that accuracy.
        n_boot, seed: bootstrap resamples and seed of the AUC intervals.
        subgroups: attributes of the test images to break the figures down by (``subgroups``), stored as
            ``result["subgroups"]``; one that cannot be used leaves a warning, not an error (it is carried over
            from an earlier evaluation: ``set_subgroups`` is where a user's choice is refused).

    Raises:
        ClinicalError: no test images, an unknown class, a threshold without a class of interest for more
            than two classes, or the checkpoint changed while it was
            evaluated (training is writing it). RunError: damaged run folder.
    """
    emit = callback or (lambda event: None)
    path = clinical_path(run_dir, which)
    checkpoint = _checkpoint_info(Path(run_dir), which)
    loaded = run_model.load_run(run_dir, which)
    names = loaded.class_names
    if positive_class is not None and positive_class not in names:
        raise ClinicalError(f"unknown positive class '{positive_class}'; the classes are {', '.join(names)}")
    if positive_class is None and threshold_method is not None and len(names) > 2:
        raise ClinicalError(f"a threshold needs a class of interest when there are {len(names)} classes: name "
                            f"one of {', '.join(names)}")
    if not loaded.files("test"):
        raise ClinicalError("the run has no test images: a clinical evaluation needs a test split")
    preds = run_logits(loaded, ("val", "test"), emit, cancel)
    if runs.checkpoint_sha256(run_dir, which) != checkpoint["sha256"]:
        raise ClinicalError(f"the {which} checkpoint changed while it was evaluated (is the run training?); "
                            "evaluate again when training has ended")
    warnings: list[str] = []
    if loaded.config.task == multilabel_run.TASK:
        result = _multilabel_result(loaded, preds, checkpoint, n_boot, seed, warnings)
        atomic_write_json(path, result)
        for message in result["warnings"]:
            emit(Notice(message))
        return result
    temperature = _temperature(preds["val"], warnings)
    result = {
        "format": FORMAT, "class_names": names, "task": decision.task_of(names), "n": {s: len(p["labels"]) for s, p in preds.items()},
        "checkpoint": checkpoint, "test_manifest_sha256": test_manifest_hash(loaded.manifest),
        "computed_utc": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "temperature": temperature, "temperature_fitted_on": "val",
        "bootstrap": {"n_boot": n_boot, "seed": seed, "level": 0.95, "method": "stratified percentile"},
        "n_bins": n_bins, "predictions": preds, "warnings": warnings,
        "calibration": _calibration(preds, temperature, n_bins),
    }
    y_test, p_test = _probs(preds["test"], temperature)
    result["curves"] = clinical.one_vs_rest(y_test, p_test, names, n_boot=n_boot, seed=seed,
                                            groups=_test_groups(loaded, preds["test"]))
    _decide(result, loaded.config.train_counts, positive_class, threshold_method, target, abstain_threshold,
            abstain_accuracy)
    if subgroups:
        try:
            chosen = subgroup_figures.attribute_values(run_dir, subgroups, preds["test"]["paths"])
            subgroup_figures.attach(result, chosen, _test_groups(loaded, preds["test"]))
        except ClinicalError as exc:  # the evaluation stands; only the breakdown is missing, and it says why
            warnings.append(f"subgroups not computed: {exc}")
    _interval_warnings(result)
    atomic_write_json(path, result)
    for message in result["warnings"]:
        emit(Notice(message))
    return result


def _multilabel_result(loaded, preds: dict[str, Any], checkpoint: dict[str, Any], n_boot: int, seed: int,
                       warnings: list[str]) -> dict[str, Any]:
    """The evaluation of a multi-label run (``multilabel_run``): per-finding thresholds from validation, test
    figures at them; no temperature, no single operating point (each finding has its own), no subgroups."""
    result = {
        "format": FORMAT, "class_names": loaded.class_names, "task": multilabel_run.TASK,
        "n": {s: len(p["labels"]) for s, p in preds.items()}, "checkpoint": checkpoint,
        "test_manifest_sha256": test_manifest_hash(loaded.manifest),
        "computed_utc": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "temperature": 1.0, "bootstrap": {"n_boot": n_boot, "seed": seed, "level": 0.95, "method": "percentile"},
        "predictions": preds, "decision_source": None, "abstain_threshold": None,
    }
    parts = multilabel_run.figures_of(result, _test_groups(loaded, preds["test"]))
    result["bootstrap"]["method"] = parts["multilabel"].get("bootstrap_method") or "percentile"
    result.update({k: v for k, v in parts.items() if k != "warnings"})
    result["warnings"] = warnings + parts["warnings"]
    return result


def _temperature(val: dict[str, Any], warnings: list[str]) -> float:
    """T fitted on the validation logits; 1.0 (with a warning) where it cannot be estimated."""
    y = np.asarray(val["labels"], dtype=int)
    logits = np.asarray(val["logits"], dtype=np.float64).reshape(len(y), -1)
    if len(y) < 10:
        warnings.append(f"only {len(y)} validation images: probabilities not recalibrated (temperature 1.0)")
        return 1.0
    if (logits.argmax(1) == y).all():
        # every case right: the likelihood keeps rising as T -> 0, so no finite T is supported by the data
        warnings.append("every validation image is classified correctly, so the temperature cannot be "
                        "estimated: probabilities not recalibrated (temperature 1.0)")
        return 1.0
    if len(y) < 50:
        warnings.append(f"the temperature is fitted on only {len(y)} validation images: treat the calibrated "
                        "probabilities as approximate")
    return clinical.fit_temperature(logits, y)


def _interval_warnings(result: dict[str, Any]) -> None:
    for name, entry in result["curves"].items():
        if entry is not None and entry["auc"]["low"] == entry["auc"]["high"]:
            result["warnings"].append(
                f"AUC of {name} is {entry['auc']['auc']:.3f} on {entry['auc']['n_pos']} + {entry['auc']['n_neg']} "
                "test images: the bootstrap cannot show uncertainty beyond a perfect split; more test images "
                "are needed for a meaningful interval")


def _calibration(preds: dict[str, Any], temperature: float, n_bins: int) -> dict[str, Any]:
    out = {}
    for subset, p in preds.items():
        if not p["labels"]:
            continue
        y, before = _probs(p, 1.0)
        _, after = _probs(p, temperature)
        out[subset] = {"before": clinical.reliability(y, before, n_bins),
                       "after": clinical.reliability(y, after, n_bins),
                       "nll_before": clinical.nll(np.asarray(p["logits"]), y),
                       "nll_after": clinical.nll(np.asarray(p["logits"]), y, temperature)}
    return out


def _decide(result: dict[str, Any], train_counts: dict[str, int] | None, positive_class: str | None,
            method: str | None, target: float | None, abstain_threshold: float | None,
            abstain_accuracy: float | None) -> None:
    """The suggestion (two classes), the user's operating point when asked for, and the abstain threshold."""
    result["suggestion"] = decision.suggest(result, train_counts)
    if abstain_threshold is None and abstain_accuracy is not None and result["n"]["val"]:
        y_val, p_val = _probs(result["predictions"]["val"], result["temperature"])
        abstain_threshold = clinical.abstain_threshold_for(y_val, p_val, abstain_accuracy)
        if abstain_threshold is None:
            result["warnings"].append(f"no abstain threshold reaches accuracy {abstain_accuracy:.2f} on validation")
    result["abstain_threshold"] = None if abstain_threshold is None else float(abstain_threshold)
    if positive_class is None and method is None:
        decision.set_point(result, result["suggestion"], decision.SUGGESTED)
        return
    if positive_class is None:
        positive_class, reason = result["suggestion"]["positive_class"], result["suggestion"]["positive_reason"]
    else:
        reason = "chosen by the user"
    decision.set_point(result, decision.choose_point(result, positive_class, reason, method or "youden", target),
                       decision.USER)


def set_decision(run_dir: Path | str, *, threshold: float | None = None, positive_class: str | None = None,
                 abstain_threshold: float | None | str = "keep", which: str = "best",
                 clear: bool = False) -> dict[str, Any]:
    """Record the user's operating point and/or abstain threshold in a stored evaluation.

    With ``positive_class`` and/or ``threshold`` the operating point becomes the user's explicit choice
    (``decision_source: "user"``, with the time), the one the next export carries; a missing one is taken from
    the operating point shown, so passing the suggestion's values accepts the suggestion. ``clear`` goes back to
    no rule (more than two classes) or to the suggestion (two). ``abstain_threshold=None`` removes the
    "not sure" option; ``"keep"`` leaves it. Rewrites ``clinical.json``.

    Raises:
        ClinicalError: the run has no evaluation, an unknown class, or a threshold without a class of interest.
    """
    result = load_clinical(run_dir, which)
    if result is None:
        raise ClinicalError("run the clinical evaluation first")
    if positive_class is not None and positive_class not in result["class_names"]:
        raise ClinicalError(f"unknown positive class '{positive_class}'")
    if abstain_threshold != "keep":
        result["abstain_threshold"] = None if abstain_threshold is None else float(abstain_threshold)
    if clear:
        decision.set_point(result, result.get("suggestion"), decision.SUGGESTED)
    elif positive_class is not None or threshold is not None:
        decision.set_point(result, _user_point(result, positive_class, threshold), decision.USER)
    decision.refresh_figures(result)
    subgroup_figures.refresh(result, _stored_groups(run_dir, result))
    atomic_write_json(clinical_path(run_dir, which), result)
    return result


def _stored_groups(run_dir: Path | str, result: dict[str, Any]) -> Any:
    """The patient of each stored test image when the run's split was grouped (None otherwise)."""
    split = runs.load_manifest(Path(run_dir)).get("split") or {}
    return clinical.case_groups(result["predictions"]["test"]["paths"], split.get("groups"))


def set_subgroups(run_dir: Path | str, attributes: Sequence[str], *, which: str = "best",
                  callback: Callable | None = None, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Break the stored evaluation's test figures down by ``attributes`` (none: remove the breakdown).

    The values are read for the evaluated test images (CSV columns, non-identifying DICOM tags) and stored with
    their figures in ``clinical.json`` under ``subgroups``, next to the checkpoint they belong to; the logits
    are not computed again. ``callback`` and ``cancel`` are accepted for the window's worker and not used.

    Raises:
        ClinicalError: the run has no evaluation, or an attribute is unknown, refused or identifying.
    """
    result = load_clinical(run_dir, which)
    if result is None:
        raise ClinicalError("run the clinical evaluation first")
    if attributes and result.get("task") == multilabel_run.TASK:
        raise ClinicalError("subgroup figures are computed for single-label runs only; this run has several "
                            "findings per image")
    if attributes:
        paths = result["predictions"]["test"]["paths"]
        chosen = subgroup_figures.attribute_values(run_dir, list(attributes), paths)
        subgroup_figures.attach(result, chosen, _stored_groups(run_dir, result))
    else:
        result.pop("subgroups", None)
    atomic_write_json(clinical_path(run_dir, which), result)
    return result


def _user_point(result: dict[str, Any], positive_class: str | None, threshold: float | None) -> dict[str, Any]:
    """The operating point the user set; the suggestion itself (marked accepted) when its values are passed."""
    name = positive_class or result.get("positive_class")
    value = threshold if threshold is not None else result.get("decision_threshold")
    if name is None or value is None:
        raise ClinicalError("choose a class of interest and a threshold: with more than two classes the model "
                            "answers the most probable class unless you choose both")
    suggestion = result.get("suggestion") or {}
    if suggestion.get("positive_class") == name and suggestion.get("decision_threshold") == float(value):
        return {**suggestion, "threshold_rule": {**suggestion["threshold_rule"], "accepted_by_user": True}}
    return {"positive_class": name, "decision_threshold": float(value), "positive_reason": "chosen by the user",
            "threshold_rule": {"method": "fixed", "target": float(value), "chosen_on": "user"}}


def decision_metadata(run_dir: Path | str, config: RunConfig | None = None, which: str = "best") -> dict[str, str]:
    """ONNX metadata of the evaluation: ``temperature`` always; ``evaluation``, ``evaluation_checkpoint_sha256``
    and ``evaluation_computed_utc``: the checkpoint it belongs to, and when; the decision rule's keys
    (``decision.exported_rule``) only for a rule the user chose or accepted.

    The temperature comes from the evaluation of checkpoint ``which``, else from the run config, else 1.0.
    """
    result = load_clinical(run_dir, which) or {}
    temperature = result.get("temperature") or (config.temperature if config else None) or 1.0
    meta = {"temperature": repr(float(temperature))}
    if (result.get("checkpoint") or {}).get("sha256"):
        meta["evaluation"] = checkpoint_label(result)
        meta["evaluation_checkpoint_sha256"] = result["checkpoint"]["sha256"]
        meta["evaluation_computed_utc"] = str(result.get("computed_utc", ""))
    return {**meta, **decision.exported_rule(result)}
