"""The user's review decisions on a data set, and how a scan and a split take them.

Decisions are made in the window's data-quality review (near-duplicate pairs, likely label errors) and stored
in the project (``project_file.Project.review``); the user's files are never moved or renamed. Every path is
relative to the data root (posix separators), as in ``scan.Sample.path``.

- ``excluded``: path -> ``Exclusion`` (why: a near-duplicate of another file, a label error, or the user's
  choice). The file is left out of the next split and training.
- ``relabelled``: path -> the label it takes instead of its folder's or CSV's (a project class or a new class
  name, checked like a class folder name).
- ``together``: groups of paths that must land in one part of the split (on top of any patient grouping).
- ``kept``: paths whose given label the user confirmed; nothing changes for training, the review shows them
  as done.

``apply_review`` is the one place the decisions change a scan; ``split.split_source`` calls it, so training,
the transfer check, the label budget and server jobs use them alike, and the run's manifest records what
was applied (``applied``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tl_desktop.core.data import multilabel
from tl_desktop.core.errors import DataError

REASONS = ("near-duplicate", "label-error", "user")
MAX_DECISIONS = 100_000  # per kind; a data set of 50,000 images needs fewer
MAX_GROUP_FILES = 1_000  # files in one keep-together group
MAX_PATH_CHARS = 1_024
MAX_LABEL_CHARS = 120
_BAD_NAME = re.compile(r'[<>:"/\\|?*\x00-\x1f]')  # what a class folder name may not hold on any system
_KEYS = ("excluded", "relabelled", "together", "kept")


@dataclass(frozen=True)
class Exclusion:
    """Why a file is left out; ``of`` is the other file of a near-duplicate pair."""

    reason: str = "user"
    of: str | None = None

    def words(self) -> str:
        if self.reason == "near-duplicate":
            return f"near-duplicate of {self.of}" if self.of else "near-duplicate"
        return "label error" if self.reason == "label-error" else "excluded by the user"


def path_problem(path: Any) -> str | None:
    """Why ``path`` is not a file path inside the data root (relative, no ``..``), or None."""
    if not isinstance(path, str) or not path:
        return f"{_shown(path)} is not a file path"
    if len(path) > MAX_PATH_CHARS or "\x00" in path:
        return f"{_shown(path)} is not a usable file path"
    parts = re.split(r"[/\\]", path)
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path) or any(p in ("", ".", "..") for p in parts):
        return f"{_shown(path)} is not a path inside the data folder"
    return None


def label_problem(label: Any) -> str | None:
    """Why ``label`` cannot be a class name (as a class folder's name could not), or None."""
    if not isinstance(label, str) or not label.strip():
        return f"{_shown(label)} is not a class name"
    if len(label) > MAX_LABEL_CHARS or _BAD_NAME.search(label) or label != label.strip() or label in (".", ".."):
        return (f"{_shown(label)} cannot be a class name (at most {MAX_LABEL_CHARS} characters, none of "
                '< > : " / \\ | ? *, no leading or trailing space)')
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


@dataclass
class Review:
    """The decisions, in the order they were made (see the module docstring)."""

    excluded: dict[str, Exclusion] = field(default_factory=dict)
    relabelled: dict[str, str] = field(default_factory=dict)
    together: list[list[str]] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.excluded) + len(self.relabelled) + len(self.together) + len(self.kept)

    # --- decisions ------------------------------------------------------------------------------------
    def exclude(self, path: str, reason: str = "user", of: str | None = None) -> None:
        """Leave ``path`` out (replacing a relabel or keep of it). Raises DataError for a bad path or reason."""
        _raise(path_problem(path) or (None if of is None else path_problem(of))
               or (None if reason in REASONS else f"{_shown(reason)} is not a reason ({', '.join(REASONS)})"))
        self._forget(path)
        self.excluded[path] = Exclusion(reason, of)
        self._bounded()

    def relabel(self, path: str, label: str) -> None:
        """Give ``path`` the label ``label`` from the next split. Raises DataError for a bad path or name."""
        _raise(path_problem(path) or label_problem(label))
        self._forget(path)
        self.relabelled[path] = label
        self._bounded()

    def keep(self, path: str) -> None:
        """The given label of ``path`` is right: undo any exclusion or relabel of it and mark it reviewed."""
        _raise(path_problem(path))
        self._forget(path)
        self.kept.append(path)
        self._bounded()

    def keep_together(self, paths: Iterable[str]) -> None:
        """``paths`` land in one part of the split; groups sharing a file become one group."""
        group = list(dict.fromkeys(paths))
        _raise(next((p for p in map(path_problem, group) if p), None))
        if len(group) < 2:
            return
        rest = []
        for other in self.together:  # the stored groups are disjoint: one pass joins every overlapping one
            if set(other) & set(group):
                group += other
            else:
                rest.append(other)
        group = list(dict.fromkeys(group))
        if len(group) > MAX_GROUP_FILES:
            raise DataError(f"a keep-together group may hold at most {MAX_GROUP_FILES:,} files")
        self.together = [*rest, group]
        self._bounded()

    def undo(self, kind: str, key: str | int) -> None:
        """Take back one decision: ``("excluded"|"relabelled"|"kept", path)`` or ``("together", index)``."""
        if kind == "together":
            del self.together[int(key)]
        elif kind == "kept":
            self.kept.remove(str(key))
        else:
            getattr(self, kind).pop(str(key), None)

    def _forget(self, path: str) -> None:
        self.excluded.pop(path, None)
        self.relabelled.pop(path, None)
        self.kept = [p for p in self.kept if p != path]

    def _bounded(self) -> None:
        _raise(_size_problem(self.excluded, self.relabelled, self.together, self.kept))

    def together_with(self, path: str) -> list[str] | None:
        return next((g for g in self.together if path in g), None)

    # --- (de)serialising ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"excluded": {p: {"reason": e.reason, "of": e.of} for p, e in self.excluded.items()},
                "relabelled": dict(self.relabelled), "together": [list(g) for g in self.together],
                "kept": list(self.kept)}

    @classmethod
    def from_dict(cls, data: Any) -> Review:
        """Read a stored review section, checked (``review_problem``). Raises DataError naming the problem."""
        _raise(review_problem(data))
        data = data or {}
        excluded = {p: Exclusion(e["reason"], e.get("of")) for p, e in (data.get("excluded") or {}).items()}
        return cls(excluded, dict(data.get("relabelled") or {}), [list(g) for g in data.get("together") or []],
                   list(data.get("kept") or []))


