"""Scan a labelled image data set, report every file, and split it without leakage.

Two layouts: one folder per class (images at any depth below the class folder), or a CSV with the header
``path,label[,group]`` whose paths are relative to the CSV's folder. Every file found ends up either in
``ScanReport.samples`` or in ``ScanReport.skipped`` with a reason. Decoding lives in ``data/decode.py``,
the per-file result cache in ``data/scancache.py``, splits in ``data/split.py``.
"""

from __future__ import annotations

import csv as csvlib
import os
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tl_desktop.core.data.decode import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_SIDE,
)
from tl_desktop.core.data.scancache import CachedResult, Progress, examine_files
from tl_desktop.core.errors import DataError
from tl_desktop.core.events import CancelToken, ScanFinding

__all__ = ["Sample", "SkippedFile", "ScanReport", "scan", "SUBSETS"]

SUBSETS = ("train", "val", "test")
IMBALANCE_RATIO = 5.0  # the scan warns above this ratio of largest to smallest class
WEIGHTING_RATIO = 3.0  # the engine weights the loss (balance "auto") above this ratio
MIN_CLASS_IMAGES = 5
_SYSTEM_NAMES = frozenset({"thumbs.db", "desktop.ini", "ehthumbs.db", "__macosx", "$recycle.bin"})


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
    warnings: list[ScanFinding]
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
        fields["warnings"] = [ScanFinding.from_json(w) for w in d["warnings"]]  # plain sentences before v2
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
    return rel.as_posix()  # the real name, undecodable bytes as surrogates (fsutil writes them losslessly)


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

