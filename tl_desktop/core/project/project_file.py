"""The project file: a folder with a versioned ``project.json`` (data source, split, settings, run history).

No Qt here: the CLI, the tests and the GUI all read and write projects through this module. Every save is
atomic (``fsutil.atomic_write_json``), so a crash leaves the previous project file, never half of one.

Schema history:
    1  pre-release: ``{"version": 1, "name", "data_dir", "runs": [run folder, ...], "settings": {...}}``
    2  typed sections (``source``, ``scan``, ``split``, ``settings``, ``runs``) and ``schema_version``.
    3  plus ``review``, the user's review decisions (``data.review.Review``: excluded, relabelled,
       keep-together and kept files, paths relative to the data root); files of format 2 have none.
    4  current: plus ``labels``, labels given in the app (``data.labels.Labels``: layout, classes, labelled
       and not-sure files), or null when the folders or the CSV give every label. An optional
       ``model_card`` (``intended_use.IntendedUse``: what the model is for, in the user's words) may be absent:
       files without it load as having none, so it needed no new format number.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass, field, fields, make_dataclass
from pathlib import Path
from typing import Any

from tl_desktop.core import config as engine
from tl_desktop.core.config import SplitOptions, TrainConfig, TrainOptions
from tl_desktop.core.data.labels import Labels
from tl_desktop.core.data.review import Review
from tl_desktop.core.errors import DamagedFileError, ProjectError, os_error_line
from tl_desktop.core.fsutil import atomic_write_json, read_json
from tl_desktop.core.project.intended_use import IntendedUse
from tl_desktop.core.project.project_schema import check_project, check_version

SCHEMA_VERSION = 4
PROJECT_FILE = "project.json"
MAX_PROJECT_BYTES = 1 << 30
RUNS_FOLDER = "runs"  # the project's visible folders: every run, export and report goes in one of them
EXPORTS_FOLDER = "exports"
REPORTS_FOLDER = "reports"


@dataclass
class DataSource:
    """Where the images are: a folder of class folders, or a CSV listing files and labels."""

    kind: str = "folder"  # "folder" | "csv"
    path: str = ""  # relative to the project folder when inside it, else absolute (posix separators)


def _settings_from_dict(cls: type, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


def _mutable_fields(*classes: type) -> list[tuple[str, Any, Any]]:
    """(name, type, default) of the frozen engine dataclasses' fields (all have plain immutable defaults)."""
    return [(f.name, f.type, field(default=f.default)) for c in classes for f in fields(c)]


# The settings the Train and Data steps show and edit: exactly the engine's ``TrainOptions`` and
# ``SplitOptions`` (same names, types and defaults, taken from them), but mutable for the widgets. A
# ``TrainConfig`` is these plus where the images are (``Project.source``), the stored split and the run folder.
TrainSettings = make_dataclass(
    "TrainSettings", _mutable_fields(TrainOptions, SplitOptions),
    namespace={"from_dict": classmethod(_settings_from_dict),
               "__doc__": "The project's training and split settings: the fields of config.TrainOptions and "
                          "config.SplitOptions, with their defaults, mutable."})
TrainSettings.__module__ = __name__  # make_dataclass's ``module`` argument needs Python 3.12


