"""Are a run's images still the ones it was trained on? Every file of ``manifest.json`` against the disk.

``check_files`` compares each file's SHA-256 with the manifest's, through the scan cache: a file whose path,
size and modification time are those of a cached scan result is not read again, so checking a run whose images
are unchanged costs one ``stat`` per file. ``check_run_images`` is what commands and views call before they use
a run: it raises ``RunIntegrityError`` (one line naming the first file and the count) unless the caller asked
to use the files as they are now.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from tl_desktop.core.data.decode import DEFAULT_MAX_PIXELS
from tl_desktop.core.data.scancache import examine_files
from tl_desktop.core.errors import RunIntegrityError
from tl_desktop.core.runs import load_config, load_manifest

# What each use of a run reads: the evaluation fits its temperature and threshold on val and reports on test;
# resuming trains on train, picks the best epoch on val and ends with the test metrics.
EVALUATED = ("val", "test")
ALL_SUBSETS = ("train", "val", "test")

EVALUATE_ADVICE = "scan the data again and train a new run, or evaluate on the current files with --allow-changed"
RESUME_ADVICE = "put the original files back, or scan the data again and train a new run"


@dataclass(frozen=True)
class FileProblem:
    """One image of the manifest that is not as it was: ``path`` relative to the data root, as in the manifest."""

    path: str
    kind: Literal["missing", "changed"]


def check_files(root: Path | str, files: Iterable[dict[str, Any]]) -> list[FileProblem]:
    """The manifest entries (``path``, ``sha256``) under ``root`` that are missing or whose bytes changed.

    Unchanged files (same path, size and mtime as in the scan cache) are not re-read; the others are hashed and
    their results stored in the cache as a scan would.
    """
    entries = list(files)
    paths = {i: Path(root, *PurePosixPath(f["path"]).parts) for i, f in enumerate(entries)}
    present = {i: p for i, p in paths.items() if p.is_file()}
    found = examine_files(present, max_pixels=DEFAULT_MAX_PIXELS) if present else {}
    problems = []
    for i, entry in enumerate(entries):
        if i not in present:
            problems.append(FileProblem(entry["path"], "missing"))
        elif i not in found or found[i].sha256 != entry["sha256"]:
            problems.append(FileProblem(entry["path"], "changed"))
    return problems


def describe(problems: list[FileProblem]) -> str:
    """``3 images of this run changed since it was trained (first: digit_1/1_004.png)``."""
    kinds = {p.kind for p in problems}
    many = len(problems) > 1
    if kinds == {"changed"}:
        what = "changed since it was trained"
    elif kinds == {"missing"}:
        what = "are missing" if many else "is missing"
    else:
        what = "changed or are missing since it was trained"
    first = problems[0].path if len(kinds) == 1 else f"{problems[0].path}, {problems[0].kind}"
    return f"{len(problems)} image{'s' if many else ''} of this run {what} (first: {first})"


def check_run_images(run_dir: Path | str, subsets: tuple[str, ...] = ALL_SUBSETS, *,
                     advice: str = EVALUATE_ADVICE, allow_changed: bool = False) -> list[FileProblem]:
    """Check the images of ``subsets`` of a run against its manifest.

    Returns:
        The problems found (empty when every file is as trained); only when ``allow_changed`` is set can they
        be non-empty: the caller then uses the files as they are now and must say so.

    Raises:
        RunIntegrityError: a file is missing or changed and ``allow_changed`` is not set.
        RunError: the folder is not a run (no config.json or manifest.json; ``IncompleteRunError``).
    """
    load_config(Path(run_dir))  # the RunError of a folder that is not a run at all comes first
    manifest = load_manifest(Path(run_dir))
    problems = check_files(manifest["root"], [f for f in manifest["files"] if f["subset"] in subsets])
    if problems and not allow_changed:
        checked = sum(f["subset"] in subsets for f in manifest["files"])
        if len(problems) == checked and all(p.kind == "missing" for p in problems):  # the folder, not files
            summary = (f"none of the run's {checked} images are under {manifest['root']} (moved, renamed or on "
                       "a drive that is not connected?)")
            raise RunIntegrityError(f"{summary}; put the folder back where it was", summary=summary,
                                    problems=tuple(problems))
        summary = describe(problems)
        raise RunIntegrityError(f"{summary}; {advice}", summary=summary, problems=tuple(problems))
    return problems


__all__ = ["FileProblem", "check_files", "check_run_images", "describe", "EVALUATED", "ALL_SUBSETS",
           "EVALUATE_ADVICE", "RESUME_ADVICE"]
