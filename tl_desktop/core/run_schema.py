"""What ``manifest.json`` and ``status.json`` of a run folder must hold, checked when they are read.

A run folder may come from another computer, a backup or a hand edit; everything that reads it goes through
``runs.load_manifest`` / ``runs.read_status``, which check the file here once, so a damaged file is one line
naming it (``RunError``) instead of a ``KeyError`` deep inside an evaluation. ``config.json`` is checked by
``config.RunConfig.from_dict``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tl_desktop.core.errors import RunError

STATES = ("created", "running", "cancelled", "failed", "finished")
SUBSETS = ("train", "val", "test")
MAX_STATUS_BYTES = 64 * 1024
MAX_MANIFEST_BYTES = 1 << 30
MAX_MESSAGE_CHARS = 4000
_FIX = "restore the run folder from a backup or train again"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def check_status(data: Any, path: Path) -> dict[str, str]:
    """``{"state", "message"}`` of a ``status.json`` document (other keys are dropped).

    Raises:
        RunError: not an object, an unknown state, or a message that is not a short text.
    """
    if not isinstance(data, dict):
        raise RunError(f"{path} is damaged (not a JSON object); {_FIX}")
    state, message = data.get("state"), data.get("message", "")
    if state not in STATES:
        raise RunError(f"{path} is damaged (state {_shown(state)} is not one of {', '.join(STATES)}); {_FIX}")
    if not isinstance(message, str) or len(message) > MAX_MESSAGE_CHARS:
        raise RunError(f"{path} is damaged (its message is not a short text); {_FIX}")
    return {"state": state, "message": message}


def check_manifest(data: Any, path: Path) -> dict[str, Any]:
    """A ``manifest.json`` document, unchanged, after checking its keys and types.

    Raises:
        RunError: not an object; ``root`` not a text; ``classes`` not a list of distinct texts; ``split`` not
            an object; ``files`` not a list of entries with a text path, a known label, a text sha256, a subset
            of train/val/test and whole-number sizes.
    """
    if not isinstance(data, dict):
        raise RunError(f"{path} is damaged (not a JSON object); {_FIX}")
    classes = data.get("classes")
    problem = None
    if not isinstance(data.get("root"), str):
        problem = f"'root' is {_shown(data.get('root'))}, not a folder name"
    elif (not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes)
          or len(set(classes)) != len(classes)):
        problem = f"'classes' is {_shown(classes)}, not a list of distinct class names"
    elif "split" in data and not isinstance(data["split"], dict):
        problem = f"'split' is {_shown(data['split'])}, not an object"
    elif not isinstance(data.get("files"), list):
        problem = f"'files' is {_shown(data.get('files'))}, not a list"
    else:
        known = set(classes)
        problem = next((p for p in (_file_problem(i, f, known) for i, f in enumerate(data["files"])) if p), None)
    if problem:
        raise RunError(f"{path} is damaged ({problem}); {_FIX}")
    return data


def _file_problem(index: int, entry: Any, classes: set[str]) -> str | None:
    if not isinstance(entry, dict):
        return f"file entry {index} is {_shown(entry)}, not an object"
    findings = entry.get("findings")
    for key in ("path", "label", "sha256"):
        if not isinstance(entry.get(key), str) or not (entry[key] or (key == "label" and findings is not None)):
            return f"file entry {index} has no valid '{key}' ({_shown(entry.get(key))})"
    if findings is not None:
        if not isinstance(findings, list) or not all(isinstance(f, str) and f in classes for f in findings):
            return f"file entry {index} has the findings {_shown(findings)}, which are not all among the labels"
    elif entry["label"] not in classes:
        return f"file entry {index} has the label {_shown(entry['label'])}, which is not one of the classes"
    if entry.get("subset") not in SUBSETS:
        return f"file entry {index} has the subset {_shown(entry.get('subset'))}, not train, val or test"
    for key in ("width", "height"):
        value = entry.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            return f"file entry {index} has no valid '{key}' ({_shown(value)})"
    return None


__all__ = ["STATES", "SUBSETS", "check_status", "check_manifest"]
