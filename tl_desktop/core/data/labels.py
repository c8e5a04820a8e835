"""Labels given inside the app: a project that starts from images nobody has sorted into classes yet.

The user names the classes and labels images one by one (the window's Label step); the labels live in the
project (``project_file.Project.labels``), the user's files are never moved or renamed. Every path is
relative to the data root (posix separators), as in ``scan.Sample.path``.

- ``layout``: ``"images"``: every image below the data folder is an image to label and folder names are not
  classes (a folder of 3,000 images, or one folder per patient); ``"as-listed"``: the class folders or the
  CSV's labels stand, and the files without one (images directly in the data folder, CSV rows with an empty
  label) are the ones to label.
- ``classes``: the class names in the order of the labelling buttons (keys 1-9).
- ``assigned``: path -> class, given in the app; it wins over a folder's or a CSV's label.
- ``not_sure``: paths the user looked at and could not decide; they stay unlabelled.

``scan.scan(..., labels=)`` is the one place labels change a scan: labelled files become samples like any
class folder's, the others are listed in ``ScanReport.unlabelled``. ``write_csv`` exports every labelled
image as a ``path,label`` CSV that the scan reads as a data set of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tl_desktop.core.data.review import _shown, label_problem, path_problem
from tl_desktop.core.errors import DataError

LAYOUTS = ("images", "as-listed")
MAX_LABELS = 200_000  # labelled or not-sure files a project may hold
MAX_CLASSES = 1_000  # as scan.MAX_CLASSES: outputs and metrics grow with the class count
_KEYS = ("layout", "classes", "assigned", "not_sure")


@dataclass
class Labels:
    """The labels of a project (see the module docstring)."""

    layout: str = "images"
    classes: list[str] = field(default_factory=list)
    assigned: dict[str, str] = field(default_factory=dict)
    not_sure: list[str] = field(default_factory=list)

    def add_class(self, name: str) -> None:
        """Add a class (its button comes last). Raises DataError for a bad or repeated name."""
        _raise(label_problem(name) or (f"there is a class '{name}' already" if name in self.classes else None))
        if len(self.classes) >= MAX_CLASSES:
            raise DataError(f"a project may have at most {MAX_CLASSES:,} classes")
        self.classes.append(name)

    def rename_class(self, old: str, new: str) -> None:
        """Rename a class everywhere it is used. Raises DataError for an unknown class or a bad new name."""
        _raise(None if old in self.classes else f"there is no class '{old}'")
        _raise(label_problem(new) or (f"there is a class '{new}' already" if new in self.classes else None))
        self.classes[self.classes.index(old)] = new
        self.assigned = {p: new if c == old else c for p, c in self.assigned.items()}

    def remove_class(self, name: str) -> int:
        """Remove a class and the labels given with it (the images become unlabelled); returns how many."""
        _raise(None if name in self.classes else f"there is no class '{name}'")
        self.classes.remove(name)
        dropped = [p for p, c in self.assigned.items() if c == name]
        for path in dropped:
            del self.assigned[path]
        return len(dropped)

    def label(self, path: str, name: str) -> None:
        """Label ``path`` as class ``name`` (a class of the project). Raises DataError otherwise."""
        _raise(path_problem(path) or (None if name in self.classes else f"there is no class '{name}'"))
        self.not_sure = [p for p in self.not_sure if p != path]
        self.assigned[path] = name
        self._bounded()

    def mark_not_sure(self, path: str) -> None:
        """The user looked at ``path`` and could not decide: it stays unlabelled and leaves the queue."""
        _raise(path_problem(path))
        self.assigned.pop(path, None)
        if path not in self.not_sure:
            self.not_sure.append(path)
        self._bounded()

    def clear(self, path: str) -> None:
        """Take back whatever was decided about ``path`` (a label or "not sure")."""
        self.assigned.pop(path, None)
        self.not_sure = [p for p in self.not_sure if p != path]

    def state_of(self, path: str) -> tuple[str, str | None]:
        """("labelled", class) | ("not-sure", None) | ("open", None): what was decided about ``path``."""
        if path in self.assigned:
            return "labelled", self.assigned[path]
        return ("not-sure", None) if path in self.not_sure else ("open", None)

    def restore(self, path: str, state: tuple[str, str | None]) -> None:
        """Put ``path`` back into a state ``state_of`` gave (the labelling view's undo)."""
        kind, name = state
        self.clear(path)
        if kind == "labelled" and name is not None:
            if name not in self.classes:
                self.classes.append(name)
            self.assigned[path] = name
        elif kind == "not-sure":
            self.not_sure.append(path)

    def _bounded(self) -> None:
        _raise(_size_problem(self.assigned, self.not_sure))

    # --- (de)serialising ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"layout": self.layout, "classes": list(self.classes), "assigned": dict(self.assigned),
                "not_sure": list(self.not_sure)}

    @classmethod
    def from_dict(cls, data: Any) -> Labels:
        """Read a stored labels section, checked (``labels_problem``). Raises DataError naming the problem."""
        _raise(labels_problem(data))
        classes = list(data.get("classes") or [])
        assigned = dict(data.get("assigned") or {})
        classes += [c for c in dict.fromkeys(assigned.values()) if c not in classes]
        return cls(str(data.get("layout") or "images"), classes, assigned, list(data.get("not_sure") or []))


