"""Active learning for labelling: a linear probe on the cached embeddings chooses which image to label next.

Every image's pretrained embedding is computed once (``models.embeddings.extract``, cached by file content).
A logistic-regression probe (scikit-learn, the same head the label-budget curve fits) is refitted on what is
labelled after every few labels; it is fast enough (well under a second for a few hundred labels) to run
in the background of the labelling view. From it:

- a proposed label for each open image (the probe's most likely class and its probability);
- the queue, in one of three orders: ``uncertainty`` (margin sampling with diversity: the open images whose
  two most likely classes are closest are pre-selected, ten times the batch, and k-means on their embeddings,
  weighted by uncertainty, keeps the one nearest each centre, so a batch is not ten near-identical images;
  after Zhdanov 2019, "Diverse mini-batch active learning"), ``random``, or ``sequential`` (file order).
  Before the probe can be fitted (fewer than two classes with a label) the uncertainty order takes the images
  nearest the k-means centres of all open images (the most typical images of each cluster);
- an estimate of the accuracy so far: cross-validated on the labelled images (stratified folds), with the
  gain since half the labels as the answer to "do more labels still pay off?" (the label-budget rule).

``LabellingLoop`` keeps the state the labelling view needs (the queue, the undo steps) around a
``data.labels.Labels``; ``simulate`` (``insight/labelling_simulation.py``) replays the loop with an oracle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tl_desktop.core.data.labels import Labels
from tl_desktop.core.insight.label_budget import LIKELY_GAIN, MAYBE_GAIN, fit_probe, one_thread

ORDERS = ("uncertainty", "random", "sequential")
MIN_PER_CLASS = 2   # labels per class (of at least two classes) before the probe proposes anything
RETRAIN_EVERY = 5   # new labels between two fits in the labelling view
BATCH = 10          # images the uncertainty order chooses at a time
PRESELECT = 10      # ... from this many times as many of the most uncertain
MAX_CV_FOLDS = 5
MIN_FOR_ANSWER = 30  # labels before the estimate says whether more labels pay off


def probe_ready(y: Sequence[str], per_class: int = 1) -> bool:
    """At least two classes have ``per_class`` labels (one is enough to order the queue; proposals wait for
    ``MIN_PER_CLASS``)."""
    _, counts = np.unique(np.asarray(y), return_counts=True)
    return int(np.sum(counts >= per_class)) >= 2


def margins(proba: np.ndarray) -> np.ndarray:
    """Top probability minus the second (small: the probe hesitates between two classes)."""
    if proba.shape[1] < 2:
        return np.ones(len(proba))
    top = np.sort(proba, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0]


def _nearest_to_centres(x: np.ndarray, k: int, seed: int, weights: np.ndarray | None = None) -> list[int]:
    """Row indices of ``x`` nearest each of ``k`` k-means centres (one per centre, distinct)."""
    from sklearn.cluster import KMeans

    k = min(k, len(x))
    if k <= 0:
        return []
    if k == len(x):
        return list(range(len(x)))
    with one_thread():
        km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(x, sample_weight=weights)
    distances = km.transform(x)
    chosen: list[int] = []
    for centre in range(k):
        for row in np.argsort(distances[:, centre]):
            if int(row) not in chosen:
                chosen.append(int(row))
                break
    return chosen


def choose(x: np.ndarray, candidates: Sequence[int], k: int, *, proba: np.ndarray | None = None,
           seed: int = 0) -> list[int]:
    """The next ``k`` images to label from ``candidates`` (rows of ``x``) in the uncertainty order.

    ``proba`` (rows of ``candidates``' probabilities, or None before the probe exists): the most uncertain
    ``PRESELECT * k`` are clustered (weights: 1 - margin) and the one nearest each centre is taken, most
    uncertain first; without it the typical image of each of ``k`` clusters of all candidates.
    """
    candidates = np.asarray(candidates, dtype=int)
    if len(candidates) == 0 or k <= 0:
        return []
    if proba is None:
        pool = _subsample(candidates, 20 * max(k, 1), seed)
        return [int(pool[i]) for i in _nearest_to_centres(x[pool], k, seed)]
    m = margins(proba)
    pre = np.argsort(m, kind="stable")[: PRESELECT * k]
    picked = _nearest_to_centres(x[candidates[pre]], k, seed, weights=1.0 - m[pre] + 1e-6)
    picked.sort(key=lambda i: m[pre[i]])
    return [int(candidates[pre[i]]) for i in picked]


def _subsample(rows: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most ``n`` of ``rows`` (k-means on a sample of a large pool finds the same typical images)."""
    if len(rows) <= n:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, n, replace=False))


