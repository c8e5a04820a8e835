"""Scan a labelled image data set, report every file, and split it without leakage.

Two layouts: one folder per class (images at any depth below the class folder), or a CSV with the header
``path,label[,group]`` whose paths are relative to the CSV's folder. Every file found ends up either in
``ScanReport.samples`` or in ``ScanReport.skipped`` with a reason. Decoding lives in ``core/imageio.py``,
the per-file result cache in ``core/scancache.py``.
"""

from __future__ import annotations

import csv as csvlib
import hashlib
import hmac
import os
import random
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tl_desktop.core.events import CancelToken
from tl_desktop.core.imageio import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_SIDE,
    IMAGE_SUFFIXES,
    ImageDecodeError,
    load_image,
    read_dicom_value,
)
from tl_desktop.core.scancache import CachedResult, Progress, examine_files

__all__ = [
    "IMAGE_SUFFIXES", "DEFAULT_MAX_PIXELS", "DEFAULT_MIN_SIDE", "DataError", "ImageDecodeError", "load_image",
    "Sample", "SkippedFile", "ScanReport", "scan", "Split", "make_split", "leakage", "group_values",
]

SUBSETS = ("train", "val", "test")
IMBALANCE_RATIO = 5.0
MIN_CLASS_IMAGES = 5
_SYSTEM_NAMES = frozenset({"thumbs.db", "desktop.ini", "ehthumbs.db", "__macosx", "$recycle.bin"})


class DataError(Exception):
    """The data set or CSV cannot be used at all; ``str()`` is one readable line."""


@dataclass
class Sample:
    path: str  # relative to ScanReport.root, posix separators
    label: str
    sha256: str
    width: int
    height: int
    group: str | None = None  # the CSV's group column, or None


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
    warnings: list[str]
    unusable: str | None
    files_seen: int
    source: str  # the scanned folder or CSV file (absolute)

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
        return cls(**fields)


@dataclass
class _Entry:
    """One file found (or listed in the CSV), before it is examined."""

    path: Path
    rel: str
    label: str | None
    group: str | None = None
    reason: str | None = None


# --- finding files ----------------------------------------------------------------------------------------


