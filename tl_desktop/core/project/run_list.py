"""The project's run list as a workbench: names, the facts a list row shows, rename, delete and compare.

No Qt here. A run's name is a display name stored in ``project.json`` (``RunEntry.name``); the run folder is
never renamed, because its path is written into the run's own ``config.json`` and ``manifest.json``, into
exported models' metadata, into server jobs and into runs continued from it. Deleting forgets the entry and
removes the folder (the window moves it to the system trash when it can; ``delete_folder`` is the permanent
fallback the user confirmed). Every figure shown is the run's stored one: ``metrics.json`` (written from the
run's evaluation artefact when the fit ended), else ``clinical.json`` through ``stored_result``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tl_desktop.core import runs
from tl_desktop.core.config import RunConfig
from tl_desktop.core.errors import DamagedFileError, ProjectError, RunError
from tl_desktop.core.fsutil import read_json
from tl_desktop.core.project.project_file import Project, RunEntry
from tl_desktop.core.runlock import run_lock

MAX_NAME = 60  # characters: a run's name fits one line of the list


@dataclass(frozen=True)
class Figure:
    """One headline figure of a run: its words, its value (None: not measured) and how it reads."""

    label: str
    value: float | None

    @property
    def text(self) -> str:
        if self.value is None:
            return "–"
        return f"{self.value:.3f}" if "AUC" in self.label else f"{100 * self.value:.1f} %"


@dataclass(frozen=True)
class RunFacts:
    """What a row of the run list says about a run (read from its folder; absent facts are None)."""

    name: str
    state: str  # created | running | cancelled | failed | finished (status.json), "missing" without a folder
    network: str
    strategy: str  # the plain words of the strategy actually trained
    image_size: int | None
    epochs: int | None  # asked for
    epochs_run: int  # rows of history.csv
    best_epoch: int | None
    headline: tuple[Figure, ...]


# --- names ------------------------------------------------------------------------------------------------

def display_name(entry: RunEntry) -> str:
    """The run's name: the one the user gave, else its date and network (``14 Mar 09:30  EfficientNet-Lite0``)."""
    if entry.name:
        return entry.name
    when = time.strftime("%d %b %H:%M", time.localtime(entry.created)) if entry.created else Path(entry.path).name
    return f"{when}  {network_label(entry.model)}" if entry.model else when


def name_problem(project: Project, entry: RunEntry, name: str) -> str | None:
    """Why ``name`` cannot be the run's name, in the user's words; None when it can."""
    name = name.strip()
    if not name:
        return "Type a name for the run."
    if len(name) > MAX_NAME:
        return f"The name is {len(name)} characters long; keep it to {MAX_NAME}."
    if any(ch in name for ch in "\n\r\t"):
        return "The name must be one line."
    taken = {display_name(other).casefold() for other in project.runs if other is not entry}
    if name.casefold() in taken:
        return f"Another run of this project is already named “{name}”: choose another name."
    return None


def rename_run(project: Project, entry: RunEntry, name: str) -> None:
    """Give the run a display name (the folder keeps its name); the caller saves the project.

    Raises:
        ProjectError: the name is empty, too long, not one line or another run's (``name_problem``).
    """
    problem = name_problem(project, entry, name)
    if problem:
        raise ProjectError(problem)
    entry.name = name.strip()


# --- deleting ---------------------------------------------------------------------------------------------

def delete_problem(project: Project, entry: RunEntry, training: Path | None = None) -> str | None:
    """Why the run cannot be deleted now (it is training here, or another process writes it); None: it can.

    ``training`` is the run folder this process trains into, if any (its lock is re-entrant here).
    """
    folder = project.run_path(entry)
    if training is not None and _same(folder, training):
        return f"“{display_name(entry)}” is training now: stop it first (Stop), then delete it."
    try:
        with run_lock(folder, "deleting"):
            return None
    except RunError as exc:  # RunBusyError: another window or terminal writes it
        return f"“{display_name(entry)}” cannot be deleted now: {exc}"
    except OSError:
        return None  # a read-only or vanished folder: nothing writes it


def forget_run(project: Project, entry: RunEntry) -> None:
    """Remove the run from the project's list (its folder is the caller's: trash or ``delete_folder``)."""
    project.runs = [r for r in project.runs if r is not entry]


