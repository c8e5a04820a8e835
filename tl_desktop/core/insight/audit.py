"""Data audit: the same picture twice (across splits: leakage), shared DICOM identifiers, and likely label errors.

Every image gets a pretrained embedding (ImageNet ``tf_efficientnet_lite0`` at ``AUDIT_IMAGE_SIZE`` px, through
``models.embeddings.extract``: disk-cached by file content, so a second audit computes none) and the embedding of
its mirror image. Two images are a near-duplicate pair when the cosine similarity of their L2-normalised
embeddings, or of one's and the other's mirror's, reaches ``NEAR_THRESHOLD`` (calibrated in docs/audit.md: JPEG
re-encoding, resizing, small crops, brightness changes and flips above it; different images of one class below).
A match is confirmed by the pixels: the Pearson correlation of 24 px grey thumbnails of the two evaluation crops
(either mirrored; one side also at 5 and 10 % centre crops, so cropped copies line up) must reach
``PIXEL_THRESHOLD``, which removes most look-alikes in sets of very similar images.
Identical files and pixels come from ``data.identity`` (kind "exact"). DICOM PatientID, StudyInstanceUID and
SeriesInstanceUID shared by files in different parts are compared as keyed hashes (``data.split``), never shown.
Likely label errors: ``insight.label_issues`` (out-of-fold linear probe + confident learning).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tl_desktop.core.config import DataSource
from tl_desktop.core.data.identity import identical_images
from tl_desktop.core.data.scan import SUBSETS, Sample, ScanReport
from tl_desktop.core.data.split import Split
from tl_desktop.core.events import CancelToken, Notice, Progress
from tl_desktop.core.insight.label_issues import LabelIssue, label_issues

AUDIT_MODEL = "tf_efficientnet_lite0"
AUDIT_IMAGE_SIZE = 96
NEAR_THRESHOLD = 0.95        # cosine similarity of the embeddings; calibration in docs/audit.md
PIXEL_THRESHOLD = 0.90       # correlation of the grey thumbnails that confirms an embedding match
THUMB_SIDE = 24              # px of those thumbnails
ZOOMS = (0.0, 0.05, 0.10)    # centre crops (share of the side cut) a thumbnail is also compared at
SEARCH_CHUNK = 1024          # query rows per block of similarities (1,024 x 50,000 float32: 205 MB)
DICOM_KEYS = {"PatientID": "same patient", "StudyInstanceUID": "same study", "SeriesInstanceUID": "same series"}


@dataclass
class DuplicatePair:
    """Two files that hold the same picture: ``exact`` (same bytes or pixels) or ``near`` (embeddings)."""

    a: str                       # relative path (ScanReport.root), the smaller of the two
    b: str
    similarity: float            # cosine similarity (1.0 for exact)
    kind: str                    # "exact" | "near"
    subset_a: str | None = None  # train | val | test, when a split is known
    subset_b: str | None = None
    flipped: bool = False        # the match was with the mirror image of one side
    pixel_similarity: float | None = None  # thumbnail correlation that confirmed a near pair

    @property
    def crosses_splits(self) -> bool:
        """Leakage: the two sides are in different parts."""
        return self.subset_a is not None and self.subset_b is not None and self.subset_a != self.subset_b

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "crosses_splits": self.crosses_splits}


@dataclass
class SharedIdentifier:
    """Files of one patient, study or series (a DICOM element's value) found in more than one part."""

    kind: str                    # "same patient" | "same study" | "same series"
    key: str                     # keyed hash, e.g. "PatientID#3f2a..." (never the value)
    paths: list[str]
    subsets: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "crosses_splits": True}


@dataclass
class AuditReport:
    """What ``audit`` found, and how: the JSON the CLI prints and the window shows."""

    source: str
    root: str
    images: int
    split_rule: str
    model: str
    image_size: int
    threshold: float
    near_duplicates: list[DuplicatePair]
    shared_identifiers: list[SharedIdentifier]
    label_issues: list[LabelIssue]
    label_method: str
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def leaks(self) -> list[DuplicatePair]:
        return [p for p in self.near_duplicates if p.crosses_splits]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "root": self.root, "images": self.images, "split_rule": self.split_rule,
            "model": self.model, "image_size": self.image_size, "threshold": self.threshold,
            "counts": {"near_duplicates": len(self.near_duplicates), "crossing_splits": len(self.leaks),
                       "shared_identifiers": len(self.shared_identifiers), "label_issues": len(self.label_issues)},
            "near_duplicates": [p.to_dict() for p in self.near_duplicates],
            "shared_identifiers": [s.to_dict() for s in self.shared_identifiers],
            "label_issues": [i.to_dict() for i in self.label_issues],
            "label_method": self.label_method, "seconds": self.seconds,
        }