def _raise(problem: str | None) -> None:
    if problem:
        raise DataError(problem)


def _size_problem(excluded: Any, relabelled: Any, together: Any, kept: Any) -> str | None:
    for name, items in (("excluded files", excluded), ("relabelled files", relabelled),
                        ("keep-together groups", together), ("kept files", kept)):
        if len(items) > MAX_DECISIONS:
            return f"{len(items):,} {name} is more than the {MAX_DECISIONS:,} a review may hold"
    if together and sum(len(g) if isinstance(g, list) else 0 for g in together) > MAX_DECISIONS:
        return f"the keep-together groups list more than {MAX_DECISIONS:,} files"
    return None


def review_problem(data: Any) -> str | None:
    """What is wrong with a stored review section (types, bounds, paths, class names), or None. Sizes are
    checked before any entry, so a hostile file of millions of entries is refused at once."""
    if data is None:
        return None
    if not isinstance(data, dict):
        return f"the review is {_shown(data)}, not an object"
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        return f"the review has unknown key(s) {', '.join(unknown)[:60]}"
    kinds = {"excluded": dict, "relabelled": dict, "together": list, "kept": list}
    wrong = next((k for k, t in kinds.items() if data.get(k) is not None and not isinstance(data[k], t)), None)
    if wrong:
        return f"the review's '{wrong}' is {_shown(data[wrong])}"
    excluded, relabelled = data.get("excluded") or {}, data.get("relabelled") or {}
    together, kept = data.get("together") or [], data.get("kept") or []
    problem = _size_problem(excluded, relabelled, together, kept)
    for path, entry in excluded.items() if problem is None else ():
        problem = path_problem(path) or _exclusion_problem(entry)
        if problem:
            break
    return problem or _relabel_problem(relabelled) or _together_problem(together) or next(
        (p for p in map(path_problem, kept) if p), None)


