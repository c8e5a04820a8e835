"""Would labelling more images pay off? Test score versus images per class, with the linear probe.

Each image's pretrained embedding is computed once (``embeddings.extract``, disk-cached), then for every
shot count a classifier is fitted on k randomly drawn training images per class and scored on the whole test
split, ``repeats`` times with different draws. The classifier is scikit-learn's LogisticRegression (C=1) on
the raw embeddings (the same kind of linear head the app's linear probe trains, fitted exactly instead
of by gradient steps, so one curve takes seconds). The answer comes from the gain of the last doubling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tl_desktop.core.config import DataSource
from tl_desktop.core.errors import TransferError
from tl_desktop.core.events import CancelToken, Notice, Progress
from tl_desktop.core.fsutil import atomic_write_json

DEFAULT_SHOTS: tuple[int | None, ...] = (1, 2, 5, 10, 20, None)   # None: every training image
LIKELY_GAIN = 0.02     # last doubling gained >= 2 points: more labels likely pay off
MAYBE_GAIN = 0.005     # 0.5-2 points: small gains
ANSWER_RULE = ("From the last doubling of images per class (half of all training images per class -> all of "
               "them): a gain of at least 2 points of mean test balanced accuracy means labelling more is likely "
               "to pay off; 0.5 to 2 points, it may pay off a little; less, the curve has flattened and more "
               "labels of the same kind are unlikely to help much.")

# answer -> the conclusion in one clause, for a status line ("Finished: labelling more images ...")
ANSWER_SUMMARY = {"likely": "labelling more images is likely to pay off",
                  "maybe": "labelling more images may pay off a little",
                  "unlikely": "labelling more images of the same kind is unlikely to help much"}


def answer_summary(answer: str) -> str:
    """The conclusion of a curve's ``answer`` (likely / maybe / unlikely) as one clause of plain words."""
    return ANSWER_SUMMARY.get(answer, f"labelling more images: {answer}")


@dataclass
class CurvePoint:
    shots: int | None              # requested images per class (None: all)
    images_per_class: float        # actually used, mean over classes (a class with fewer images uses all)
    mean: float                    # test balanced accuracy, mean over repeats
    std: float
    low: float                     # min and max over repeats
    high: float
    scores: list[float]