def _raise(problem: str | None) -> None:
    if problem:
        raise DataError(problem)


def _size_problem(assigned: Any, not_sure: Any) -> str | None:
    if len(assigned) + len(not_sure) > MAX_LABELS:
        return f"{len(assigned) + len(not_sure):,} labelled files is more than the {MAX_LABELS:,} a project may hold"
    return None


def labels_problem(data: Any) -> str | None:
    """What is wrong with a stored labels section (types, bounds, paths, class names), or None. Sizes are
    checked before any entry, so a hostile file of millions of entries is refused at once."""
    if not isinstance(data, dict):
        return f"the labels are {_shown(data)}, not an object"
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        return f"the labels have unknown key(s) {', '.join(unknown)[:60]}"
    if data.get("layout", "images") not in LAYOUTS:
        return f"the labels' layout is {_shown(data.get('layout'))}, not one of {', '.join(LAYOUTS)}"
    kinds = {"classes": list, "assigned": dict, "not_sure": list}
    wrong = next((k for k, t in kinds.items() if data.get(k) is not None and not isinstance(data[k], t)), None)
    if wrong:
        return f"the labels' '{wrong}' is {_shown(data[wrong])}"
    classes, assigned, not_sure = data.get("classes") or [], data.get("assigned") or {}, data.get("not_sure") or []
    if len(classes) > MAX_CLASSES:
        return f"{len(classes):,} classes is more than the {MAX_CLASSES:,} a project may have"
    problem = _size_problem(assigned, not_sure) or next((p for p in map(label_problem, classes) if p), None)
    if problem is None and len(set(classes)) != len(classes):
        problem = "a class is named twice in the labels"
    for path, name in assigned.items() if problem is None else ():
        if problem := path_problem(path) or label_problem(name):
            break
    if problem is None and len(set(assigned.values()) | set(classes)) > MAX_CLASSES:
        problem = f"the labels use more than {MAX_CLASSES:,} classes"
    return problem or next((p for p in map(path_problem, not_sure) if p), None)


# --- the labels as a CSV -----------------------------------------------------------------------------------


def write_csv(report: Any, target: str | Path) -> int:
    """Write every labelled image of a scan (``report.samples``: its labels with the project's applied) as a
    ``path,label`` CSV at ``target``, atomically; paths relative to the CSV's folder when the images lie
    below it, else absolute. Returns the number of rows.

    Raises:
        DataError: the file cannot be written.
    """
    from tl_desktop.core.fsutil import atomic_write_text, csv_text

    target = Path(target).expanduser().absolute()
    folder = target.parent.resolve()
    rows = []
    for sample in report.samples:
        path = report.abspath(sample).resolve()
        try:
            shown = path.relative_to(folder).as_posix()
        except ValueError:
            shown = str(path)
        rows.append((shown, sample.label))
    try:
        atomic_write_text(target, csv_text([("path", "label"), *rows]))
    except OSError as exc:
        raise DataError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return len(rows)


__all__ = ["LAYOUTS", "MAX_LABELS", "Labels", "labels_problem", "write_csv"]
