"""Likely label errors: out-of-fold probabilities of a linear probe on the embeddings, then confident learning.

Each image's class probabilities come from a logistic regression that never saw it (stratified k-fold, 5 folds
or fewer when a class is small; identical images and one patient's images stay in one fold, so a copy cannot
vouch for its own label). From ``PCA_FROM`` images on, each fold's probe works in the ``PCA_DIMS`` principal
components of that fold's training rows (fitted without the held-out rows): at 10,000 images this halves the
probe's time with the same ranking of planted label errors (docs/benchmarks.md); on small sets, where
components close to the number of images hurt out-of-fold accuracy, the full embedding is used.
cleanlab's ``find_label_issues(filter_by="prune_by_noise_rate")`` picks the images
whose given label the others contradict, ``get_label_quality_scores`` (self-confidence: the out-of-fold
probability of the given label) ranks them, lowest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tl_desktop.core.data.identity import components
from tl_desktop.core.data.scan import Sample
from tl_desktop.core.events import CancelToken

FOLDS = 5
PROBE_C = 100.0              # inverse regularisation on unit-length embeddings: sharp enough for confident learning
PCA_FROM = 2_000             # images from which each fold's probe works in principal components
PCA_DIMS = 256               # how many (fitted on the fold's training rows only)
METHOD = ("out-of-fold logistic regression on pretrained embeddings ({folds} folds), confident learning "
          "(cleanlab find_label_issues, prune_by_noise_rate; score: self-confidence)")
MULTILABEL_NOT_CHECKED = ("not checked: likely label errors are checked for single-label sets only (one class per "
                          "image); this is a multi-label set")


@dataclass
class LabelIssue:
    """An image whose given label the rest of the data contradicts."""

    path: str                    # relative path (ScanReport.root)
    given: str
    suggested: str               # the class the probe finds most likely
    score: float                 # label quality, 0-1: lower is more suspicious
    suggested_probability: float
    subset: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def out_of_fold_probabilities(vectors: np.ndarray, labels: np.ndarray, folds: int, groups: np.ndarray,
                              seed: int = 0, cancel: CancelToken | None = None) -> np.ndarray:
    """Class probabilities of each row from a probe fitted on the other folds (columns: classes 0..K-1).

    Rows whose other folds hold a single class (one group filling a class) get NaN: they cannot be checked.
    The probe runs with one BLAS thread: its products are small, and two OpenBLAS threads on a busy 2-core
    machine made each fold 10-20x slower (docs/benchmarks.md).
    """
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x = np.asarray(vectors, dtype=np.float32)
    dims = PCA_DIMS if len(x) >= PCA_FROM and x.shape[1] > PCA_DIMS else None
    probs = np.zeros((len(x), int(labels.max()) + 1))
    probs[:] = np.nan
    with threadpool_limits(limits=1, user_api="blas"):
        for train, held in _folds(labels, groups, folds, seed):
            if cancel is not None:
                cancel.raise_if_cancelled()
            if len(np.unique(labels[train])) < 2:
                continue
            fit_rows, held_rows = _fold_features(x[train], x[held], dims)
            clf = LogisticRegression(C=PROBE_C, max_iter=1000).fit(fit_rows, labels[train])
            probs[held] = 0.0
            probs[np.ix_(held, clf.classes_)] = clf.predict_proba(held_rows)
    return probs


def _folds(labels: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified (train, held-out) index pairs that keep each group in one fold. When every group is a single
    image the constraint is void and plain stratified folds are used (scikit-learn's group-aware splitter
    loops over groups in Python: about 2.5 s for 10,000 of them)."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    rows = np.zeros((len(labels), 1))
    if len(np.unique(groups)) == len(groups):
        return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(rows, labels))
    return list(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(rows, labels, groups))


def _fold_features(train: np.ndarray, held: np.ndarray, dims: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A fold's training and held-out rows for the probe, as float64 (with float32 rows scikit-learn's lbfgs loss
    multiplies float32 by float64 outside BLAS, several times slower); in the ``dims`` principal components of
    the training rows when ``dims`` is set (covariance eigendecomposition: cheap when rows >> features)."""
    if dims is None:
        return train.astype(np.float64), held.astype(np.float64)
    from sklearn.decomposition import PCA

    pca = PCA(n_components=dims, svd_solver="covariance_eigh").fit(train)
    return pca.transform(train).astype(np.float64), pca.transform(held).astype(np.float64)


def _fold_groups(samples: Sequence[Sample], groups: Mapping[str, str] | None) -> np.ndarray:
    """One id per set of identical images or group (patient), so folds never split them."""
    ids = {}
    for n, component in enumerate(components(samples, lambda s: (groups or {}).get(s.path))):
        ids.update({s.path: n for s in component})
    return np.array([ids[s.path] for s in samples])


def label_issues(samples: Sequence[Sample], vectors: np.ndarray, *, subsets: Mapping[str, str] | None = None,
                 groups: Mapping[str, str] | None = None, seed: int = 0,
                 cancel: CancelToken | None = None) -> tuple[list[LabelIssue], str]:
    """Images whose given label the data contradict, most suspicious first, and the method in words.

    Classes with fewer than 2 images cannot be checked and are left out; with fewer than 2 classes left,
    nothing is checked (the method says so). A multi-label set (samples with ``findings``) is not checked
    either: confident learning here assumes one class per image.

    Args:
        samples: scanned files (their labels), rows of ``vectors`` in the same order.
        vectors: the images' embeddings.
        subsets: relative path -> part, shown with each issue.
        groups: relative path -> group (a split's ``groups``): one group's images share a fold.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    if any(getattr(s, "findings", None) is not None for s in samples):
        return [], MULTILABEL_NOT_CHECKED
    names = sorted({s.label for s in samples})
    counts = {c: sum(s.label == c for s in samples) for c in names}
    kept_names = [c for c in names if counts[c] >= 2]
    rows = [i for i, s in enumerate(samples) if counts[s.label] >= 2]
    folds = min(FOLDS, min((counts[c] for c in kept_names), default=0))
    if len(kept_names) < 2 or folds < 2:
        return [], "not checked: at least two classes with two or more images each are needed"
    index = {c: k for k, c in enumerate(kept_names)}
    kept = [samples[i] for i in rows]
    labels = np.array([index[s.label] for s in kept])
    fold_groups = _fold_groups(kept, groups)
    folds = min(folds, len(np.unique(fold_groups)))
    if folds < 2:
        return [], "not checked: the images form fewer than two groups (patients or identical images)"
    probs = out_of_fold_probabilities(np.asarray(vectors)[rows], labels, folds, fold_groups, seed, cancel)
    checked = np.isfinite(probs).all(axis=1)
    if len(np.unique(labels[checked])) < 2:
        return [], "not checked: the groups (patients) leave a single class to learn from"
    kept, labels, probs = [s for s, ok in zip(kept, checked, strict=True) if ok], labels[checked], probs[checked]
    flagged = find_label_issues(labels, probs, filter_by="prune_by_noise_rate")
    scores = get_label_quality_scores(labels, probs)
    issues = [LabelIssue(s.path, s.label, kept_names[int(np.argmax(p))], round(float(q), 4), round(float(p.max()), 4),
                         (subsets or {}).get(s.path))
              for s, p, q, bad in zip(kept, probs, scores, flagged, strict=True) if bad]
    issues.sort(key=lambda i: (i.score, i.path))
    return issues, METHOD.format(folds=folds)


__all__ = ["FOLDS", "PCA_DIMS", "PCA_FROM", "MULTILABEL_NOT_CHECKED", "LabelIssue", "label_issues", "out_of_fold_probabilities"]
