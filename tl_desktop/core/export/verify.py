"""How an exported file is checked against PyTorch: the tolerances, the comparison and the accuracy on a split.

``verify`` compares a file's probabilities with PyTorch's on the verification images, once fed by timm's eval
transform (the model alone) and once by the app's numpy preprocessing (what a consumer of the file does);
``split_accuracy`` measures each precision on the run's test split. The ``unfamiliarity`` output is compared too
(``UnfamiliarCheck``), on the same images and on made-up ones far from any data set (``probe_images``), so that
both sides of its threshold are checked. Neither refuses anything: they return the
figures, and ``onnx_export`` decides.

A multi-label file (``cut``: one threshold per finding) has no top-1 answer: its agreement with PyTorch is
``findings_agreement``, the share of images given the same findings at the thresholds (a decision whose PyTorch
probability lies within ``BORDERLINE`` of its threshold is counted apart, in ``borderline``, not as a
disagreement: the thresholds are chosen on validation images, so one of them sits exactly on each threshold and
float rounding alone may put it on either side), with the same limits as top-1 (``FINDINGS_AGREEMENT``); on the
split, exact-match accuracy and each finding's share of right decisions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tl_desktop.core.export.predictor import open_session

if TYPE_CHECKING:
    from tl_desktop.core.models.preprocessing import Preprocessing
    from tl_desktop.core.models.run_model import LoadedRun

MAX_ACCURACY_IMAGES = 2000
# What each precision must meet against PyTorch on the verification images: the largest difference of any
# class probability, and the share of images with the same top answer. Every precision has both: a variant
# that gives the same top answer with probabilities 0.3 apart would move any decision threshold (int8 was once
# gated on agreement alone and passed with a difference of 0.365).
TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"max_abs_diff": 1e-4, "top1_agreement": 1.0},
    "fp16": {"max_abs_diff": 1e-2, "top1_agreement": 0.98},
    "int8": {"max_abs_diff": 0.05, "top1_agreement": 0.95},
}
# The unfamiliarity score of each precision against PyTorch: the largest difference relative to the larger of
# the score and the threshold, and the share of images on the same side of the threshold (made-up probes
# included, so images far outside are checked as well as the validation images inside).
UNFAMILIAR_TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {"max_rel_diff": 1e-3, "flag_agreement": 1.0},
    "fp16": {"max_rel_diff": 0.05, "flag_agreement": 0.95},
    "int8": {"max_rel_diff": 0.25, "flag_agreement": 0.9},
}
N_PROBES = 8
# A multi-label file's share of verification images with the same findings as PyTorch, per precision.
FINDINGS_AGREEMENT: dict[str, float] = {name: tol["top1_agreement"] for name, tol in TOLERANCES.items()}
BORDERLINE = 1e-5  # a PyTorch probability this close to its threshold may fall on either side by rounding alone
MULTI_LABEL = "multi-label"


@dataclass(frozen=True)
class UnfamiliarCheck:
    """PyTorch's side of the unfamiliarity comparison: features and scores of the verification images (model
    order), the probe images with their scores, and the threshold."""

    probe: np.ndarray
    features: np.ndarray
    scores: np.ndarray
    probe_scores: np.ndarray
    threshold: float


def probe_images(pre: Preprocessing) -> np.ndarray:
    """``N_PROBES`` made-up images (uniform and grey noise, stripes, flat colours), preprocessed by ``pre``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    _, side, _ = pre.input_size
    arrays = [rng.integers(0, 256, (side, side, 3)), np.repeat(rng.integers(0, 256, (side, side, 1)), 3, 2),
              np.full((side, side, 3), 255), np.zeros((side, side, 3)), np.full((side, side, 3), (200, 30, 160)),
              np.tile(np.arange(side)[None, :, None] * 255 // max(side - 1, 1), (side, 1, 3)),
              np.tile(((np.arange(side) // 2) % 2 * 255)[:, None, None], (1, side, 3)),
              rng.normal(128, 60, (side, side, 3)).clip(0, 255)]
    return np.stack([pre(Image.fromarray(a.astype(np.uint8))) for a in arrays[:N_PROBES]]).astype(np.float32)


def readable(files: list[tuple[Path, str]], limit: int) -> Iterator[tuple[Any, str]]:
    """(image, label) of the first ``limit`` files that decode; moved or damaged files are skipped."""
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


def compare(reference: np.ndarray, got: np.ndarray, cut: np.ndarray | None = None) -> dict[str, float]:
    """Largest probability difference and top-1 agreement; with ``cut`` (multi-label thresholds, one per
    column) the findings agreement and the number of borderline decisions instead of top-1."""
    out: dict[str, float] = {"max_abs_diff": float(np.abs(reference - got).max())}
    if cut is None:
        out["top1_agreement"] = float((reference.argmax(1) == got.argmax(1)).mean())
        return out
    clear = np.abs(reference - cut) > BORDERLINE
    same = ((reference >= cut) == (got >= cut)) | ~clear
    out["findings_agreement"] = float(same.all(1).mean())
    out["borderline"] = int((~clear).sum())
    return out


def agreement_key(figures: dict[str, Any]) -> str:
    """``findings_agreement`` for a multi-label file's figures, ``top1_agreement`` otherwise."""
    return "findings_agreement" if figures.get("task") == MULTI_LABEL else "top1_agreement"


def verify(path: Path, torch_batch: np.ndarray, app_batch: np.ndarray, subset: str, skipped: int,
           torch_probs: np.ndarray, precision: str, providers: list[str] | None,
           unfamiliar: UnfamiliarCheck | None = None, cut: np.ndarray | None = None) -> dict[str, Any]:
    """The figures of one file against PyTorch's probabilities, with ``passed`` against ``TOLERANCES`` (and,
    with ``unfamiliar``, ``UNFAMILIAR_TOLERANCES``).

    Args:
        torch_batch: the verification images through timm's eval transform (float32, N x 3 x H x W).
        app_batch: the same images through the app's own preprocessing.
        subset, skipped: where the images came from and how many could not be read (reported only).
        unfamiliar: PyTorch's features and scores, to compare the file's ``features`` and ``unfamiliarity``.
        cut: a multi-label file's thresholds in class order: findings agreement instead of top-1.
    """
    session = open_session(path, providers)

    def run(batch: np.ndarray) -> np.ndarray:
        return np.concatenate([session.run(["probabilities"], {"input": batch[i: i + 32]})[0]
                               for i in range(0, len(batch), 32)])

    model_only = compare(torch_probs, run(torch_batch), cut)
    end_to_end = compare(torch_probs, run(app_batch), cut)
    key = "top1_agreement" if cut is None else "findings_agreement"
    tol = TOLERANCES[precision] if cut is None else {"max_abs_diff": TOLERANCES[precision]["max_abs_diff"],
                                                       key: FINDINGS_AGREEMENT[precision]}
    figures = {
        "precision": precision,
        **({} if cut is None else {"task": MULTI_LABEL, "thresholds": [float(c) for c in cut],
                                   "borderline": max(model_only["borderline"], end_to_end["borderline"])}),
        "tolerance": tol,
        "max_abs_diff": max(model_only["max_abs_diff"], end_to_end["max_abs_diff"]),
        key: min(model_only[key], end_to_end[key]),
        "model_only": model_only,
        "with_app_preprocessing": end_to_end,
        "preprocessing_max_abs_diff": float(np.abs(torch_batch - app_batch).max()),
        "n_images": len(app_batch),
        "images_from": subset,
        "unreadable_skipped": skipped,
        "providers": list(session.get_providers()),
    }
    if unfamiliar is not None:
        figures["unfamiliarity"] = _unfamiliar_figures(session, torch_batch, app_batch, unfamiliar, precision)
    figures["passed"] = within_tolerance(figures)
    return figures


def _unfamiliar_figures(session: Any, torch_batch: np.ndarray, app_batch: np.ndarray, check: UnfamiliarCheck,
                        precision: str) -> dict[str, Any]:
    """The file's features and scores against PyTorch's, on both batches and the probes."""
    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts = [session.run(["features", "unfamiliarity"], {"input": batch[i: i + 32]})
                 for i in range(0, len(batch), 32)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    (f_model, s_model), (f_app, s_app), (_, s_probe) = run(torch_batch), run(app_batch), run(check.probe)
    want = np.concatenate([check.scores, check.scores, check.probe_scores]).astype(np.float64)
    got = np.concatenate([s_model, s_app, s_probe]).astype(np.float64)
    scale = np.maximum(np.abs(want), check.threshold)
    feature_diff = max(float(np.abs(f_model - check.features).max()), float(np.abs(f_app - check.features).max()))
    return {"tolerance": UNFAMILIAR_TOLERANCES[precision], "threshold": check.threshold,
            "max_rel_diff": float(np.nan_to_num(np.abs(got - want) / scale, nan=np.inf).max()),
            "flag_agreement": float(((got > check.threshold) == (want > check.threshold)).mean()),
            "features_max_abs_diff": feature_diff,
            "features_max_rel_diff": feature_diff / max(float(np.abs(check.features).max()), 1e-12),
            "validation_flagged": float((check.scores > check.threshold).mean()),
            "probes_flagged": float((check.probe_scores > check.threshold).mean()),
            "n_images": len(want), "n_probes": len(check.probe)}


def within_tolerance(figures: dict[str, Any]) -> bool:
    """Whether a file's measured figures meet today's ``TOLERANCES`` of its precision (not the limits stored
    with it: a file verified under an older, looser rule is not called verified now)."""
    precision = figures.get("precision", "")
    tol = TOLERANCES.get(precision)
    key = agreement_key(figures)
    diff, agreement = figures.get("max_abs_diff"), figures.get(key)
    if tol is None or diff is None or agreement is None:
        return False
    limit = FINDINGS_AGREEMENT[precision] if key == "findings_agreement" else tol["top1_agreement"]
    return float(diff) <= tol.get("max_abs_diff", np.inf) and float(agreement) >= limit and _unfamiliar_within(figures)


def _unfamiliar_within(figures: dict[str, Any]) -> bool:
    """True without unfamiliarity figures (an export from before they existed); else today's limits."""
    found = figures.get("unfamiliarity")
    if found is None:
        return True
    tol = UNFAMILIAR_TOLERANCES[figures["precision"]]
    return float(found["max_rel_diff"]) <= tol["max_rel_diff"] and float(found["flag_agreement"]) >= tol["flag_agreement"]


def split_accuracy(run: LoadedRun, pre: Preprocessing, paths: dict[str, Path],
                   providers: list[str] | None, cut: np.ndarray | None = None) -> dict[str, Any]:
    """Accuracy of each file on the test split (falls back to val) and its top-1 agreement with fp32; with
    ``cut`` (a multi-label run's thresholds) exact-match accuracy, each finding's share of right decisions
    (``per_finding``) and the share of images with the same findings as fp32."""
    subset = "test" if run.files("test") else "val"
    files = run.files(subset)[:MAX_ACCURACY_IMAGES]
    rows = [f for f in run.manifest["files"] if f["subset"] == subset][:MAX_ACCURACY_IMAGES]  # files' entries
    sessions = {name: open_session(p, providers) for name, p in paths.items()}
    probs: dict[str, list[np.ndarray]] = {name: [] for name in sessions}
    kept: list[int] = []
    images = list(readable([(path, i) for i, (path, _) in enumerate(files)], len(files)))
    for start in range(0, len(images), 32):
        chunk = images[start: start + 32]
        batch = np.stack([pre(im) for im, _ in chunk])
        kept.extend(i for _, i in chunk)
        for name, session in sessions.items():
            probs[name].append(session.run(["probabilities"], {"input": batch})[0])
    width = len(run.class_names)
    got = {name: np.concatenate(p) if p else np.zeros((0, width)) for name, p in probs.items()}
    out: dict[str, Any] = {"subset": subset, "n_images": len(kept)}
    if cut is not None:
        from tl_desktop.core.evaluation.multilabel_run import targets

        truth = targets([rows[i] for i in kept], run.class_names).astype(bool)
        return {**out, "task": MULTI_LABEL, **{name: _findings_accuracy(p >= cut, truth, got["fp32"] >= cut,
                                                                        run.class_names) for name, p in got.items()}}
    index = {name: i for i, name in enumerate(run.class_names)}
    y = np.asarray([index.get(rows[i]["label"], -1) for i in kept])
    top1 = {name: p.argmax(1) for name, p in got.items()}
    for name, pred in top1.items():
        out[name] = {"accuracy": float((pred == y).mean()) if y.size else None,
                     "top1_agreement_with_fp32": float((pred == top1["fp32"]).mean()) if y.size else None}
    return out


def _findings_accuracy(called: np.ndarray, truth: np.ndarray, fp32: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Exact-match accuracy (``accuracy``), each finding's share of right decisions and agreement with fp32."""
    if not len(truth):
        return {"accuracy": None, "per_finding": {n: None for n in names}, "findings_agreement_with_fp32": None}
    return {"accuracy": float((called == truth).all(1).mean()),
            "per_finding": {n: float((called[:, j] == truth[:, j]).mean()) for j, n in enumerate(names)},
            "findings_agreement_with_fp32": float((called == fp32).all(1).mean())}


def summary(figures: dict[str, Any]) -> str:
    """The figures in one line, for a refusal message."""
    key = agreement_key(figures)
    words = "same findings" if key == "findings_agreement" else "top-1 agreement"
    text = (f"max |dp| {figures['max_abs_diff']:.2e} (limit {figures['tolerance'].get('max_abs_diff', 'none')}), "
            f"{words} {figures[key]:.3f} (limit {figures['tolerance'][key]}) "
            f"on {figures['n_images']} {figures['images_from']} images")
    found = figures.get("unfamiliarity")
    if found is not None and not _unfamiliar_within(figures):
        text += (f"; unfamiliarity off by {found['max_rel_diff']:.2e} (limit {found['tolerance']['max_rel_diff']}), "
                 f"flag agreement {found['flag_agreement']:.3f} (limit {found['tolerance']['flag_agreement']})")
    return text
