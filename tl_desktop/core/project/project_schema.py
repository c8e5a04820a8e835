"""What a ``project.json`` (current schema, after migration) must hold: keys and their JSON types.

``project_file.load`` checks the migrated document here before building a ``Project``, so a hand-edited,
truncated or foreign file is one ``ProjectError`` line naming the key, never a ``TypeError`` in the window.
Unknown keys are ignored (a newer app of the same format may add some); settings are checked against the
engine's option types (``config.TrainOptions`` and ``config.SplitOptions``).
"""

from __future__ import annotations

import typing
from dataclasses import fields
from typing import Any

from tl_desktop.core.config import SplitOptions, TrainOptions
from tl_desktop.core.config import _matches as matches  # the one JSON-value-vs-type-hint check
from tl_desktop.core.data.labels import labels_problem
from tl_desktop.core.data.review import review_problem
from tl_desktop.core.errors import ProjectError
from tl_desktop.core.project.intended_use import problem as model_card_problem

SOURCE_KINDS = ("folder", "csv")
_TOP: dict[str, Any] = {"name": str | None, "created": float | None, "modified": float | None,
                        "scan": dict[str, Any] | None, "split": dict[str, Any] | None}
_RUN: dict[str, Any] = {"path": str, "created": float, "name": str, "model": str, "strategy": str,
                        "best_epoch": int | None, "cancelled": bool, "metrics": dict[str, float | None],
                        "onnx": str | None}
_FIX = "fix it in a text editor or restore project.json from a backup"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _refuse(where: str, what: str) -> ProjectError:
    return ProjectError(f"{where} is damaged: {what}; {_FIX}")


def check_version(data: dict[str, Any], where: str = "project.json") -> int:
    """The document's schema version (``schema_version``, or ``version`` of the pre-release format, else 1).

    Raises:
        ProjectError: not a whole number of at least 1.
    """
    version = data.get("schema_version", data.get("version", 1))
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _refuse(where, f"schema_version is {_shown(version)}, not a format number")
    return version


def check_project(data: dict[str, Any], where: str = "project.json") -> None:
    """Check a migrated project document's keys and types.

    Raises:
        ProjectError: the first key with a wrong type, naming it and its value.
    """
    for key, hint in _TOP.items():
        if key in data and not matches(data[key], hint):
            raise _refuse(where, f"'{key}' is {_shown(data[key])}")
    _check_source(data.get("source"), where)
    _check_split(data.get("split"), where)
    _check_settings(data.get("settings"), where)
    problem = review_problem(data.get("review"))  # bounded: sizes first, then every path and class name
    if problem is None and data.get("labels") is not None:
        problem = labels_problem(data["labels"])
    if problem is None and data.get("model_card") is not None:  # optional: absent in files before it existed
        problem = model_card_problem(data["model_card"])
    if problem:
        raise _refuse(where, problem)
    runs = data.get("runs")
    if runs is not None and not isinstance(runs, list):
        raise _refuse(where, f"'runs' is {_shown(runs)}, not a list")
    for index, entry in enumerate(runs or []):
        _check_run(index, entry, where)


def _check_source(source: Any, where: str) -> None:
    if source is None:
        return
    if not isinstance(source, dict):
        raise _refuse(where, f"'source' is {_shown(source)}, not an object with kind and path")
    if source.get("kind", "folder") not in SOURCE_KINDS:
        raise _refuse(where, f"the source kind is {_shown(source.get('kind'))}, not folder or csv")
    if not isinstance(source.get("path"), str):
        raise _refuse(where, f"the source path is {_shown(source.get('path'))}, not a path")
    unknown = sorted(set(source) - {"kind", "path"})
    if unknown:
        raise _refuse(where, f"the source has unknown key(s) {', '.join(unknown)}")


_SPLIT: dict[str, Any] = {"seed": int, "val_fraction": float, "test_fraction": float, "group_by": str | None,
                          "assignment": dict[str, str], "groups": dict[str, str] | None}


def _check_split(split: Any, where: str) -> None:
    """A stored split as ``data.split.Split.to_dict`` writes it: every file in train, val or test."""
    if split is None:
        return
    for key, hint in _SPLIT.items():
        required = key not in ("group_by", "groups")
        if (required or key in split) and not matches(split.get(key), hint):
            raise _refuse(where, f"the stored split's '{key}' is {_shown(split.get(key))}")
    bad = next((v for v in split["assignment"].values() if v not in ("train", "val", "test")), None)
    if bad is not None:
        raise _refuse(where, f"the stored split assigns a file to {_shown(bad)}, not train, val or test")


def _check_settings(settings: Any, where: str) -> None:
    if settings is None:
        return
    if not isinstance(settings, dict):
        raise _refuse(where, f"'settings' is {_shown(settings)}, not an object")
    hints = typing.get_type_hints(TrainOptions) | typing.get_type_hints(SplitOptions)
    for name in [f.name for f in fields(TrainOptions)] + [f.name for f in fields(SplitOptions)]:
        if name in settings and not matches(settings[name], hints[name]):
            raise _refuse(where, f"the setting '{name}' is {_shown(settings[name])}")


def _check_run(index: int, entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise _refuse(where, f"run {index + 1} is {_shown(entry)}, not an object with a path")
    if "path" not in entry:
        raise _refuse(where, f"run {index + 1} has no path")
    for key, hint in _RUN.items():
        if key in entry and not matches(entry[key], hint):
            raise _refuse(where, f"run {index + 1}'s '{key}' is {_shown(entry[key])}")


__all__ = ["SOURCE_KINDS", "check_version", "check_project"]