@dataclass
class LabelBudgetCurve:
    model: str
    data: str
    image_size: int | None
    seed: int
    repeats: int
    classes: list[str]
    train_per_class: dict[str, int]
    test_images: int
    points: list[CurvePoint]
    last_doubling_gain: float | None
    answer: str                    # likely | maybe | unlikely
    explanation: str
    rule: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def one_thread():
    """BLAS and OpenMP on one thread: these fits are small, and on a busy 2-core machine threaded BLAS made
    one logistic-regression fit on 1,280-dimensional embeddings 20 times slower (15.6 s against 0.8 s)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def fit_probe(x: np.ndarray, y: Sequence[str], seed: int = 0) -> Any:
    """The probe: logistic regression (C=1) on the embeddings (the curve's and the labelling loop's). Fitted on
    float64: with float32 rows scikit-learn's lbfgs loss runs outside BLAS, 16 times slower here (400 x 1,280:
    3.4 s against 0.21 s, the same 48 iterations)."""
    from sklearn.linear_model import LogisticRegression

    with one_thread():
        return LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(np.asarray(x, dtype=np.float64),
                                                                            np.asarray(y))


def _fit_score(x_train, y_train, x_test, y_test, seed: int) -> float:
    from sklearn.metrics import balanced_accuracy_score

    clf = fit_probe(x_train, y_train, seed)
    with one_thread():
        return float(balanced_accuracy_score(y_test, clf.predict(x_test)))


def _draw(y: np.ndarray, k: int | None, rng: np.random.Generator) -> np.ndarray:
    if k is None:
        return np.arange(len(y))
    return np.concatenate([rng.permutation(np.flatnonzero(y == c))[:k] for c in np.unique(y)])


def curve_from_embeddings(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                          shots=DEFAULT_SHOTS, repeats: int = 3, seed: int = 0,
                          cancel: CancelToken | None = None) -> list[CurvePoint]:
    """One point per shot count, plus "half of all" for the last-doubling answer (when not asked already)."""
    counts = np.array([np.sum(y_train == c) for c in np.unique(y_train)])
    half = max(1, int(np.median(counts)) // 2)
    wanted = list(dict.fromkeys([*shots, half]))
    wanted.sort(key=lambda k: np.inf if k is None else k)
    points = []
    for k in wanted:
        if k is not None and k >= counts.max():
            k = None
        if any(p.shots == k for p in points):
            continue
        scores, used = [], []
        for r in range(1 if k is None else repeats):
            if cancel is not None:
                cancel.raise_if_cancelled()
            rng = np.random.default_rng(seed * 1000 + r * 100 + (k or 0))
            idx = _draw(y_train, k, rng)
            if len(np.unique(y_train[idx])) < 2:
                continue
            scores.append(_fit_score(x_train[idx], y_train[idx], x_test, y_test, seed))
            used.append(len(idx) / len(counts))
        if scores:
            a = np.asarray(scores)
            points.append(CurvePoint(k, float(np.mean(used)), float(a.mean()), float(a.std()), float(a.min()),
                                     float(a.max()), [float(s) for s in scores]))
    return points


def answer_of(points: list[CurvePoint]) -> tuple[float | None, str, str]:
    """(gain of the last doubling, likely|maybe|unlikely, one plain sentence)."""
    if len(points) < 2:
        return None, "unlikely", "Too few training images per class to draw a curve."
    last = points[-1]
    half = min(points[:-1], key=lambda p: abs(p.images_per_class - last.images_per_class / 2))
    gain = last.mean - half.mean
    change = (f"going from {half.images_per_class:.0f} to {last.images_per_class:.0f} images per class changed "
              f"the test balanced accuracy by {100 * gain:+.1f} points ({100 * half.mean:.1f}% -> "
              f"{100 * last.mean:.1f}%)")
    if gain >= LIKELY_GAIN:
        return gain, "likely", f"Likely yes: {change}; the curve is still rising."
    if gain >= MAYBE_GAIN:
        return gain, "maybe", f"Maybe a little: {change}; the curve is flattening."
    return gain, "unlikely", (f"Unlikely: {change}; the curve has flattened, so more images of the same kind "
                              "probably add little (different or harder images still might).")


def label_budget_curve(source: DataSource, *, model: str, shots=DEFAULT_SHOTS, repeats: int = 3,
                       image_size: int | None = None, out_dir: str | Path | None = None,
                       callback: Callable | None = None, cancel: CancelToken | None = None) -> LabelBudgetCurve:
    """Test score versus images per class on the source's split (training images drawn, test fixed).

    The split is the source's stored one, else one made from its seed, fractions and grouping; the seed also
    drives the draws.

    Writes ``label_budget.json`` in ``out_dir`` when given.
    """
    from tl_desktop.core.data.split import split_source
    from tl_desktop.core.errors import DataError
    from tl_desktop.core.models.catalog import create_model, data_config
    from tl_desktop.core.models.embeddings import extract

    emit = callback or (lambda event: None)
    seed = source.seed
    report, split = split_source(source)
    if report.is_multilabel:
        raise TransferError("the label-budget curve supports single-label sets only (one class per image); these "
                            "images are a multi-label set (several findings per image)")
    net = create_model(model, len(report.classes), weights="pretrained")
    cfg = data_config(net, image_size)
    subsets = {s: split.samples(report, s) for s in ("train", "test")}
    if not subsets["test"]:
        raise DataError("the split has no test images; a label-budget curve needs some")
    features = {}
    for name, samples in subsets.items():
        emit(Progress(f"embedding {name}", 0, len(samples)))
        features[name], info = extract(net, cfg, [report.abspath(s) for s in samples],
                                       [s.sha256 for s in samples], callback=callback, cancel=cancel)
        emit(Notice(f"Image features ready for {len(samples)} {name} images: {info['computed']} computed by the "
                    f"pretrained network, {info['cached']} reused from the cache"))
    y_train = np.array([s.label for s in subsets["train"]])
    y_test = np.array([s.label for s in subsets["test"]])
    points = curve_from_embeddings(features["train"], y_train, features["test"], y_test, shots, repeats, seed,
                                   cancel)
    gain, answer, text = answer_of(points)
    per_class = {c: int(np.sum(y_train == c)) for c in sorted(set(y_train.tolist()))}
    curve = LabelBudgetCurve(model, str(source.data), image_size, seed, repeats, sorted(per_class), per_class,
                             len(y_test), points, gain, answer, text, ANSWER_RULE)
    if out_dir is not None:
        atomic_write_json(Path(out_dir) / "label_budget.json", curve.to_dict())
    return curve


__all__ = ["ANSWER_SUMMARY", "answer_summary", "DEFAULT_SHOTS", "CurvePoint", "LabelBudgetCurve", "label_budget_curve", "curve_from_embeddings",
           "answer_of", "ANSWER_RULE", "fit_probe", "one_thread"]