@dataclass
class RunEntry:
    """One training run of the project: its folder (relative to the project), the name the user gave it and
    summary figures."""

    path: str
    created: float = 0.0
    name: str = ""  # the name the user gave the run (``run_list.rename_run``); "" shows its date and network
    model: str = ""
    strategy: str = ""
    best_epoch: int | None = None
    cancelled: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    onnx: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunEntry:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Project:
    """An open project. ``folder`` is where ``project.json`` lives and is not stored in the file."""

    name: str
    folder: Path
    source: DataSource | None = None
    scan: dict[str, Any] | None = None  # summary: files_seen, samples, skipped, classes, counts, warnings
    split: dict[str, Any] | None = None  # Split.to_dict()
    settings: TrainSettings = field(default_factory=TrainSettings)
    runs: list[RunEntry] = field(default_factory=list)
    review: Review = field(default_factory=Review)  # decisions on the images; the next split applies them
    labels: Labels | None = None  # labels given in the app; None: the folders or the CSV give them all
    subgroups: list[str] = field(default_factory=list)  # attributes Evaluate breaks the test figures down by
    model_card: IntendedUse | None = None  # the model card form; None: never filled in
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    schema_version: int = SCHEMA_VERSION

    @property
    def file(self) -> Path:
        return self.folder / PROJECT_FILE

    @property
    def runs_dir(self) -> Path:
        return self.folder / RUNS_FOLDER

    @property
    def exports_dir(self) -> Path:
        return self.folder / EXPORTS_FOLDER

    @property
    def reports_dir(self) -> Path:
        return self.folder / REPORTS_FOLDER

    def ensure_folders(self) -> bool:
        """Make the visible ``runs/``, ``exports/`` and ``reports/`` folders where they are missing (projects
        of older versions have only those they used); False when the project folder is read-only."""
        try:
            for folder in (self.runs_dir, self.exports_dir, self.reports_dir):
                folder.mkdir(exist_ok=True)
        except OSError:
            return False
        return True

    def set_source(self, path: str | Path, kind: str = "folder") -> None:
        """Point the project at a data folder or CSV; stored relative when it lies inside the project."""
        self.source = DataSource(kind=kind, path=relative_to(Path(path), self.folder))

    def source_path(self) -> Path | None:
        """The absolute data folder or CSV, or None when no data was chosen yet."""
        if self.source is None or not self.source.path:
            return None
        path = Path(self.source.path)
        return path if path.is_absolute() else (self.folder / path).resolve()

    def run_path(self, entry: RunEntry) -> Path:
        path = Path(entry.path)
        return path if path.is_absolute() else self.folder / path

    def add_run(self, run_dir: str | Path, **summary: Any) -> RunEntry:
        """Record a run (or update the entry of a run already listed)."""
        rel = relative_to(Path(run_dir), self.folder)
        entry = next((r for r in self.runs if r.path == rel), None)
        if entry is None:
            entry = RunEntry(path=rel, created=time.time())
            self.runs.append(entry)
        for key, value in summary.items():
            setattr(entry, key, value)
        return entry

    def data_source(self) -> engine.DataSource:
        """The project's images, split settings and stored split, as the engine takes them.

        Raises:
            ProjectError: no images were chosen yet.
        """
        source = self.source_path()
        if source is None or self.source is None:
            raise ProjectError("choose the images (Data step) before training")
        data, csv = (source.parent, source) if self.source.kind == "csv" else (source, None)
        split = {f.name: getattr(self.settings, f.name) for f in fields(SplitOptions)}
        review = self.review.to_dict() if len(self.review) else None
        labels = self.labels.to_dict() if self.labels is not None else None
        return engine.DataSource(data=str(data), csv=str(csv) if csv else None, split=self.split, review=review,
                                 labels=labels,
                                 **split)

    def train_config(self, out: str | Path) -> TrainConfig:
        """The project's data, stored split and settings as a training request into ``out``."""
        options = {f.name: getattr(self.settings, f.name) for f in fields(TrainOptions)}
        return TrainConfig.of(self.data_source(), str(out), **options)

    def new_run_dir(self, label: str = "") -> Path:
        """A fresh, not yet existing run folder under ``runs/`` named by date and time."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        suffix = f"-{safe_folder_name(label)}" if label else ""
        candidate, n = self.runs_dir / f"{stamp}{suffix}", 1
        while candidate.exists():
            n += 1
            candidate = self.runs_dir / f"{stamp}{suffix}-{n}"
        return candidate

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "app": "tl-desktop",
            "name": self.name,
            "created": self.created,
            "modified": self.modified,
            "source": asdict(self.source) if self.source else None,
            "scan": self.scan,
            "split": self.split,
            "settings": asdict(self.settings),
            "runs": [asdict(r) for r in self.runs],
            "review": self.review.to_dict(),
            "labels": self.labels.to_dict() if self.labels is not None else None,
            "subgroups": list(self.subgroups),
            "model_card": self.model_card.to_dict() if self.model_card is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> Project:
        data = migrate(data, str(folder / PROJECT_FILE))
        source = data.get("source")
        return cls(
            name=str(data.get("name") or folder.name),
            folder=folder,
            source=DataSource(**source) if source else None,
            scan=data.get("scan"),
            split=data.get("split"),
            settings=TrainSettings.from_dict(data.get("settings") or {}),
            runs=[RunEntry.from_dict(r) for r in data.get("runs") or []],
            review=Review.from_dict(data.get("review")),
            labels=Labels.from_dict(data["labels"]) if data.get("labels") is not None else None,
            subgroups=[str(a) for a in data.get("subgroups") or [] if isinstance(a, str)],
            model_card=IntendedUse.from_dict(data["model_card"]) if data.get("model_card") is not None else None,
            created=float(data.get("created") or time.time()),
            modified=float(data.get("modified") or time.time()),
        )


def relative_to(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` (posix) when inside it, else absolute."""
    path = path.expanduser().absolute()
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _migrate_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"schema_version": 2, "name": data.get("name")}
    if data.get("data_dir"):
        out["source"] = {"kind": "folder", "path": str(data["data_dir"]).replace(os.sep, "/")}
    out["settings"] = data.get("settings") or {}  # checked after migration (project_schema)
    runs = data.get("runs") or []
    out["runs"] = [{"path": r} if isinstance(r, str) else r for r in runs] if isinstance(runs, list) else runs
    return out