@dataclass
class Estimate:
    """Cross-validated accuracy of the probe on what is labelled, and whether more labels still pay off."""

    labels: int
    accuracy: float | None            # None: too few labels per class for folds
    folds: int
    answer: str                       # likely | maybe | unlikely | unknown
    sentence: str
    curve: list[tuple[int, float]] = field(default_factory=list)  # (labels, accuracy) at each estimate
    low: float | None = None          # 95 % Wilson interval of the cross-validated accuracy
    high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"labels": self.labels, "accuracy": self.accuracy, "low": self.low, "high": self.high,
                "folds": self.folds, "answer": self.answer, "sentence": self.sentence,
                "curve": [list(p) for p in self.curve]}

    def words(self) -> str:
        """"82 % (95 % interval 60-93 %)", or "" without an estimate."""
        if self.accuracy is None:
            return ""
        interval = f" (95 % interval {100 * self.low:.0f}-{100 * self.high:.0f} %)" if self.low is not None else ""
        return f"{100 * self.accuracy:.0f} %{interval}"


def cross_validated(x: np.ndarray, y: Sequence[str], seed: int = 0) -> tuple[float | None, int]:
    """(accuracy of the probe in stratified folds over the labelled images, folds), or (None, 0). Classes
    with a single label are left out (they cannot be in two folds)."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    _, counts = np.unique(y, return_counts=True)
    keep = np.isin(y, _[counts >= 2])  # a class with one label cannot be in two folds
    x, y = x[keep], y[keep]
    folds = int(min(MAX_CV_FOLDS, counts[counts >= 2].min())) if np.any(counts >= 2) else 0
    if folds < 2 or len(np.unique(y)) < 2:
        return None, 0
    right = 0
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        if len(np.unique(y[train])) < 2:
            right += int(np.sum(y[test] == y[train][0]))
            continue
        probe = fit_probe(x[train], y[train], seed)
        with one_thread():
            right += int(np.sum(probe.predict(x[test]) == y[test]))
    return right / len(y), folds


def answer(curve: Sequence[tuple[int, float]]) -> tuple[str, str]:
    """Do more labels still pay off? The gain from about half the labels to now (the label-budget rule),
    judged only from ``MIN_FOR_ANSWER`` labels on: below that a cross-validated figure moves by tens of
    points from one label to the next, and a fall is as likely as a rise."""
    n = curve[-1][0] if curve else 0
    if n < MIN_FOR_ANSWER:
        return "unknown", (f"A rough estimate from {n} labels; from {MIN_FOR_ANSWER} on it also says whether "
                           "more labels still pay off.")
    if len(curve) < 2:  # e.g. the first estimate after the project was opened again
        return "unknown", "Whether more labels still pay off shows after the next few labels."
    n, now = curve[-1]
    half = min(curve[:-1], key=lambda p: abs(p[0] - n / 2))
    if half[0] > 0.75 * n or half[0] < MIN_FOR_ANSWER / 2:
        return "unknown", "Label a few more images for an estimate of the gain."
    gain = now - half[1]
    change = f"from {half[0]} to {n} labels the estimated accuracy went {100 * half[1]:.0f}% -> {100 * now:.0f}%"
    if gain >= LIKELY_GAIN:
        return "likely", f"More labels still pay off: {change}."
    if gain >= MAYBE_GAIN:
        return "maybe", f"Gains are getting small: {change}."
    return "unlikely", (f"More labels of the same kind add little now: {change}. Train a model, or label the "
                        "images the model finds hardest.")


@dataclass
class Fitted:
    """One fit of the probe: its classes, the probabilities of every image, and the estimate."""

    labelled: int
    classes: list[str]
    proba: np.ndarray | None           # (images, classes), None: not ready
    estimate: Estimate
    proposes: bool = False             # two classes or more have MIN_PER_CLASS labels: show proposals


def fit(x: np.ndarray, rows: Sequence[int], y: Sequence[str], curve: Sequence[tuple[int, float]] = (),
        seed: int = 0) -> Fitted:
    """Fit the probe on the labelled ``rows`` of ``x`` and estimate its accuracy (pure: run it in a worker)."""
    rows, y = list(rows), list(y)
    proba, classes = None, sorted(set(y))
    if probe_ready(y):
        probe = fit_probe(x[rows], y, seed)
        with one_thread():
            proba, classes = probe.predict_proba(x), [str(c) for c in probe.classes_]
    accuracy, folds = cross_validated(x[rows], y, seed) if rows else (None, 0)
    points = [*curve, (len(rows), accuracy)] if accuracy is not None else list(curve)
    word, sentence = answer(points)
    low = high = None
    if accuracy is None:
        sentence = f"Label at least {MIN_PER_CLASS} images of two classes or more for an estimate."
    else:
        from tl_desktop.core.evaluation.statistics import wilson_interval

        names, counts = np.unique(np.asarray(y), return_counts=True)
        used = int(counts[counts >= 2].sum())  # the images the folds scored
        low, high = wilson_interval(round(accuracy * used), used)
    estimate = Estimate(len(rows), accuracy, folds, word, sentence, points, low, high)
    return Fitted(len(rows), classes, proba, estimate, probe_ready(y, MIN_PER_CLASS))


# --- the loop the labelling view drives ----------------------------------------------------------------------


class LabellingLoop:
    """The queue, proposals and undo steps around a project's labels (the window's Label step drives it).

    ``paths`` are every image that can be labelled (relative paths, in file order), ``vectors`` their
    embeddings (rows in that order; None until computed: the queue is then sequential and nothing is
    proposed). ``labels`` is changed in place; the caller saves it.
    """

    def __init__(self, paths: Sequence[str], labels: Labels, vectors: np.ndarray | None = None, *,
                 order: str = "uncertainty", seed: int = 0):
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}")
        self.paths, self.labels, self.vectors = list(paths), labels, vectors
        self.row = {p: i for i, p in enumerate(self.paths)}
        self.order, self.seed = order, seed
        self.fitted: Fitted | None = None
        self.curve: list[tuple[int, float]] = []
        self.undo_steps: list[tuple[str, tuple[str, str | None]]] = []
        self.skipped: list[str] = []
        self._queue: list[str] = []
        self._since_fit = 0
        self.rng = np.random.default_rng(seed)
        # True: the uncertainty order is chosen outside (``order_inputs`` -> ``choose`` in a worker ->
        # ``use_order``), so ``queue`` never runs k-means itself; a short queue is topped up in file order.
        self.background = False

    # --- state ----------------------------------------------------------------------------------------
    def is_open(self, path: str) -> bool:
        return self.labels.state_of(path)[0] == "open"

    def open_paths(self) -> list[str]:
        return [p for p in self.paths if self.is_open(p)]

    def labelled(self) -> tuple[list[int], list[str]]:
        """(rows, classes) of the labelled images that have embeddings' rows."""
        pairs = [(self.row[p], c) for p, c in self.labels.assigned.items() if p in self.row]
        return [r for r, _ in pairs], [c for _, c in pairs]

    def progress(self) -> dict[str, Any]:
        """Labelled per class, not sure, open (what the view's progress line shows)."""
        counts = {c: 0 for c in self.labels.classes}
        for path, name in self.labels.assigned.items():
            if path in self.row:
                counts[name] = counts.get(name, 0) + 1
        not_sure = sum(p in self.row for p in self.labels.not_sure)
        return {"per_class": counts, "labelled": sum(counts.values()), "not_sure": not_sure,
                "open": len(self.paths) - sum(counts.values()) - not_sure, "total": len(self.paths)}

    # --- the queue ------------------------------------------------------------------------------------
    def set_order(self, order: str) -> None:
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}")
        self.order, self._queue = order, []

    def queue(self, n: int = BATCH) -> list[str]:
        """The next ``n`` open images (skipped ones come last), refilled in the current order."""
        self._queue = [p for p in self._queue if self.is_open(p) and p not in self.skipped]
        if len(self._queue) < n:
            taken = set(self._queue)
            rest = [p for p in self.open_paths() if p not in taken and p not in self.skipped]
            self._queue += self._ordered(rest, n - len(self._queue))
        if len(self._queue) < n:
            self._queue += [p for p in self.skipped if self.is_open(p) and p not in self._queue]
        return self._queue[:n]

    def current(self) -> str | None:
        nxt = self.queue(1)
        return nxt[0] if nxt else None

    def _ordered(self, rest: list[str], n: int) -> list[str]:
        if not rest or n <= 0:
            return []
        if self.order == "sequential" or self.vectors is None or (self.background and self.order == "uncertainty"):
            return rest[:n]
        if self.order == "random":
            return [rest[i] for i in self.rng.permutation(len(rest))[:n]]
        rows = [self.row[p] for p in rest]
        proba = self.fitted.proba[rows] if self.fitted is not None and self.fitted.proba is not None else None
        k = max(n, BATCH)
        return [self.paths[r] for r in choose(self.vectors, rows, k, proba=proba, seed=self.seed)][:max(n, k)]

    def order_inputs(self, n: int = 2 * BATCH) -> tuple[np.ndarray, list[int], int, np.ndarray | None, int] | None:
        """The arguments of ``choose`` (x, candidates, k, proba, seed) for the next ``n`` open images in the
        uncertainty order, to run in a worker (``background``); None when that order has nothing to choose."""
        if self.vectors is None or self.order != "uncertainty":
            return None
        rows = [self.row[p] for p in self.open_paths() if p not in self.skipped]
        if not rows:
            return None
        proba = self.fitted.proba[rows] if self.fitted is not None and self.fitted.proba is not None else None
        return self.vectors, rows, n, proba, self.seed

    def use_order(self, rows: Sequence[int]) -> None:
        """The next images are ``rows`` (``choose``'s answer to ``order_inputs``), those decided or skipped
        since left out; the queue is topped up as usual after them."""
        chosen = [self.paths[r] for r in dict.fromkeys(rows)]
        self._queue = [p for p in chosen if self.is_open(p) and p not in self.skipped]

    # --- decisions ------------------------------------------------------------------------------------
    def _decide(self, path: str, change) -> None:
        before = self.labels.state_of(path)
        change()
        self.undo_steps.append((path, before))
        self.skipped = [p for p in self.skipped if p != path]
        self._since_fit += 1

    def answer(self, path: str, name: str) -> None:
        """Label ``path`` as ``name``. Raises DataError for an unknown class."""
        self._decide(path, lambda: self.labels.label(path, name))

    def not_sure(self, path: str) -> None:
        self._decide(path, lambda: self.labels.mark_not_sure(path))

    def skip(self, path: str) -> None:
        """Show ``path`` again after every other open image (nothing is stored)."""
        if path not in self.skipped:
            self.skipped.append(path)
        self._queue = [p for p in self._queue if p != path]

    def undo(self) -> str | None:
        """Take back the last decision; returns its image (shown again next), or None when nothing is left."""
        if not self.undo_steps:
            return None
        path, before = self.undo_steps.pop()
        self.labels.restore(path, before)
        self._queue = [path, *[p for p in self._queue if p != path]]
        self._since_fit = max(0, self._since_fit - 1)
        return path

    def suggestion(self, path: str) -> tuple[str, float] | None:
        """The probe's proposed class for ``path`` and its probability, or None (no probe yet)."""
        if self.fitted is None or self.fitted.proba is None or not self.fitted.proposes or path not in self.row:
            return None
        p = self.fitted.proba[self.row[path]]
        best = int(np.argmax(p))
        return self.fitted.classes[best], float(p[best])

    # --- refits (the view runs ``fit`` in a worker and hands the result to ``take``) ---------------------
    def wants_fit(self) -> bool:
        """Enough new labels since the last fit (or none yet while two classes have enough)."""
        if self.vectors is None:
            return False
        rows, y = self.labelled()
        return bool(rows) and (self.fitted is None or self._since_fit >= RETRAIN_EVERY)

    def fit_inputs(self) -> tuple[np.ndarray, list[int], list[str], list[tuple[int, float]], int]:
        rows, y = self.labelled()
        self._since_fit = 0
        return self.vectors, rows, y, list(self.curve), self.seed

    def take(self, fitted: Fitted) -> None:
        """Use a finished fit: new proposals, the estimate, and a queue in the new order."""
        self.fitted = fitted
        self.curve = list(fitted.estimate.curve)
        if self.order == "uncertainty":
            self._queue = self._queue[:1]  # the image on screen stays; the rest is chosen anew


__all__ = ["ORDERS", "MIN_PER_CLASS", "RETRAIN_EVERY", "BATCH", "Estimate", "Fitted", "LabellingLoop", "answer",
           "choose", "cross_validated", "fit", "fit_probe", "margins", "one_thread", "probe_ready"]