def delete_folder(folder: Path) -> None:
    """Delete a run folder for good (the user confirmed; no trash was available).

    Raises:
        OSError: a file could not be removed (in use, permission).
    """
    if folder.is_dir():
        shutil.rmtree(folder)


def _same(a: Path, b: Path) -> bool:
    return a.absolute().resolve() == b.absolute().resolve()


# --- what the list and the compare window show --------------------------------------------------------------

def network_label(model: str) -> str:
    """The catalog's name of a network (``EfficientNet-Lite0``), else its key."""
    from tl_desktop.core.models.catalog import get_info

    try:
        return get_info(model).label
    except KeyError:
        return model


def strategy_words(strategy: str) -> str:
    """The plain words of a strategy without the hint in brackets: ``Train only the last layer``."""
    from tl_desktop.core.training.strategies import STRATEGY_NAMES

    return STRATEGY_NAMES.get(strategy, (strategy or "–", ""))[0].split(" (")[0]


def config_of(folder: Path) -> RunConfig | None:
    """The run's ``config.json``, or None when it is missing or unreadable."""
    try:
        return runs.load_config(folder)
    except (RunError, DamagedFileError, OSError):
        return None


def run_facts(project: Project, entry: RunEntry) -> RunFacts:
    """The facts of one row of the run list: cheap reads of ``config.json``, ``status.json``, ``history.csv``
    and ``metrics.json`` (no ``clinical.json``: a list of many runs stays quick)."""
    folder = project.run_path(entry)
    config = config_of(folder)
    state = runs.read_status(folder)["state"] if folder.is_dir() else "missing"
    rows = _history(folder)
    best = entry.best_epoch if entry.best_epoch else runs.best_epoch(rows)
    return RunFacts(
        name=display_name(entry), state=state, network=network_label(config.model if config else entry.model),
        strategy=strategy_words(config.strategy if config else entry.strategy),
        image_size=config.input_size[1] if config else None, epochs=config.epochs if config else None,
        epochs_run=len(rows), best_epoch=best, headline=headline(folder, entry, evaluate=False))


def _history(folder: Path) -> list[dict[str, float]]:
    try:
        return runs.read_history(folder)
    except (OSError, ValueError):
        return []


def headline(folder: Path, entry: RunEntry | None = None, *, evaluate: bool = True) -> tuple[Figure, ...]:
    """The run's headline figures on its test images: accuracy and balanced accuracy (and the mean AUC over
    classes), or for a multi-label run the mean AUC over findings and the share with every finding right.

    From ``metrics.json``; without one (a stopped run) from ``clinical.json`` via ``stored_result`` when
    ``evaluate``, else from the project's summary of the run; empty when the run has no test figures.
    """
    metrics = _read(folder / "metrics.json")
    if metrics is None and evaluate:
        metrics = _clinical_summary(folder)
    if metrics is None:
        metrics = dict(entry.metrics) if entry is not None and entry.metrics else None
    if not metrics or metrics.get("n") == 0:
        return ()
    auc = (metrics.get("roc_auc") or {}).get("macro")
    if metrics.get("task") == "multi-label":
        return (Figure("Mean AUC over findings", _number(auc)),
                Figure("Every finding right", _number(metrics.get("subset_accuracy"))))
    figures = [Figure("Test accuracy", _number(metrics.get("accuracy"))),
               Figure("Balanced accuracy", _number(metrics.get("balanced_accuracy")))]
    if auc is not None:
        figures.append(Figure("Mean AUC over classes", _number(auc)))
    return tuple(figures)


def _clinical_summary(folder: Path) -> dict[str, Any] | None:
    """The test summary of the run's stored evaluation (``stored_result.summary``), or None without one."""
    from tl_desktop.core.evaluation.run_evaluation import load_clinical
    from tl_desktop.core.evaluation.stored_result import ClinicalResult

    try:
        data = load_clinical(folder)
        return None if data is None else ClinicalResult(data, folder).summary("test")
    except (OSError, DamagedFileError, KeyError, ValueError):
        return None


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = read_json(path)
    except (OSError, DamagedFileError):
        return None
    return data if isinstance(data, dict) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