def _migrate_2_to_3(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "schema_version": 3, "review": None}  # no decisions yet


def _migrate_3_to_4(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "schema_version": 4, "labels": None}  # every label from the folders or the CSV


_MIGRATIONS = {1: _migrate_1_to_2, 2: _migrate_2_to_3, 3: _migrate_3_to_4}


def migrate(data: dict[str, Any], where: str = PROJECT_FILE) -> dict[str, Any]:
    """Bring a project dict of any earlier schema to the current one, and check its keys and types
    (``project_schema.check_project``).

    Raises:
        ProjectError: when the file comes from a newer app, is not a project file, or a key has a wrong type.
    """
    if not isinstance(data, dict):
        raise ProjectError(f"{where} is not a tl-desktop project file (it holds no JSON object)")
    version = check_version(data, where)
    if version > SCHEMA_VERSION:
        raise ProjectError(
            f"this project was saved by a newer tl-desktop (project format {version}); please update the app"
        )
    while version < SCHEMA_VERSION:
        data = _MIGRATIONS[version](data)
        version = int(data["schema_version"])
    check_project(data, where)
    return data


def save(project: Project) -> Path:
    """Write ``project.json`` atomically; returns its path."""
    project.modified = time.time()
    return atomic_write_json(project.file, project.to_dict())


def load(path: str | Path) -> Project:
    """Open a project from its folder or its ``project.json``, migrating older formats in memory.

    Raises:
        ProjectError: missing, unreadable, damaged (not JSON, a key of the wrong type) or newer-version file
            (one readable line).
    """
    path = Path(path)
    file = path / PROJECT_FILE if path.is_dir() else path
    try:
        data = read_json(file, max_bytes=MAX_PROJECT_BYTES)
    except FileNotFoundError as exc:
        raise ProjectError(f"no project found at {file}") from exc
    except DamagedFileError as exc:  # names the file, says why and what to do
        raise ProjectError(str(exc)) from exc
    except OSError as exc:
        raise ProjectError(os_error_line(exc)) from exc
    return Project.from_dict(data, file.parent.absolute())


def safe_folder_name(name: str) -> str:
    """A folder name that works on Windows, macOS and Linux for a user-typed project name."""
    cleaned = re.sub(r'[<>:"/\\|?*\x00-\x1f]+', "_", name).strip(" .")
    return cleaned or "project"


def create(folder: str | Path, name: str | None = None) -> Project:
    """Create a new project in ``folder`` (made when missing) with its ``runs/``, ``exports/`` and
    ``reports/`` folders, and save it.

    Raises:
        ProjectError: when ``folder`` already holds a project.
    """
    folder = Path(folder).absolute()
    if (folder / PROJECT_FILE).exists():
        raise ProjectError(f"{folder} already holds a project; open it instead")
    folder.mkdir(parents=True, exist_ok=True)
    project = Project(name=name or folder.name, folder=folder)
    save(project)
    project.ensure_folders()
    return project


def scan_summary(report: Any) -> dict[str, Any]:
    """The small part of a ``data.ScanReport`` worth keeping in ``project.json`` (the full scan is re-run)."""
    return {
        "root": str(report.root),
        "files_seen": int(report.files_seen),
        "samples": len(report.samples),
        "skipped": len(report.skipped),
        "classes": list(report.classes),
        "counts": dict(report.counts),
        "duplicates": len(report.duplicates),
        "warnings": [str(w) for w in report.warnings],  # the messages of the ScanFindings
        "unusable": report.unusable,
    }



def latest_verified_export(project: Project) -> tuple[Path, RunEntry | None] | None:
    """The project's most recently written full-precision ``.onnx`` file whose ``.verification.json`` meets
    today's limits (``verify.within_tolerance``), with the run it was exported from when the project recorded
    that; None when the project has no such file.

    Candidates are every run's recorded ``onnx`` file and the ``.onnx`` files of the project's ``exports``
    folder (where the Export step writes by default, and the CLI may). Unreadable figures count as unverified.
    """
    from tl_desktop.core.export.verify import within_tolerance  # numpy and onnxruntime: only when asked

    recorded = {Path(r.onnx).absolute(): r for r in project.runs if r.onnx}
    exports = project.folder / EXPORTS_FOLDER
    candidates = set(recorded) | ({p.absolute() for p in exports.glob("*.onnx")} if exports.is_dir() else set())
    verified: list[tuple[float, Path]] = []
    for path in candidates:
        try:
            figures = read_json(path.with_name(f"{path.stem}.verification.json"))
            if path.is_file() and figures.get("precision") == "fp32" and within_tolerance(figures):
                verified.append((path.stat().st_mtime, path))
        except (OSError, DamagedFileError, AttributeError):
            continue
    if not verified:
        return None
    path = max(verified)[1]
    return path, recorded.get(path)
