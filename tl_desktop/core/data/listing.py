"""Finding the files of a data set: the class-folder walk, with its rules for links, and the CSV listing.

Both give one ``Entry`` per file found (or row listed); an entry that cannot be used carries its reason and
ends up among the scan's skipped files. Each real file is counted once, under the class of the path as listed.

Symbolic links in the class-folder layout (the least surprising reading of a data set that uses them):

- The real folders are walked first; a link to a folder is followed afterwards, once per real folder, so a
  file's own location wins over any link to it.
- A link to another class's folder, or to a file in another class folder, is skipped with that reason: its
  images are counted in their own class. Following it would relabel them (``ln -s ../1 0/more`` would move
  class 1 into class 0); counting both would make each one a label conflict and lose it from both classes.
- A link to a folder that contains it (a loop) is skipped, and so is a link to a folder already walked.
- A link to a file or folder elsewhere inside the data folder, in the same class or in no class, is followed.
- Links that leave the data folder are followed and named in one ``ScanFinding`` ("outside-data-folder"):
  people assemble data sets from other drives this way, but such a data set is not self-contained.
- A file reached twice (a link next to its target, two links to one file) is counted at its own location, or
  at its first listing when only links reach it; the other listings are skipped as "the same file as ...".

CSV rows follow the same rules where they apply: the CSV gives the labels, so the same file (by its real
path) listed with two labels is a conflict and skipped on every row, listed again with one label it is
counted once; rows naming images outside the CSV's folder are used and named in a ``ScanFinding``.
"""

from __future__ import annotations

import csv as csvlib
import io
import os
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tl_desktop.core.errors import DataError
from tl_desktop.core.events import CancelToken, ScanFinding
from tl_desktop.core.fsutil import csv_cell

__all__ = ["Entry", "Listing", "MultiLabel", "walk_folder", "read_csv", "SYSTEM_NAMES", "SEPARATOR", "split_labels"]

SYSTEM_NAMES = frozenset({"thumbs.db", "desktop.ini", "ehthumbs.db", "__macosx", "$recycle.bin"})
SEPARATOR = ";"  # between the labels of one image in a multi-label CSV's label column
_TRUE, _FALSE = frozenset({"1", "1.0", "true", "yes"}), frozenset({"0", "0.0", "false", "no"})
_RESERVED = frozenset({"path", "label", "group"})
MAX_LABEL_LENGTH = 200  # longer label names are refused: they end up in file names, tables and ONNX metadata


def split_labels(text: str) -> tuple[str, ...]:
    """The distinct labels of a multi-label cell (``a;b``), sorted; empty for an empty cell (no finding)."""
    return tuple(sorted({_nfc(part.strip()) for part in text.split(SEPARATOR) if part.strip()}))


@dataclass
class Entry:
    """One file found (or listed in the CSV), before it is examined."""

    path: Path
    rel: str
    label: str | None
    group: str | None = None
    reason: str | None = None
    real: str | None = None  # the resolved path (None: nothing to examine)
    linked: bool = False     # reached through a link (its own or a folder's)
    findings: tuple[str, ...] | None = None  # a multi-label listing's labels of the file (empty: no finding)


@dataclass
class Listing:
    """The entries of a data set, what the listing noticed, and listings that give one file two labels."""

    entries: list[Entry]
    findings: list[ScanFinding] = field(default_factory=list)
    conflicts: list[list[str]] = field(default_factory=list)
    multilabel: MultiLabel | None = None  # how a CSV gave several labels per file; None: one label per file


@dataclass(frozen=True)
class MultiLabel:
    """How a CSV lists several labels (findings) per image: ``columns`` (one 0/1 column per label, in the
    header's order), or None: the label column holds the labels separated by ``;`` (empty: no finding)."""

    columns: tuple[str, ...] | None = None

    def words(self) -> str:
        if self.columns is None:
            return f"several labels per image, separated by '{SEPARATOR}' in the label column (empty: no finding)"
        return f"one 0/1 column per label ({', '.join(self.columns)})"


