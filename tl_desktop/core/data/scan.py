"""Scan a labelled image data set, report every file, and split it without leakage.

Two layouts: one folder per class (images at any depth below the class folder), or a CSV with the header
``path,label[,group]`` whose paths are relative to the CSV's folder. Every file found ends up either in
``ScanReport.samples`` or in ``ScanReport.skipped`` with a reason. Finding the files (the folder walk with
its rules for links, the CSV listing) lives in ``data/listing.py``, decoding in ``data/decode.py``,
the per-file result cache in ``data/scancache.py``, splits in ``data/split.py``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tl_desktop.core.data import multilabel
from tl_desktop.core.data.decode import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_SIDE,
)
from tl_desktop.core.data.identity import by_pixels_only, identical_images
from tl_desktop.core.data.labels import Labels
from tl_desktop.core.data.listing import Entry, read_csv, walk_folder
from tl_desktop.core.data.prepared import MAX_ASPECT
from tl_desktop.core.data.scancache import CachedResult, Progress, examine_files
from tl_desktop.core.errors import DataError
from tl_desktop.core.events import CancelToken, ScanFinding

__all__ = ["Sample", "SkippedFile", "ScanReport", "scan", "SUBSETS"]

SUBSETS = ("train", "val", "test")
IMBALANCE_RATIO = 5.0  # the scan warns above this ratio of largest to smallest class
WEIGHTING_RATIO = 3.0  # the engine weights the loss (balance "auto") above this ratio
MIN_CLASS_IMAGES = 5
MAX_CLASSES = 1000  # more classes than this are refused: outputs and metrics grow with the class count


@dataclass
class Sample:
    path: str  # relative to ScanReport.root, posix separators
    label: str
    sha256: str
    width: int
    height: int
    group: str | None = None  # the CSV's group column, or None
    pixel_sha256: str | None = None  # digest of the decoded pixels (data/pixelhash.py); None: JPEG, older scan
    findings: list[str] | None = None  # multi-label: the labels present, sorted ([]: no finding); see multilabel


@dataclass
class SkippedFile:
    path: str
    reason: str


@dataclass
class ScanReport:
    root: str
    samples: list[Sample]
    skipped: list[SkippedFile]
    classes: list[str]
    counts: dict[str, int]
    duplicates: list[list[str]]
    conflicts: list[list[str]]
    warnings: list[ScanFinding]
    unusable: str | None
    files_seen: int
    source: str  # the scanned folder or CSV file (absolute)
    identical_pixels: list[list[str]] = field(default_factory=list)  # of duplicates+conflicts: found by pixels
    unlabelled: list[Sample] = field(default_factory=list)  # images to label in the app (label ""; data/labels.py)
    task: str = "single-label"  # or "multi-label": ``classes`` are then findings, ``counts`` images per finding
    multilabel: dict[str, Any] | None = None  # a multi-label scan's ``multilabel.summary``

    @property
    def is_multilabel(self) -> bool:
        return self.task == "multi-label"

    def multilabel_lines(self) -> list[str]:
        """The sentences on a multi-label set (findings, frequencies, no finding, co-occurrence); none otherwise."""
        if not self.is_multilabel or self.multilabel is None:
            return []
        return multilabel.summary_lines(self.multilabel, self.counts, len(self.samples))

    def identical_text(self) -> str:
        """One sentence on identical images: how many groups, how many only the pixels showed."""
        total, pixels = len(self.duplicates) + len(self.conflicts), len(self.identical_pixels)
        if not total:
            return "No identical images (compared: file contents and decoded pixels)."
        files = f"{total - pixels} of identical files" if total > pixels else ""
        same = f"{pixels} of identical pixels in differently stored files" if pixels else ""
        detail = ", ".join(p for p in (files, same) if p)
        return f"{total} group{'s' if total != 1 else ''} of identical images ({detail})."

    @property
    def usable(self) -> bool:
        return self.unusable is None

    def abspath(self, sample_or_relpath: Sample | str) -> Path:
        rel = sample_or_relpath.path if isinstance(sample_or_relpath, Sample) else sample_or_relpath
        return Path(self.root, *PurePosixPath(rel).parts)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "usable": self.usable}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScanReport:
        fields = {k: v for k, v in d.items() if k != "usable"}
        fields["samples"] = [Sample(**s) for s in d["samples"]]
        fields["skipped"] = [SkippedFile(**s) for s in d["skipped"]]
        fields["unlabelled"] = [Sample(**s) for s in d.get("unlabelled") or []]
        fields["warnings"] = [ScanFinding.from_json(w) for w in d["warnings"]]  # plain sentences before v2
        return cls(**fields)


# --- finding the data set -------------------------------------------------------------------------------


def _resolve_source(source: str | Path, csv: str | Path | None) -> tuple[Path, Path | None]:
    """(root, csv path or None), or DataError when there is nothing to scan."""
    source = Path(source).expanduser()
    if csv is None and source.is_file() and source.suffix.lower() == ".csv":
        csv = source
    if csv is not None:
        csv_path = Path(csv).expanduser()
        if not csv_path.is_absolute() and not csv_path.is_file() and (source / csv_path).is_file():
            csv_path = source / csv_path
        if not csv_path.is_file():
            raise DataError(f"CSV file not found: {csv_path}")
        csv_path = csv_path.resolve()
        return csv_path.parent, csv_path
    if not source.exists():
        raise DataError(f"folder not found: {source}")
    if not source.is_dir():
        raise DataError(f"{source} is not a folder (give a folder of class folders, or a CSV file)")
    return source.resolve(), None


# --- the report -----------------------------------------------------------------------------------------


def _to_samples(
    entries: list[Entry], results: dict[int, CachedResult], min_side: int
) -> tuple[list[Sample], list[SkippedFile]]:
    samples: list[Sample] = []
    skipped: list[SkippedFile] = []
    for i, entry in enumerate(entries):
        result = results.get(i)
        reason = entry.reason or (result.error if result else "could not be examined")
        if reason is None and result:
            reason = _size_problem(result.width, result.height, min_side)
        if reason is not None or result is None or result.sha256 is None:
            skipped.append(SkippedFile(entry.rel, reason or "unreadable"))
        else:
            samples.append(Sample(entry.rel, entry.label or "", result.sha256, result.width, result.height,
                                  entry.group, result.pixel_sha256,
                                  None if entry.findings is None else list(entry.findings)))
    return samples, skipped


def _size_problem(width: int, height: int, min_side: int) -> str | None:
    """Why an image of this size cannot be trained on (too small, or more elongated than the prepared-image
    resize takes: ``prepared.MAX_ASPECT``), or None."""
    if min(width, height) < min_side:
        return f"too small: {width} x {height} px (each side needs at least {min_side} px)"
    if max(width, height) > MAX_ASPECT * min(width, height):
        return f"too elongated: {width} x {height} px (at most 1:{MAX_ASPECT}; crop it to the region of interest)"
    return None


def _content_groups(samples: list[Sample]) -> tuple[list[list[str]], list[list[str]], list[list[str]], dict[str, str]]:
    """(duplicates within a class, label conflicts, those of both found by pixels only, path -> skip reason for
    conflicting files). Identical means the same bytes or the same decoded pixels."""
    duplicates, conflicts, by_pixels, reasons = [], [], [], {}
    for group in identical_images(samples):
        paths = [s.path for s in group]
        if by_pixels_only(group):
            by_pixels.append(paths)
        if len({s.label for s in group}) == 1:
            duplicates.append(paths)
            continue
        conflicts.append(paths)
        for s in group:
            other = next(o for o in group if o.label != s.label)
            same = "identical to" if other.sha256 == s.sha256 else "the same pixels as"
            reasons[s.path] = f"label conflict: {same} '{other.path}', which is labelled '{other.label}'"
    return duplicates, conflicts, by_pixels, reasons


def _multilabel_warnings(counts: dict[str, int], n_images: int) -> list[ScanFinding]:
    out = []
    for label, n in counts.items():
        if n < MIN_CLASS_IMAGES:
            out.append(ScanFinding("few-images", f"finding '{label}' is present in only {n} usable image"
                                   f"{'s' if n != 1 else ''}; at least {MIN_CLASS_IMAGES} are needed for a "
                                   "meaningful split (20+ is better)", label))
        elif n == n_images:
            out.append(ScanFinding("few-images", f"finding '{label}' is present in every image: the model cannot "
                                   "learn to tell it apart; add images without it", label))
    return out


def _warnings(counts: dict[str, int], empty_classes: list[str]) -> list[ScanFinding]:
    out = [ScanFinding("empty-class", f"class folder '{c}' has no usable images", c) for c in empty_classes]
    for label, n in counts.items():
        if n < MIN_CLASS_IMAGES:
            out.append(ScanFinding("few-images", f"class '{label}' has only {n} usable image{'s' if n != 1 else ''}; "
                                   f"at least {MIN_CLASS_IMAGES} are needed for a meaningful split (20+ is better)",
                                   label))
    if len(counts) >= 2:
        big, small = max(counts, key=counts.get), min(counts, key=counts.get)
        if counts[big] > IMBALANCE_RATIO * counts[small]:
            out.append(ScanFinding(
                "imbalanced", f"classes are imbalanced: '{big}' has {counts[big]} images, '{small}' only "
                f"{counts[small]} ({counts[big] / counts[small]:.0f}x); training weights the loss automatically above "
                f"{WEIGHTING_RATIO:.0f}:1 (or choose a balanced sampler)", big))
    return out


def _unusable(counts: dict[str, int], entries: list[Entry], root: Path, csv_path: Path | None,
             labelling: bool = False, multi: bool = False) -> str | None:
    where = csv_path.name if csv_path else str(root)
    if multi and entries:
        return _multilabel_unusable(counts, where)
    if not entries:
        return f"no files found in {where}" + ("" if csv_path or labelling else ": it needs one folder per class")
    if labelling and len(counts) < 2:
        return (f"{sum(counts.values())} image{'s' if sum(counts.values()) != 1 else ''} labelled, in "
                f"{len(counts)} class{'es' if len(counts) != 1 else ''}: label images of at least 2 classes "
                "(the Label step) to train")
    if not csv_path and all(e.label is None for e in entries):
        return (f"no class folders in {where}: put the images in one sub-folder per class, or label them in the "
                "app (Data step: Label in the app)")
    if not counts:
        return f"no usable images in {where} (see the skipped files)"
    if len(counts) > MAX_CLASSES:
        hint = ("check its label column" if csv_path else
                f"each sub-folder of {where} is a class: choose the folder that holds the class folders")
        return f"{len(counts):,} classes have usable images; at most {MAX_CLASSES:,} are supported ({hint})"
    if len(counts) == 1:
        return f"only one class ('{next(iter(counts))}') has usable images; at least 2 classes are needed"
    return None


def _multilabel_unusable(counts: dict[str, int], where: str) -> str | None:
    present = {k: n for k, n in counts.items() if n}
    if not present:
        return f"no usable image of {where} shows any finding: a multi-label set needs images with each finding"
    if len(counts) > MAX_CLASSES:
        return f"{len(counts):,} findings are listed; at most {MAX_CLASSES:,} are supported (check the label column)"
    return None


def scan(
    source: str | Path,
    *,
    csv: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    cache: bool = True,
    labels: Labels | dict[str, Any] | None = None,
    label_columns: list[str] | tuple[str, ...] | None = None,
) -> ScanReport:
    """Examine every file of a data set and report what can be used.

    Args:
        source: a folder of class folders, or a CSV file.
        csv: a CSV file (``path,label[,group]``, paths relative to its folder) instead of class folders.
        max_pixels: files whose header claims more pixels are skipped without being decoded.
        min_side: images with a side shorter than this are skipped.
        progress: called as ``progress(done, total)`` from the calling thread.
        cancel: checked between files; raises ``Cancelled`` when set.
        cache: reuse and store per-file results in the user cache folder.
        labels: labels given in the app (``labels.Labels`` or its dict): its layout says which files are to
            label, its labels win over the folders' or the CSV's; the files still without one are listed in
            ``ScanReport.unlabelled``.
        label_columns: one 0/1 column per label of the CSV: a multi-label set (``listing.read_csv``, which
            also takes a ``;``-separated label column, or a CSV of 0/1 columns only, as multi-label).

    Raises:
        DataError: the folder or CSV does not exist, or the CSV has no valid header.
        Cancelled: the token was set.
    """
    root, csv_path = _resolve_source(source, csv)
    if isinstance(labels, dict):
        labels = Labels.from_dict(labels)
    layout = labels.layout if labels is not None else None
    if label_columns and not csv_path:
        raise DataError("label columns need a CSV file that lists the images (give --csv)")
    listing = read_csv(csv_path, root, layout is not None, label_columns) if csv_path else \
        walk_folder(root, cancel, layout)
    multi = listing.multilabel is not None
    entries = listing.entries
    for entry in entries if labels is not None else ():
        if entry.reason is None and entry.rel in labels.assigned:
            entry.label = labels.assigned[entry.rel]
    todo = {i: e.path for i, e in enumerate(entries) if e.reason is None}
    results = examine_files(todo, max_pixels=max_pixels, progress=progress, cancel=cancel, cache=cache)
    samples, skipped = _to_samples(entries, results, min_side)
    unlabelled = [s for s in samples if not s.label and s.findings is None]
    samples = [s for s in samples if s.label or s.findings is not None]
    duplicates, conflicts, by_pixels, reasons = _content_groups(samples)
    skipped += [SkippedFile(s.path, reasons[s.path]) for s in samples if s.path in reasons]
    samples = [s for s in samples if s.path not in reasons]
    counts = dict(sorted(Counter(s.label for s in samples).items()))
    if multi:
        listed = listing.multilabel.columns or ()
        counts = {**{c: 0 for c in sorted(listed)}, **multilabel.count_labels(samples)}
        counts = dict(sorted(counts.items()))
    given = labels.assigned if labels is not None else {}
    folders = {e.label for e in entries if e.label is not None and not csv_path and e.rel not in given}
    empty = sorted(folders - set(counts))
    return ScanReport(
        root=str(root), samples=samples, skipped=sorted(skipped, key=lambda s: s.path), classes=list(counts),
        counts=counts, duplicates=duplicates, conflicts=conflicts + listing.conflicts,
        warnings=(_multilabel_warnings(counts, len(samples)) if multi else _warnings(counts, empty)) + listing.findings,
        unusable=_unusable(counts, entries, root, csv_path, labels is not None, multi), files_seen=len(entries),
        source=str(csv_path or root), identical_pixels=by_pixels, unlabelled=unlabelled,
        task="multi-label" if multi else "single-label",
        multilabel=multilabel.summary(samples, list(counts), listing.multilabel.words()) if multi else None,
    )

