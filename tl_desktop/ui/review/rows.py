"""What the review widgets show: plain rows of near-duplicate pairs and likely label errors.

Built from the data-quality audit's report (``core.insight.audit.AuditReport.to_dict()``) or, for Evaluate's
confusion cells, from the evaluation's per-image answers. Paths are relative to the data root (posix), the
form the project's review decisions take.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

PART_WORDS = {"train": "training", "val": "validation", "test": "test"}
KIND_WORDS = {"exact": "the same image", "near": "nearly the same image", "same-study": "same DICOM study",
              "same-series": "same DICOM series", "same-patient": "same patient (DICOM)"}


@dataclass(frozen=True)
class PairRow:
    """Two files that show (nearly) the same picture, and the part of the split each is in."""

    left: str
    right: str
    similarity: float | None
    kind: str = "near"
    left_split: str | None = None
    right_split: str | None = None
    crosses_splits: bool = False

    def kind_words(self) -> str:
        return KIND_WORDS.get(self.kind, self.kind.replace("-", " "))


@dataclass(frozen=True)
class IssueRow:
    """One image to review: its given label, the label the data suggest, and how strongly (0-1, higher:
    more likely wrong)."""

    path: str
    given: str
    suggested: str
    score: float | None = None
    note: str = ""


def relative(path: str, root: str | Path | None) -> str:
    """``path`` relative to the data root (posix), as the review stores it; unchanged when already relative."""
    if root is not None and Path(path).is_absolute():
        try:
            return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            return Path(path).as_posix()
    return PurePosixPath(path.replace("\\", "/")).as_posix()


def _first(data: dict[str, Any], *names: str) -> Any:
    return next((data[n] for n in names if n in data), None)


def pair_row(data: dict[str, Any], root: str | Path | None = None) -> PairRow:
    """A ``PairRow`` of one near-duplicate entry of the audit's ``to_dict()``."""
    left, right = _first(data, "path_a", "left", "a"), _first(data, "path_b", "right", "b")
    similarity = _first(data, "similarity", "score")
    return PairRow(relative(str(left), root), relative(str(right), root),
                   float(similarity) if similarity is not None else None, str(data.get("kind") or "near"),
                   _first(data, "split_a", "left_split"), _first(data, "split_b", "right_split"),
                   bool(data.get("crosses_splits")))


def issue_row(data: dict[str, Any], root: str | Path | None = None) -> IssueRow:
    """An ``IssueRow`` of one label-issue entry of the audit's ``to_dict()``."""
    score = _first(data, "score", "suspicion")
    return IssueRow(relative(str(data["path"]), root), str(_first(data, "given_label", "given", "label")),
                    str(_first(data, "suggested_label", "suggested")), float(score) if score is not None else None)


def rows_of(report: Any, root: str | Path | None = None) -> tuple[list[PairRow], list[IssueRow]]:
    """(pairs, issues) of an audit report (its ``to_dict()``, or that dict itself); crossing pairs first."""
    data = report.to_dict() if hasattr(report, "to_dict") else dict(report)
    pairs = [pair_row(p, root) for p in data.get("near_duplicates") or []]
    pairs.sort(key=lambda p: (not p.crosses_splits, -(p.similarity or 0.0)))
    return pairs, [issue_row(i, root) for i in data.get("label_issues") or []]


__all__ = ["PairRow", "IssueRow", "PART_WORDS", "relative", "rows_of", "pair_row", "issue_row"]