def _posix_rel(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(os.path.relpath(path, root))
    text = rel.as_posix()
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _hidden(parts: Iterable[str]) -> bool:
    return any(p.startswith(".") or p.lower() in _SYSTEM_NAMES for p in parts)


def _check_cancel(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()


def _walk_folder(root: Path, cancel: CancelToken | None) -> list[_Entry]:
    """Every file below ``root``; the first folder level names the class. Symlinked folders are followed once."""
    entries: list[_Entry] = []
    seen_dirs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        _check_cancel(cancel)
        real = os.path.realpath(dirpath)
        if real in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            rel = _posix_rel(path, root)
            parts = rel.split("/")
            entry = _Entry(path, rel, unicodedata.normalize("NFC", parts[0]) if len(parts) > 1 else None)
            if _hidden(parts):
                entry.reason = "not an image (hidden or system file)"
            elif entry.label is None:
                entry.reason = "not in a class folder (put each image in a folder named after its class)"
            entries.append(entry)
    return entries


def _sniff_dialect(text: str) -> type[csvlib.Dialect] | csvlib.Dialect:
    first = text.splitlines()[0] if text else ""
    try:
        return csvlib.Sniffer().sniff(first, delimiters=",;\t")
    except csvlib.Error:
        return csvlib.excel


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _csv_columns(header: list[str], name: str) -> dict[str, int]:
    cols = {h.strip().lower(): i for i, h in enumerate(header)}
    if "path" not in cols or "label" not in cols:
        found = ",".join(h.strip() for h in header)[:80] or "nothing"
        raise DataError(f"{name}: the first row must be the header 'path,label[,group]' (found '{found}')")
    return cols


def _read_csv(csv_path: Path, root: Path) -> list[_Entry]:
    """One entry per non-blank data row; rows that cannot be used carry their reason."""
    try:
        text = _read_text(csv_path)
    except OSError as exc:
        raise DataError(f"cannot read {csv_path.name}: {exc.strerror or exc}") from exc
    rows = list(csvlib.reader(text.splitlines(), _sniff_dialect(text)))
    if not rows:
        raise DataError(f"{csv_path.name} is empty: it needs the header 'path,label[,group]' and one row per image")
    cols = _csv_columns(rows[0], csv_path.name)
    entries: list[_Entry] = []
    listed: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        cells = {k: (row[i].strip() if i < len(row) else "") for k, i in cols.items()}
        if not any(cells.values()):
            continue
        entries.append(_csv_entry(cells, line, root, listed, csv_path.name))
    return entries


def _csv_entry(cells: dict[str, str], line: int, root: Path, listed: dict[str, int], name: str) -> _Entry:
    raw, label, group = cells.get("path", ""), cells.get("label", ""), cells.get("group") or None
    if not raw or not label:
        return _Entry(root / name, f"{name}:{line}", None, reason=f"CSV line {line}: empty path or label")
    path = Path(os.path.normpath(root / raw.replace("\\", "/")))
    entry = _Entry(path, _posix_rel(path, root), unicodedata.normalize("NFC", label), group)
    if entry.rel in listed:
        entry.reason = f"listed again on CSV line {line} (first on line {listed[entry.rel]})"
        entry.rel = f"{entry.rel} (line {line})"
    elif not path.is_file():
        entry.reason = "listed in the CSV but the file does not exist"
    listed.setdefault(entry.rel, line)
    return entry


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
    entries: list[_Entry], results: dict[int, CachedResult], min_side: int
) -> tuple[list[Sample], list[SkippedFile]]:
    samples: list[Sample] = []
    skipped: list[SkippedFile] = []
    for i, entry in enumerate(entries):
        result = results.get(i)
        reason = entry.reason or (result.error if result else "could not be examined")
        if reason is None and result and min(result.width, result.height) < min_side:
            reason = f"too small: {result.width} x {result.height} px (each side needs at least {min_side} px)"
        if reason is not None or result is None or result.sha256 is None:
            skipped.append(SkippedFile(entry.rel, reason or "unreadable"))
        else:
            samples.append(Sample(entry.rel, str(entry.label), result.sha256, result.width, result.height,
                                  entry.group))
    return samples, skipped


def _content_groups(samples: list[Sample]) -> tuple[list[list[str]], list[list[str]], dict[str, str]]:
    """(duplicates within a class, label conflicts, path -> skip reason for conflicting files)."""
    by_sha: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_sha[s.sha256].append(s)
    duplicates, conflicts, reasons = [], [], {}
    for group in by_sha.values():
        if len(group) < 2:
            continue
        paths = sorted(s.path for s in group)
        if len({s.label for s in group}) == 1:
            duplicates.append(paths)
            continue
        conflicts.append(paths)
        for s in group:
            other = next(o for o in group if o.label != s.label)
            reasons[s.path] = f"label conflict: identical to '{other.path}', which is labelled '{other.label}'"
    return sorted(duplicates), sorted(conflicts), reasons


def _warnings(counts: dict[str, int], empty_classes: list[str]) -> list[str]:
    out = [f"class folder '{c}' has no usable images" for c in empty_classes]
    for label, n in counts.items():
        if n < MIN_CLASS_IMAGES:
            out.append(f"class '{label}' has only {n} usable image{'s' if n != 1 else ''}; "
                       f"at least {MIN_CLASS_IMAGES} are needed for a meaningful split (20+ is better)")
    if len(counts) >= 2:
        big, small = max(counts, key=counts.get), min(counts, key=counts.get)
        if counts[big] > IMBALANCE_RATIO * counts[small]:
            out.append(f"classes are imbalanced: '{big}' has {counts[big]} images, '{small}' only "
                       f"{counts[small]} ({counts[big] / counts[small]:.0f}x); class weighting will be used")
    return out


def _unusable(counts: dict[str, int], entries: list[_Entry], root: Path, csv_path: Path | None) -> str | None:
    where = csv_path.name if csv_path else str(root)
    if not entries:
        return f"no files found in {where}" + ("" if csv_path else ": it needs one folder per class")
    if not csv_path and all(e.label is None for e in entries):
        return f"no class folders in {where}: put the images in one sub-folder per class"
    if not counts:
        return f"no usable images in {where} (see the skipped files)"
    if len(counts) == 1:
        return f"only one class ('{next(iter(counts))}') has usable images; at least 2 classes are needed"
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

    Raises:
        DataError: the folder or CSV does not exist, or the CSV has no valid header.
        Cancelled: the token was set.
    """
    root, csv_path = _resolve_source(source, csv)
    entries = _read_csv(csv_path, root) if csv_path else _walk_folder(root, cancel)
    todo = {i: e.path for i, e in enumerate(entries) if e.reason is None}
    results = examine_files(todo, max_pixels=max_pixels, progress=progress, cancel=cancel, cache=cache)
    samples, skipped = _to_samples(entries, results, min_side)
    duplicates, conflicts, reasons = _content_groups(samples)
    skipped += [SkippedFile(s.path, reasons[s.path]) for s in samples if s.path in reasons]
    samples = [s for s in samples if s.path not in reasons]
    counts = dict(sorted(Counter(s.label for s in samples).items()))
    folders = {e.label for e in entries if e.label is not None and not csv_path}
    empty = sorted(folders - set(counts))
    return ScanReport(
        root=str(root), samples=samples, skipped=sorted(skipped, key=lambda s: s.path), classes=list(counts),
        counts=counts, duplicates=duplicates, conflicts=conflicts, warnings=_warnings(counts, empty),
        unusable=_unusable(counts, entries, root, csv_path), files_seen=len(entries),
        source=str(csv_path or root),
    )




# --- splits ---------------------------------------------------------------------------------------------


@dataclass
class Split:
    """A reproducible train/val/test assignment of a report's files.

    ``groups`` (relative path -> group) records the grouping used, so ``leakage`` can re-check it without
    the files; groups taken from DICOM elements are salted hashes, never the values.
    """

    seed: int
    val_fraction: float
    test_fraction: float
    group_by: str | None
    assignment: dict[str, str]  # relative path -> "train" | "val" | "test"
    groups: dict[str, str] | None = field(default=None)

    def samples(self, report: ScanReport, subset: str) -> list[Sample]:
        if subset not in SUBSETS:
            raise ValueError(f"unknown subset '{subset}'; choose one of {', '.join(SUBSETS)}")
        return [s for s in report.samples if self.assignment.get(s.path) == subset]

    def counts(self, report: ScanReport | None = None) -> dict[str, Any]:
        """Files per subset; with a report, files per subset and class (``{"train": {"cat": 12}}``)."""
        if report is None:
            tally = Counter(self.assignment.values())
            return {s: tally.get(s, 0) for s in SUBSETS}
        return {s: dict(sorted(Counter(x.label for x in self.samples(report, s)).items())) for s in SUBSETS}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Split:
        return cls(int(d["seed"]), float(d["val_fraction"]), float(d["test_fraction"]), d.get("group_by"),
                   dict(d["assignment"]), dict(d["groups"]) if d.get("groups") is not None else None)


def _salt() -> bytes:
    """A per-installation secret for hashing DICOM-derived groups (kept in the user data folder)."""
    from tl_desktop.core.fsutil import atomic_write_bytes
    from tl_desktop.paths import data_dir

    path = data_dir() / "group-salt.key"
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except OSError:
        pass
    atomic_write_bytes(path, os.urandom(32))
    return path.read_bytes()


def _hashed(keyword: str, value: str, salt: bytes) -> str:
    digest = hmac.new(salt, f"{keyword}={value}".encode(), hashlib.sha256).hexdigest()
    return f"{keyword}#{digest[:16]}"


def _dicom_groups(report: ScanReport, keyword: str) -> dict[str, str | None]:
    from concurrent.futures import ThreadPoolExecutor

    from pydicom.datadict import tag_for_keyword

    if tag_for_keyword(keyword) is None:
        raise DataError(f"'{keyword}' is not a DICOM element keyword (e.g. PatientID, StudyInstanceUID)")
    salt = _salt()
    with ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 4) * 2)) as pool:
        values = list(pool.map(lambda s: read_dicom_value(report.abspath(s), keyword), report.samples))
    if not any(values):
        raise DataError(f"no file has the DICOM element {keyword}; choose another grouping")
    return {s.path: (_hashed(keyword, v, salt) if v else None) for s, v in zip(report.samples, values, strict=True)}


def group_values(report: ScanReport, group_by: str | None) -> dict[str, str | None]:
    """Relative path -> group for every sample (None: the file is its own group).

    Raises:
        DataError: unknown ``group_by``, bad regex, no CSV group column, or no file with the DICOM element.
    """
    if group_by is None:
        return {s.path: None for s in report.samples}
    kind, _, arg = group_by.partition(":")
    if kind == "csv" and not arg:
        if not any(s.group for s in report.samples):
            raise DataError("grouping by 'csv' needs a 'group' column in the CSV")
        salt = _salt()  # a CSV group column is often a patient ID: stored only as a keyed hash
        return {s.path: _hashed("group", s.group, salt) if s.group else None for s in report.samples}
    if kind == "dicom" and arg:
        return _dicom_groups(report, arg)
    if kind == "regex" and arg:
        try:
            pattern = re.compile(arg)
        except re.error as exc:
            raise DataError(f"invalid grouping pattern '{arg}': {exc}") from exc
        found = {s.path: pattern.search(s.path) for s in report.samples}
        return {p: (m.group(1) if m.re.groups else m.group(0)) if m else None for p, m in found.items()}
    raise DataError(f"unknown grouping '{group_by}'; use csv, dicom:<Keyword> or regex:<pattern>")


def _components(samples: list[Sample], groups: dict[str, str | None]) -> list[list[Sample]]:
    """Samples that must stay together: same group, or identical content (union-find)."""
    parent = list(range(len(samples)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, s in enumerate(samples):
        for key in (("sha", s.sha256), ("group", groups.get(s.path))):
            if key[1] is None:
                continue
            j = first.setdefault(key, i)  # type: ignore[arg-type]
            parent[find(i)] = find(j)
    members: dict[int, list[Sample]] = defaultdict(list)
    for i, s in enumerate(samples):
        members[find(i)].append(s)
    return sorted(members.values(), key=lambda c: min(s.path for s in c))


def _targets(counts: dict[str, int], val_fraction: float, test_fraction: float) -> dict[str, dict[str, int]]:
    """Images per subset and class; classes of 3+ images get at least one in each non-empty subset."""
    out: dict[str, dict[str, int]] = {s: {} for s in SUBSETS}
    for label, n in counts.items():
        test, val = round(n * test_fraction), round(n * val_fraction)
        if n >= 3:
            test, val = max(test, int(test_fraction > 0)), max(val, int(val_fraction > 0))
        elif n == 2:
            test, val = int(test_fraction > 0), int(test_fraction == 0 and val_fraction > 0)
        else:
            test, val = 0, 0
        while n - test - val < 1 and test + val > 0:
            if val >= test:
                val -= 1
            else:
                test -= 1
        out["train"][label], out["val"][label], out["test"][label] = n - test - val, val, test
    return out


def _score(need: dict[str, int], have: Counter, add: Counter) -> tuple[int, float]:
    fill = sum(min(k, max(0, need.get(c, 0) - have[c])) for c, k in add.items())
    over = sum(max(0, have[c] + k - need.get(c, 0)) - max(0, have[c] - need.get(c, 0)) for c, k in add.items())
    relative = sum((need.get(c, 0) - have[c]) / max(need.get(c, 0), 1) for c in add)
    return fill - over, relative


def make_split(
    report: ScanReport, *, val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 0,
    group_by: str | None = None,
) -> Split:
    """A stratified, seeded split that keeps each group and each set of identical files in one subset.

    Components (groups / identical files) are visited in a seeded random order and each goes to the subset
    whose per-class quota it fills best, so quotas are met exactly when every component is one file.

    Raises:
        DataError: unusable report, bad fractions or bad ``group_by``.
    """
    if not report.usable:
        raise DataError(str(report.unusable))
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise DataError("validation and test fractions must be >= 0 and add up to less than 1")
    groups = group_values(report, group_by)
    targets = _targets(report.counts, val_fraction, test_fraction)
    components = _components(report.samples, groups)
    random.Random(seed).shuffle(components)
    have: dict[str, Counter] = {s: Counter() for s in SUBSETS}
    assignment: dict[str, str] = {}
    for comp in components:
        add = Counter(s.label for s in comp)
        subset = max(("test", "val", "train"), key=lambda s: _score(targets[s], have[s], add))
        have[subset].update(add)
        assignment.update({s.path: subset for s in comp})
    ordered = {s.path: assignment[s.path] for s in report.samples}
    stored = {p: g for p, g in groups.items() if g is not None} if group_by else None
    return Split(seed, val_fraction, test_fraction, group_by, ordered, stored)


def _crossing(members: dict[str, list[str]], assignment: dict[str, str]) -> list[tuple[str, list[str], int]]:
    out = []
    for key, paths in sorted(members.items()):
        subsets = sorted({assignment[p] for p in paths if p in assignment}, key=SUBSETS.index)
        if len(subsets) > 1:
            out.append((key, subsets, len(paths)))
    return out


def leakage(report: ScanReport, split: Split) -> list[str]:
    """Readable problems: a group or identical files in more than one subset. ``[]`` when there are none."""
    problems: list[str] = []
    by_sha: dict[str, list[str]] = defaultdict(list)
    for s in report.samples:
        by_sha[s.sha256].append(s.path)
    for sha, subsets, n in _crossing(by_sha, split.assignment):
        paths = ", ".join(sorted(by_sha[sha])[:3]) + (", ..." if n > 3 else "")
        problems.append(f"{n} identical files are in {' and '.join(subsets)}: {paths}")
    groups = split.groups if split.groups is not None else (
        group_values(report, split.group_by) if split.group_by else {})
    by_group: dict[str, list[str]] = defaultdict(list)
    for path, group in groups.items():
        if group is not None:
            by_group[group].append(path)
    for group, subsets, n in _crossing(by_group, split.assignment):
        problems.append(f"group '{group}' ({n} files) is in {' and '.join(subsets)}")
    return problems