def _exclusion_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict) or set(entry) - {"reason", "of"}:
        return f"an exclusion is {_shown(entry)}, not a reason and a file"
    if entry.get("reason") not in REASONS:
        return f"an exclusion's reason is {_shown(entry.get('reason'))}, not one of {', '.join(REASONS)}"
    return None if entry.get("of") is None else path_problem(entry["of"])


def _relabel_problem(relabelled: dict[Any, Any]) -> str | None:
    for path, label in relabelled.items():
        if problem := path_problem(path) or label_problem(label):
            return problem
    return None


def _together_problem(together: list[Any]) -> str | None:
    for group in together:
        if not isinstance(group, list) or not 2 <= len(group) <= MAX_GROUP_FILES:
            return f"a keep-together group is {_shown(group)}, not a list of 2 to {MAX_GROUP_FILES:,} files"
        if problem := next((p for p in map(path_problem, group) if p), None):
            return problem
    return None


# --- applying the decisions to a scan and a split -----------------------------------------------------


def apply_review(report: Any, review: Review) -> tuple[Any, dict[str, Any]]:
    """The scan with the decisions applied, and the record of what was applied (for the run's manifest).

    Excluded files leave the samples, relabelled ones take their new label (classes and counts follow),
    keep-together groups keep the files still present (``applied["together"]``, for ``merge_together``).
    Decisions about files the scan no longer has are not applied and counted in ``not_found``.
    """
    present = {s.path: s for s in report.samples}
    dropped = [p for p in review.excluded if p in present]
    samples = [s if s.path not in review.relabelled else replace(s, **multilabel.relabelled(s, review.relabelled[s.path]))
               for s in report.samples if s.path not in review.excluded]
    kept = {s.path for s in samples}
    relabelled = [(p, present[p].label, new) for p, new in review.relabelled.items()
                  if p in kept and present[p].label != new]
    together = [g for g in ([p for p in group if p in kept] for group in review.together) if len(g) > 1]
    counts = Counter(multilabel.count_labels(samples))
    if getattr(report, "is_multilabel", False):
        counts = Counter({c: counts.get(c, 0) for c in report.classes} | dict(counts))

    def within(groups: list[list[str]]) -> list[list[str]]:
        return [g for g in ([p for p in group if p in kept] for group in groups) if len(g) > 1]

    reviewed = replace(report, samples=samples, classes=sorted(counts), counts=dict(sorted(counts.items())),
                       duplicates=within(report.duplicates), conflicts=within(report.conflicts),
                       identical_pixels=within(report.identical_pixels))
    mentioned = set(review.excluded) | set(review.relabelled) | {p for g in review.together for p in g}
    applied = {
        "excluded": [{"path": p, "reason": review.excluded[p].reason, "of": review.excluded[p].of} for p in dropped],
        "relabelled": [{"path": p, "from": old, "to": new} for p, old, new in relabelled],
        "together": together,
        "counts": {"excluded": len(dropped), "relabelled": len(relabelled), "together_groups": len(together),
                   "together_files": sum(len(g) for g in together),
                   "not_found": len(mentioned - set(present))},
    }
    return reviewed, applied


def merge_together(groups: dict[str, str | None], together: Sequence[Sequence[str]]) -> dict[str, str | None]:
    """The split groups (path -> group or None) with each keep-together group joined into one group: its files
    and every file sharing a group with one of them end up with one key."""
    if not together:
        return groups
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def key_of(path: str) -> str:
        group = groups.get(path)
        return f"group:{group}" if group is not None else f"file:{path}"

    for members in together:
        first = find(key_of(members[0]))
        for path in members[1:]:
            parent[find(key_of(path))] = first
    merged = dict(groups)
    for path in {*groups, *(p for members in together for p in members)}:
        if (key := key_of(path)) in parent:
            merged[path] = f"together:{find(key)}"
    return merged


__all__ = ["REASONS", "MAX_DECISIONS", "Exclusion", "Review", "review_problem", "path_problem", "label_problem",
           "apply_review", "merge_together"]