def _posix_rel(path: Path | str, root: Path) -> str:
    try:
        rel = Path(path).relative_to(root)
    except ValueError:
        rel = Path(os.path.relpath(path, root))
    return rel.as_posix()  # the real name, undecodable bytes as surrogates (fsutil writes them losslessly)


def _hidden(parts: Iterable[str]) -> bool:
    return any(p.startswith(".") or p.lower() in SYSTEM_NAMES for p in parts)


def _within(folder: str, path: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def _outside_finding(count: int, first: str, what: str) -> ScanFinding:
    return ScanFinding("outside-data-folder", f"{count} image{'s' if count != 1 else ''} {what} (first: {first}); "
                       "they are used, but copying or moving the data folder will not take them along")


# --- the class-folder walk ------------------------------------------------------------------------------


class _Walk:
    """One walk of a class-folder data set (see the module docstring for the rules)."""

    def __init__(self, root: Path, cancel: CancelToken | None, loose: bool = False):
        self.root, self.root_s, self.cancel, self.loose = root, str(root), cancel, loose
        self.entries: list[Entry] = []
        self.walked: dict[str, str] = {}  # real folder -> its listed path
        self.links: list[Path] = []       # folder links, followed after the real folders

    def run(self) -> Listing:
        self._walk_tree(self.root, self.root_s, linked=False)
        while self.links:
            self._follow(self.links.pop(0))
        _count_once(self.entries, "reached again through a link")
        outside = [e for e in self.entries if e.reason is None and e.real and not _within(self.root_s, e.real)]
        findings = [_outside_finding(len(outside), f"'{outside[0].rel}' -> '{outside[0].real}'",
                                     "are reached through links that leave the data folder")] if outside else []
        return Listing(self.entries, findings)

    def _walk_tree(self, top: Path, top_real: str, linked: bool) -> None:
        """Depth first, each folder's files in name order before its sub-folders (as ``os.walk`` lists them)."""
        stack = [(top, top_real)]
        while stack:
            if self.cancel is not None:
                self.cancel.raise_if_cancelled()
            folder, real = stack.pop()
            if real in self.walked:  # two links that lead into one outside folder
                self._skip_folder(folder, f"folder already scanned as '{self.walked[real]}'")
                continue
            self.walked[real] = _posix_rel(folder, self.root)
            try:
                items = sorted(os.scandir(folder), key=lambda item: item.name)
            except OSError as exc:
                self._skip_folder(folder, f"folder cannot be opened: {exc.strerror or exc}")
                continue
            subfolders = []
            for item in items:
                path = Path(folder, item.name)
                if item.is_symlink():
                    if item.is_dir():
                        self.links.append(path)
                    else:
                        self._file(path, os.path.realpath(path), linked=True, own_link=True)
                elif item.is_dir():
                    subfolders.append((path, os.path.join(real, item.name)))
                else:
                    self._file(path, os.path.join(real, item.name), linked=linked)
            stack.extend(reversed(subfolders))

    def _label(self, path: Path) -> tuple[str, str | None, list[str]]:
        rel = _posix_rel(path, self.root)
        parts = rel.split("/")
        return rel, _nfc(parts[0]) if len(parts) > 1 else None, parts

    def _file(self, path: Path, real: str, *, linked: bool, own_link: bool = False) -> None:
        rel, label, parts = self._label(path)
        entry = Entry(path, rel, label, real=real, linked=linked)
        if _hidden(parts):
            entry.reason = "not an image (hidden or system file)"
        elif label is None and not self.loose:
            entry.reason = "not in a class folder (put each image in a folder named after its class)"
        elif own_link:
            entry.reason = self._file_link_reason(path, real, label)
        self.entries.append(entry)

    def _skip_folder(self, folder: Path, reason: str) -> None:
        rel = _posix_rel(folder, self.root)
        self.entries.append(Entry(folder, rel, None, reason=reason))

    def _target(self, link: Path) -> str:
        """Where the link points, one hop, resolved from its real folder (the class it names lies there)."""
        try:
            return os.path.normpath(os.path.join(os.path.realpath(link.parent), os.readlink(link)))
        except OSError:
            return os.path.realpath(link)

    def _class_of(self, link: Path, real: str, *, is_file: bool) -> tuple[str | None, str]:
        """(class folder the link's target lies in or is, or None; the target relative to the root)."""
        for target in (self._target(link), real):
            if _within(self.root_s, target):
                parts = Path(target).relative_to(self.root).parts
                inside = len(parts) >= (2 if is_file else 1)
                return (_nfc(parts[0]) if inside and not _hidden(parts[:1]) else None), "/".join(parts)
        return None, real

    def _file_link_reason(self, link: Path, real: str, label: str) -> str | None:
        if not os.path.exists(real):
            return "broken link: the file it points to does not exist"
        target_class, target = self._class_of(link, real, is_file=True)
        if target_class is not None and target_class != label:
            return f"link to a file in class '{target_class}' ('{target}'): it is counted there, once"
        return None

    def _follow(self, link: Path) -> None:
        rel, label, parts = self._label(link)
        real = os.path.realpath(link)
        own_class = label or _nfc(parts[0])
        target_class, target = self._class_of(link, real, is_file=False)
        if _hidden(parts):
            reason = "not an image (hidden or system file)"
        elif _within(real, os.path.realpath(link.parent)):
            reason = f"link loop: it points to '{target}', a folder that contains it"
        elif target_class is not None and target_class != own_class:
            reason = f"link to the folder of class '{target_class}': its images are counted in that class, once"
        elif real in self.walked:
            reason = f"link to a folder already scanned ('{self.walked[real]}'): its images are counted once"
        else:
            self._walk_tree(link, real, linked=True)
            return
        self.entries.append(Entry(link, rel, label, reason=reason))


def _count_once(entries: list[Entry], why: str) -> None:
    """Skip every listing of a real file but one: its own location, else its first listing."""
    first: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if entry.reason is not None or entry.real is None:
            continue
        j = first.setdefault(entry.real, i)
        if j == i:
            continue
        keep, drop = (i, j) if entries[j].linked and not entry.linked else (j, i)
        entries[drop].reason = f"the same file as '{entries[keep].rel}' ({why})"
        first[entry.real] = keep


def walk_folder(root: Path, cancel: CancelToken | None = None, to_label: str | None = None) -> Listing:
    """Every file below ``root`` (resolved); the first folder level names the class.

    ``to_label`` (a ``labels.LAYOUTS`` value) lists images to be labelled in the app as entries without a
    label: ``"as-listed"`` the files directly in ``root``, ``"images"`` every file (folder names are not
    classes then).
    """
    listing = _Walk(root, cancel, loose=to_label is not None).run()
    if to_label == "images":
        for entry in listing.entries:
            entry.label = None
    return listing


# --- the CSV listing ------------------------------------------------------------------------------------


class _Dialect(csvlib.excel):
    """RFC 4180 (``""`` inside a quoted field is one quote); only the delimiter is detected."""


def _dialect(text: str) -> type[csvlib.Dialect]:
    """The excel (RFC 4180) dialect with the header line's delimiter: comma, semicolon or tab.

    ``csv.Sniffer`` alone is not used: on a header without quotes it turns ``doublequote`` off, so a quoted
    field ``"x""y,z"`` would read as ``x"y`` plus a stray cell.
    """
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    delimiter = max(counts, key=counts.get) if any(counts.values()) else ","
    return type("_Dialect", (_Dialect,), {"delimiter": delimiter})


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _csv_columns(header: list[str], name: str) -> dict[str, int]:
    cols: dict[str, int] = {}
    for i, h in enumerate(header):
        cols.setdefault(h.strip().lower(), i)
    if "path" not in cols:
        found = ",".join(h.strip() for h in header)[:80] or "nothing"
        raise DataError(f"{name}: the first row must be the header 'path,label[,group]' (found '{found}')")
    return cols


def _label_columns(header: list[str], rows: list[list[str]], cols: dict[str, int], name: str,
                   wanted: list[str] | tuple[str, ...] | None) -> MultiLabel | None:
    """The multi-label reading of a CSV: the 0/1 columns asked for (``wanted``), or, with no label column, every
    other column whose values are all 0 or 1; the ``;``-separated label column when a value holds a ``;``;
    None: one label per image.

    Raises:
        DataError: a wanted column is missing, or there is neither a label column nor a 0/1 column.
    """
    names = {h.strip().lower(): h.strip() for h in header}
    if wanted:
        missing = [c for c in wanted if c.strip().lower() not in cols]
        if missing:
            raise DataError(f"{name} has no column '{missing[0]}' (its columns: {', '.join(names.values())[:120]})")
        return MultiLabel(tuple(names[c.strip().lower()] for c in wanted))
    if "label" in cols:
        index = cols["label"]
        several = any(index < len(row) and SEPARATOR in row[index] for row in rows)
        return MultiLabel() if several else None
    binary = [names[key] for key, i in sorted(cols.items(), key=lambda kv: kv[1])
              if key not in _RESERVED and key and _all_binary(rows, i)]
    if not binary:
        found = ",".join(h.strip() for h in header)[:80] or "nothing"
        raise DataError(f"{name}: the first row must be the header 'path,label[,group]', or name one 0/1 column per "
                        f"label (found '{found}')")
    return MultiLabel(tuple(binary))


def _all_binary(rows: list[list[str]], index: int) -> bool:
    values = {row[index].strip().lower() for row in rows if index < len(row) and row[index].strip()}
    return bool(values) and values <= (_TRUE | _FALSE)


def read_csv(csv_path: Path, root: Path, to_label: bool = False,
             label_columns: list[str] | tuple[str, ...] | None = None) -> Listing:
    """One entry per non-blank data row; rows that cannot be used carry their reason. With ``to_label``, a
    row with an empty label is an image to be labelled in the app (an entry without a label), not a fault.

    Several labels per image (``Listing.multilabel``): ``label_columns`` names one 0/1 column per label; without
    it, a label column whose values hold ``;`` lists each image's labels, and a CSV without a label column
    takes its 0/1 columns as labels. Each entry's ``findings`` are then its labels (empty: no finding) and its
    ``label`` those joined by ``;``.

    Raises:
        DataError: the CSV cannot be read, is empty, is not valid CSV or has no ``path,label`` header.
    """
    try:
        text = _read_text(csv_path)
        rows = list(csvlib.reader(io.StringIO(text, newline=""), _dialect(text)))
    except OSError as exc:
        raise DataError(f"cannot read {csv_path.name}: {exc.strerror or exc}") from exc
    except csvlib.Error as exc:
        raise DataError(f"{csv_path.name} is not a valid CSV file ({exc}); save it again as CSV") from exc
    if not rows:
        raise DataError(f"{csv_path.name} is empty: it needs the header 'path,label[,group]' and one row per image")
    cols = _csv_columns(rows[0], csv_path.name)
    multi = None if to_label and not label_columns else _label_columns(rows[0], rows[1:], cols, csv_path.name,
                                                                        label_columns)
    if multi is None and "label" not in cols:
        found = ",".join(h.strip() for h in rows[0])[:80]
        raise DataError(f"{csv_path.name}: the first row must be the header 'path,label[,group]' (found '{found}')")
    read = _Row(csv_path.name, root, to_label, multi, {c: cols[c.lower()] for c in (multi.columns or ())}
                if multi else {})
    entries: list[Entry] = []
    lines: dict[int, int] = {}  # entry index -> CSV line
    for line, row in enumerate(rows[1:], start=2):
        cells = {k: (row[i].strip() if i < len(row) else "") for k, i in cols.items()}
        if any(cells.values()):
            lines[len(entries)] = line
            entries.append(read.entry(cells, row, line))
    conflicts = _csv_repeats(entries, lines)
    outside = [(lines[i], e) for i, e in enumerate(entries)
               if e.reason is None and e.real and not _within(str(root), e.real)]
    findings = [_outside_finding(len(outside), f"line {outside[0][0]}, '{outside[0][1].rel}'",
                                 f"listed in {csv_path.name} are outside its folder")] if outside else []
    return Listing(entries, findings, conflicts, multi)


@dataclass(frozen=True)
class _Row:
    """How one CSV row becomes an entry (the CSV's name and folder, and its label reading)."""

    name: str
    root: Path
    to_label: bool
    multi: MultiLabel | None
    columns: dict[str, int]  # a 0/1 label column -> its index

    def entry(self, cells: dict[str, str], row: list[str], line: int) -> Entry:
        raw = csv_cell(cells.get("path", ""))
        label, findings, problem = self._labels(cells, row, line)
        group = cells.get("group") or None
        if not raw or problem or not (label or self.to_label or self.multi):
            why = problem or f"CSV line {line}: empty path or label"
            return Entry(self.root / self.name, f"{self.name}:{line}", None, reason=why)
        path = Path(os.path.normpath(self.root / raw.replace("\\", "/")))
        entry = Entry(path, _posix_rel(path, self.root), _nfc(label) if label else None, group,
                      real=os.path.realpath(path), findings=findings)
        if not path.is_file():
            entry.reason = "listed in the CSV but the file does not exist"
            entry.real = None
        return entry

    def _labels(self, cells: dict[str, str], row: list[str], line: int) -> tuple[str, tuple[str, ...] | None,
                                                                                 str | None]:
        """(label, findings or None, why the row cannot be used or None)."""
        if self.multi is None:
            return csv_cell(cells.get("label", "")), None, None
        if self.multi.columns is None:
            findings = split_labels(csv_cell(cells.get("label", "")))
        else:
            present = []
            for column, i in self.columns.items():
                value = row[i].strip().lower() if i < len(row) else ""
                if value not in _TRUE | _FALSE:
                    shown = value[:20] or "empty"
                    return "", None, f"CSV line {line}: column '{column}' is {shown!r}, not 0 or 1"
                if value in _TRUE:
                    present.append(_nfc(column))
            findings = tuple(sorted(present))
        long = next((f for f in findings if len(f) > MAX_LABEL_LENGTH), None)
        if long:
            return "", None, f"CSV line {line}: a label is longer than {MAX_LABEL_LENGTH} characters"
        return SEPARATOR.join(findings), findings, None


def _csv_repeats(entries: list[Entry], lines: dict[int, int]) -> list[list[str]]:
    """Rows naming one real file: with two labels all are skipped (a conflict), with one label all but the first.

    Returns the conflicts, each as the skipped entries' paths.
    """
    rows: dict[str, list[int]] = defaultdict(list)
    for i, entry in enumerate(entries):
        if entry.reason is None and entry.real is not None:
            rows[entry.real].append(i)
    conflicts = []
    for indices in rows.values():
        if len(indices) < 2:
            continue
        first = entries[indices[0]]
        labels = {entries[i].label for i in indices}
        for i in indices[1:]:
            entries[i].rel = f"{entries[i].rel} (line {lines[i]})"
        if len(labels) > 1:
            listed = ", ".join(f"{lines[i]} ('{entries[i].label}')" for i in indices)
            for i in indices:
                entries[i].reason = f"label conflict: the same file is listed on CSV lines {listed}"
            conflicts.append([entries[i].rel for i in indices])
            continue
        for i in indices[1:]:
            same = "" if entries[i].path == first.path else f" as '{first.rel}'"
            entries[i].reason = f"listed again on CSV line {lines[i]} (first on line {lines[indices[0]]}{same})"
    return conflicts
