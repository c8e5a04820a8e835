"""Honest proof of the labelling loop: replay it on a fully labelled data set with the labels hidden.

A fixed, stratified part of the images (``test_fraction``, drawn with ``split_seed``, the same for every
order and seed) is held out for testing; the rest is the pool. An oracle reveals a pool image's label when
the loop asks for it. The loop chooses as the labelling view does (``active.choose`` after every
``RETRAIN_EVERY`` labels, from a batch of ``BATCH``), or draws at random, or takes the files in order. At each
budget the probe is fitted on the labels spent so far and scored on the held-out part.

``simulate`` works on embeddings (rows = images); ``simulate_source`` embeds a data set's images with a
pretrained backbone first (cached by file content, so a second order or seed costs only the fits).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tl_desktop.core.config import DataSource
from tl_desktop.core.errors import DataError
from tl_desktop.core.events import CancelToken, Notice, Progress
from tl_desktop.core.insight.active import (
    BATCH,
    ORDERS,
    RETRAIN_EVERY,
    choose,
    fit_probe,
    one_thread,
    probe_ready,
)

DEFAULT_BUDGETS = (20, 50, 100, 200)
DEFAULT_TEST_FRACTION = 0.3


@dataclass
class SimPoint:
    labels: int
    accuracy: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Simulation:
    order: str
    points: list[SimPoint]
    full_accuracy: float        # the probe fitted on every pool image: the ceiling
    pool: int
    test: int
    classes: list[str]

    def mean(self, budget: int) -> float:
        return float(np.mean([p.accuracy for p in self.points if p.labels == budget]))


def held_out(y: np.ndarray, test_fraction: float, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool rows, test rows): a stratified draw, fixed by ``split_seed``."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    pool, test = train_test_split(rows, test_size=test_fraction, random_state=split_seed, stratify=y)
    return np.sort(pool), np.sort(test)


def _score(x: np.ndarray, y: np.ndarray, chosen: Sequence[int], test: np.ndarray, seed: int) -> float:
    labels = y[list(chosen)]
    if len(np.unique(labels)) < 2:
        return float(np.mean(y[test] == labels[0])) if len(labels) else 0.0
    probe = fit_probe(x[list(chosen)], labels, seed)
    with one_thread():
        return float(np.mean(probe.predict(x[test]) == y[test]))


def selection(x: np.ndarray, y: np.ndarray, pool: np.ndarray, order: str, budget: int, seed: int,
              cancel: CancelToken | None = None) -> list[int]:
    """The pool rows in the order the loop asks for their labels, up to ``budget``."""
    if order == "sequential":
        return [int(r) for r in pool[:budget]]
    rng = np.random.default_rng(seed)
    if order == "random":
        return [int(r) for r in rng.permutation(pool)[:budget]]
    chosen: list[int] = []
    while len(chosen) < min(budget, len(pool)):
        if cancel is not None:
            cancel.raise_if_cancelled()
        taken = set(chosen)
        open_rows = np.array([r for r in pool if r not in taken])
        proba = None
        if chosen and probe_ready(y[chosen]):
            probe = fit_probe(x[chosen], y[chosen], seed)
            with one_thread():
                proba = probe.predict_proba(x[open_rows])
        step = min(RETRAIN_EVERY, budget - len(chosen))
        chosen += choose(x, open_rows, BATCH, proba=proba, seed=seed + len(chosen))[:step]
    return chosen


def simulate(x: np.ndarray, y: Sequence[str], order: str, budgets: Sequence[int] = DEFAULT_BUDGETS,
             seeds: int = 3, *, test_fraction: float = DEFAULT_TEST_FRACTION, split_seed: int = 0,
             callback: Callable | None = None, cancel: CancelToken | None = None) -> Simulation:
    """Test accuracy at each budget for each seed (see the module docstring).

    Raises:
        DataError: a budget is larger than the pool, or a class has too few images to hold some out.
    """
    if order not in ORDERS:
        raise DataError(f"the order must be one of {', '.join(ORDERS)}")
    y = np.asarray(y)
    _, counts = np.unique(y, return_counts=True)
    if len(counts) < 2 or counts.min() < 2:
        raise DataError("every class needs at least 2 images (one to hold out for testing)")
    pool, test = held_out(y, test_fraction, split_seed)
    if max(budgets) > len(pool):
        raise DataError(f"the largest budget ({max(budgets)}) is more than the {len(pool)} images left to label "
                        f"after holding out {len(test)} for testing")
    emit = callback or (lambda event: None)
    points = []
    for seed in range(seeds):
        emit(Progress(f"simulating ({order})", seed, seeds))
        chosen = selection(x, y, pool, order, max(budgets), seed, cancel)
        points += [SimPoint(b, _score(x, y, chosen[:b], test, seed), seed) for b in budgets]
    emit(Progress(f"simulating ({order})", seeds, seeds))
    full = _score(x, y, pool, test, 0)
    return Simulation(order, points, full, len(pool), len(test), sorted(map(str, np.unique(y))))


def embed_source(source: DataSource, *, model: str | None = None, image_size: int | None = None,
                 callback: Callable | None = None, cancel: CancelToken | None = None):
    """(scan report, embeddings, labels) of a labelled data set, embeddings cached by file content.

    Raises:
        DataError: the images are unusable.
    """
    from tl_desktop.core.data.split import split_source
    from tl_desktop.core.models.catalog import DEFAULT_MODEL, create_model, data_config
    from tl_desktop.core.models.embeddings import extract

    emit = callback or (lambda event: None)
    report, _ = split_source(source)
    net = create_model(model or DEFAULT_MODEL, weights="pretrained")
    cfg = data_config(net, image_size)
    emit(Progress("embedding", 0, len(report.samples)))
    x, info = extract(net, cfg, [report.abspath(s) for s in report.samples], [s.sha256 for s in report.samples],
                      callback=callback, cancel=cancel)
    emit(Notice(f"Features of {len(report.samples)} images: {info['cached']} from cache, {info['computed']} computed"))
    return report, x, np.array([s.label for s in report.samples])


def embed_images(paths: Sequence[str | Path], shas: Sequence[str], *, model: str | None = None,
                 image_size: int | None = None, callback: Callable | None = None,
                 cancel: CancelToken | None = None) -> np.ndarray:
    """Pretrained embeddings of image files (rows in ``paths``' order), cached by their content ``shas``:
    what the labelling view's probe learns on.

    Raises:
        UnreadableImage: a file can no longer be decoded.
        Cancelled: the token was set.
    """
    from tl_desktop.core.models.catalog import DEFAULT_MODEL, create_model, data_config
    from tl_desktop.core.models.embeddings import extract

    net = create_model(model or DEFAULT_MODEL, weights="pretrained")
    x, _ = extract(net, data_config(net, image_size), [Path(p) for p in paths], list(shas), callback=callback,
                   cancel=cancel)
    return x


def simulate_source(source: DataSource, order: str, budgets: Sequence[int] = DEFAULT_BUDGETS, seeds: int = 3, *,
                    model: str | None = None, image_size: int | None = None,
                    test_fraction: float = DEFAULT_TEST_FRACTION, callback: Callable | None = None,
                    cancel: CancelToken | None = None) -> Simulation:
    """``simulate`` on a labelled data set's pretrained embeddings (the split seed is the source's seed)."""
    _, x, y = embed_source(source, model=model, image_size=image_size, callback=callback, cancel=cancel)
    return simulate(x, y, order, budgets, seeds, test_fraction=test_fraction, split_seed=source.seed,
                    callback=callback, cancel=cancel)


__all__ = ["DEFAULT_BUDGETS", "DEFAULT_TEST_FRACTION", "SimPoint", "Simulation", "held_out", "selection",
           "simulate", "simulate_source", "embed_source", "embed_images"]