# --- embeddings ---------------------------------------------------------------------------------------------


def _mirrored(model):
    """The backbone seeing each image mirrored left-right (its own cache key: the weights are named apart)."""
    import torch

    class Mirrored(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.model = inner
            self.default_cfg = inner.default_cfg

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            return self.model.forward_features(torch.flip(x, dims=[-1]))

        def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
            return self.model.forward_head(x, pre_logits=pre_logits)

    return Mirrored(model).eval()


def embed(paths: Sequence[Path], shas: Sequence[str], *, image_size: int = AUDIT_IMAGE_SIZE,
          callback: Callable | None = None, cancel: CancelToken | None = None) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised embeddings of the images and of their mirror images (rows in the order of ``paths``).

    Raises:
        UnreadableImage: a file can no longer be decoded.
        Cancelled: the token was set.
    """
    from tl_desktop.core.models.catalog import create_model, data_config
    from tl_desktop.core.models.embeddings import extract

    net = create_model(AUDIT_MODEL, weights="pretrained")
    cfg = data_config(net, image_size)
    out = []
    for model in (net, _mirrored(net)):
        vectors, _ = extract(model, cfg, list(paths), list(shas), callback=callback, cancel=cancel)
        out.append(_normalised(vectors))
    return out[0], out[1]


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# --- near-duplicates ----------------------------------------------------------------------------------------


def similar_pairs(vectors: np.ndarray, mirrored: np.ndarray | None = None, threshold: float = NEAR_THRESHOLD,
                  cancel: CancelToken | None = None) -> dict[tuple[int, int], tuple[float, bool]]:
    """Index pairs (i < j) whose cosine similarity reaches ``threshold``: (similarity, matched as mirror).

    ``vectors`` and ``mirrored`` are L2-normalised, so a block of query rows times the images is a block of
    cosine similarities (float32 BLAS; about 4x faster than scikit-learn's brute-force radius search, which
    returned the same pairs). The images against themselves need only the upper triangle; the mirror images
    are compared with every image.
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    found: dict[tuple[int, int], tuple[float, bool]] = {}
    if len(x) < 2:
        return found
    queries = [(x, False)] + ([(np.ascontiguousarray(mirrored, dtype=np.float32), True)] if mirrored is not None
                              else [])
    for query, flipped in queries:
        for start in range(0, len(query), SEARCH_CHUNK):
            if cancel is not None:
                cancel.raise_if_cancelled()
            first = 0 if flipped else start  # rows before ``start`` were compared with these as queries already
            block = query[start:start + SEARCH_CHUNK] @ x[first:].T
            rows, cols = np.nonzero(block >= threshold)
            _keep_best(found, rows + start, cols + first, block[rows, cols], flipped)
    return found


def _keep_best(found: dict[tuple[int, int], tuple[float, bool]], rows: np.ndarray, cols: np.ndarray,
               sims: np.ndarray, flipped: bool) -> None:
    """Record each (row, col) pair of different images under (min, max), keeping its highest similarity."""
    for i, j, sim in zip(rows.tolist(), cols.tolist(), sims.tolist(), strict=True):
        if i == j:
            continue
        key = (i, j) if i < j else (j, i)
        if sim > found.get(key, (-2.0, False))[0]:
            found[key] = (sim, flipped)


def thumbnails(paths: Sequence[Path], *, image_size: int = AUDIT_IMAGE_SIZE,
               cancel: CancelToken | None = None) -> np.ndarray:
    """Zero-mean, unit-length ``THUMB_SIDE`` px grey thumbnails of the images' evaluation crops, as
    (n, 2, len(ZOOMS), side, side): [as is, mirrored] x the centre crops of ``ZOOMS`` (share of the side cut).

    Read from the prepared-image cache the embeddings were computed from (a file is decoded only when its entry
    was evicted); the mirror image is cropped from the mirrored entry, so it lines up pixel for pixel. Colour
    channels are averaged and each crop area-averaged down in one batch (one matrix product per side; equal to
    PIL's BOX filter when the crop is a whole multiple of the side, 96 -> 24).
    """
    from concurrent.futures import ThreadPoolExecutor

    from tl_desktop.core.data.prepared import prepare, read_entry
    from tl_desktop.core.models.catalog import data_config, eval_pipeline

    if not paths:
        return np.zeros((0, 2, len(ZOOMS), THUMB_SIDE, THUMB_SIDE), dtype=np.float32)
    pipe = eval_pipeline(data_config(AUDIT_MODEL, image_size))
    side = pipe.crop.size
    entries = prepare(list(paths), pipe.spec, cancel=cancel)

    def both(item: tuple[Path, Path]) -> np.ndarray:
        grey = _grey(read_entry(item[0], Path(item[1]), pipe.spec))
        return np.stack([_centre_crop(grey, side), _centre_crop(grey[:, ::-1], side)])

    with ThreadPoolExecutor(max_workers=4) as pool:
        grey = np.stack(list(pool.map(both, zip(entries, paths, strict=True))))  # (n, 2, side, side)
    boxes = [_box_matrix(side, THUMB_SIDE, zoom) for zoom in ZOOMS]
    thumbs = np.stack([box @ grey @ box.T for box in boxes], axis=2)
    thumbs -= thumbs.mean(axis=(-2, -1), keepdims=True)
    return thumbs / np.maximum(np.linalg.norm(thumbs, axis=(-2, -1), keepdims=True), 1e-6)


def _grey(image: np.ndarray) -> np.ndarray:
    """(H, W) float32 grey of an (H, W, 3) uint8 image: the mean of the channels (a small matrix product, several
    times faster than ``mean(axis=2)`` on an interleaved array)."""
    h, w, _ = image.shape
    return (image.reshape(-1, 3) @ np.full(3, 1 / 3, dtype=np.float32)).reshape(h, w)


def _centre_crop(grey: np.ndarray, side: int) -> np.ndarray:
    """The evaluation centre crop of an (H, W) image, as ``datasets.CentreCrop`` takes it (zero padding first
    where the image is smaller)."""
    h, w = grey.shape
    if side > h or side > w:
        padded = np.zeros((max(h, side), max(w, side)), dtype=grey.dtype)
        top, left = (side - h) // 2 if side > h else 0, (side - w) // 2 if side > w else 0
        padded[top:top + h, left:left + w] = grey
        grey, (h, w) = padded, padded.shape
    top, left = int(round((h - side) / 2.0)), int(round((w - side) / 2.0))
    return grey[top:top + side, left:left + side]


def _box_matrix(size: int, out: int, zoom: float = 0.0) -> np.ndarray:
    """(out, size) weights: each output pixel the area-weighted mean of the input pixels it covers, over the
    central part of the side that is left when ``zoom`` of it is cut (half on each end)."""
    edges = size * zoom / 2 + np.arange(out + 1) * (size * (1 - zoom) / out)
    lo, hi = edges[:-1, None], edges[1:, None]
    pixels = np.arange(size)[None, :]
    overlap = np.clip(np.minimum(hi, pixels + 1) - np.maximum(lo, pixels), 0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def pixel_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two images' thumbnail stacks (``thumbnails``: (2, zooms, side, side)): the best of one
    image as it is against the other as it is or mirrored, each at every zoom (so a copy cropped by up to 10 %
    still lines up)."""
    return float(_stack_scores(a[None], b[None])[0])


def _stack_scores(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``pixel_similarity`` of row-aligned batches of thumbnail stacks (n, 2, zooms, side, side)."""
    plain_a, plain_b = a[:, 0, 0], b[:, 0, 0]
    one_way = np.einsum("nij,nmzij->nmz", plain_a, b).reshape(len(a), -1).max(axis=1)
    other_way = np.einsum("nmzij,nij->nmz", a, plain_b).reshape(len(a), -1).max(axis=1)
    return np.maximum(one_way, other_way)


def _pixel_scores(pairs: list[tuple[int, int]], confirm: Callable[[list[int]], np.ndarray]) -> dict[tuple[int, int], float]:
    """``pixel_similarity`` of each candidate pair, with the thumbnails of only the images in a pair, in one batch."""
    involved = sorted({i for pair in pairs for i in pair})
    thumbs = np.asarray(confirm(involved), dtype=np.float32)
    row = {i: k for k, i in enumerate(involved)}
    scores = _stack_scores(thumbs[[row[i] for i, _ in pairs]], thumbs[[row[j] for _, j in pairs]])
    return dict(zip(pairs, scores.tolist(), strict=True))


def near_duplicates(samples: Sequence[Sample], vectors: np.ndarray, mirrored: np.ndarray | None = None, *,
                    subsets: Mapping[str, str] | None = None, threshold: float = NEAR_THRESHOLD,
                    confirm: Callable[[list[int]], np.ndarray] | None = None,
                    pixel_threshold: float = PIXEL_THRESHOLD, cancel: CancelToken | None = None) -> list[DuplicatePair]:
    """Exact (``data.identity``: same bytes or pixels) and near-duplicate pairs of ``samples``.

    Args:
        samples: scanned files, rows of ``vectors``/``mirrored`` in the same order.
        vectors, mirrored: L2-normalised embeddings of the images and of their mirror images (``embed``).
        subsets: relative path -> train | val | test (a split's assignment), to mark pairs that cross parts.
        threshold: cosine similarity from which two different files are a candidate pair.
        confirm: sample indices -> their ``thumbnails``; a candidate pair counts when its ``pixel_similarity``
            reaches ``pixel_threshold`` (None: embeddings alone decide).

    Returns:
        Pairs crossing parts first, then by similarity (highest first).
    """
    subsets = subsets or {}
    exact: set[tuple[str, str]] = set()
    pairs: list[DuplicatePair] = []
    for group in identical_images(samples):
        paths = [s.path for s in group]
        for i, a in enumerate(paths):
            for b in paths[i + 1:]:
                exact.add((a, b))
                pairs.append(DuplicatePair(a, b, 1.0, "exact", subsets.get(a), subsets.get(b)))
    found = {k: v for k, v in similar_pairs(vectors, mirrored, threshold, cancel).items()
             if tuple(sorted((samples[k[0]].path, samples[k[1]].path))) not in exact}
    pixel_scores = _pixel_scores(list(found), confirm) if confirm is not None and found else {}
    for (i, j), (sim, flipped) in found.items():
        pixels = pixel_scores.get((i, j))
        if pixels is not None and pixels < pixel_threshold:
            continue
        a, b = sorted((samples[i].path, samples[j].path))
        pairs.append(DuplicatePair(a, b, round(min(sim, 1.0), 4), "near", subsets.get(a), subsets.get(b), flipped,
                                   None if pixels is None else round(pixels, 4)))
    return sorted(pairs, key=lambda p: (not p.crosses_splits, -p.similarity, p.a, p.b))


# --- DICOM identifiers --------------------------------------------------------------------------------------


def shared_identifiers(report: ScanReport, subsets: Mapping[str, str],
                       cancel: CancelToken | None = None) -> list[SharedIdentifier]:
    """Patients, studies and series (DICOM PatientID, StudyInstanceUID, SeriesInstanceUID) whose files are in
    more than one part, whatever the split was grouped by. Values are compared as keyed hashes (the
    installation's secret, as the split's groups), so no output holds them."""
    from concurrent.futures import ThreadPoolExecutor

    from tl_desktop.core.data.decode import is_dicom_header, read_dicom_value, read_head
    from tl_desktop.core.data.split import _hashed, _salt

    def values(sample: Sample) -> dict[str, str | None]:
        path = report.abspath(sample)
        try:
            dicom = path.suffix.lower() == ".dcm" or is_dicom_header(read_head(path))
        except OSError:
            return {}
        return {k: read_dicom_value(path, k) for k in DICOM_KEYS} if dicom else {}

    samples = [s for s in report.samples if s.path in subsets]
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = list(pool.map(values, samples))
    if cancel is not None:
        cancel.raise_if_cancelled()
    if not any(found):
        return []
    salt = _salt()
    members: dict[tuple[str, str], list[str]] = defaultdict(list)
    for sample, tags in zip(samples, found, strict=True):
        for keyword, value in tags.items():
            if value:
                members[(keyword, _hashed(keyword, value, salt))].append(sample.path)
    out = []
    for (keyword, key), paths in sorted(members.items()):
        parts = sorted({subsets[p] for p in paths}, key=SUBSETS.index)
        if len(parts) > 1:
            out.append(SharedIdentifier(DICOM_KEYS[keyword], key, sorted(paths), parts))
    return out


# --- the audit ----------------------------------------------------------------------------------------------


def split_rule(source: DataSource, split: Split | Mapping[str, str] | None) -> str:
    """Which division into parts the audit reports, in the words the user reads."""
    if split is not None and not isinstance(split, Split):
        return "the given assignment of files to parts"
    if split is not None or source.split:
        return "the stored split"
    grouping = {None: "not grouped"}.get(source.group_by, f"grouped by {source.group_by}")
    return (f"a new split as training makes it: seed {source.seed}, validation {source.val_fraction:.0%}, "
            f"test {source.test_fraction:.0%}, {grouping}")


def audit(source: DataSource, split: Split | Mapping[str, str] | None = None, callback: Callable | None = None,
          cancel: CancelToken | None = None, *, threshold: float = NEAR_THRESHOLD,
          image_size: int = AUDIT_IMAGE_SIZE) -> AuditReport:
    """Near-duplicates (with leakage across parts), shared DICOM identifiers and likely label errors.

    The files and parts are those training would use (``data.split.split_source``), unless ``split`` (a
    ``Split`` or relative path -> part) is given.

    Raises:
        DataError: the images are unusable, or the split settings are.
        UnreadableImage: a file can no longer be decoded.
        Cancelled: the token was set.
    """
    from tl_desktop.core.data.split import split_source

    emit = callback or (lambda event: None)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    emit(Progress("audit: scanning", 0, 1))
    report, made = split_source(source)
    chosen = split if split is not None else made
    subsets = dict(chosen.assignment if isinstance(chosen, Split) else chosen)
    samples = report.samples
    seconds["scan"] = time.perf_counter() - start
    if cancel is not None:
        cancel.raise_if_cancelled()
    emit(Progress("audit: embeddings", 0, len(samples)))
    vectors, mirrored = embed([report.abspath(s) for s in samples], [s.sha256 for s in samples],
                              image_size=image_size, callback=callback, cancel=cancel)
    seconds["embeddings"] = time.perf_counter() - start - seconds["scan"]
    emit(Progress("audit: near-duplicates", 0, 1))
    mark = time.perf_counter()
    paths = [report.abspath(s) for s in samples]

    def confirm(idx: list[int]) -> np.ndarray:
        begun = time.perf_counter()
        thumbs = thumbnails([paths[i] for i in idx], image_size=image_size, cancel=cancel)
        seconds["pixel_check"] = time.perf_counter() - begun  # part of near_duplicates
        return thumbs

    pairs = near_duplicates(samples, vectors, mirrored, subsets=subsets, threshold=threshold, cancel=cancel,
                            confirm=confirm)
    seconds["near_duplicates"] = time.perf_counter() - mark
    mark = time.perf_counter()
    shared = shared_identifiers(report, subsets, cancel)
    seconds["dicom_identifiers"] = time.perf_counter() - mark
    emit(Progress("audit: label issues", 0, 1))
    mark = time.perf_counter()
    groups = chosen.groups if isinstance(chosen, Split) else None
    issues, method = label_issues(samples, vectors, subsets=subsets, groups=groups, seed=source.seed, cancel=cancel)
    seconds["label_issues"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - start
    emit(Progress("audit: done", 1, 1))
    emit(Notice(f"Audit of {len(samples)} images: {len(pairs)} duplicate pairs "
                f"({sum(p.crosses_splits for p in pairs)} across parts), {len(issues)} likely label errors"))
    return AuditReport(report.source, report.root, len(samples), split_rule(source, split), AUDIT_MODEL,
                       image_size, threshold, pairs, shared, issues, method, {k: round(v, 2) for k, v in seconds.items()})


__all__ = ["AUDIT_IMAGE_SIZE", "AUDIT_MODEL", "NEAR_THRESHOLD", "PIXEL_THRESHOLD", "ZOOMS", "pixel_similarity", "thumbnails", "AuditReport", "DuplicatePair", "LabelIssue",
           "SharedIdentifier", "audit", "embed", "label_issues", "near_duplicates", "shared_identifiers",
           "similar_pairs", "split_rule"]
