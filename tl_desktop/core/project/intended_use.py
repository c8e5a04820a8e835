"""What the model is for, in the user's words: the model card's form (intended use and users, out-of-scope use,
known limitations). Stored in the project (``project.json`` key ``model_card``) or given to ``tl-desktop report
--model-card FILE.json`` in the same shape; the report's model card and checklist read it.

Every field is plain text with a bounded length (``LIMITS``); tabs and line breaks are allowed, other control
characters are not. ``problem`` says in one line what is wrong with a hostile or damaged section.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from tl_desktop.core.errors import DamagedFileError, ProjectError, os_error_line

# the longest text of each field, in characters
LIMITS: dict[str, int] = {"intended_use": 1000, "intended_users": 500, "out_of_scope": 1000, "limitations": 2000}
MAX_FILE_BYTES = 64 * 1024  # a --model-card file: a few thousand characters at most, with room for JSON escapes
_ALLOWED_CONTROL = {"\n", "\t", "\r"}


@dataclass(frozen=True)
class IntendedUse:
    """The user's answers; an empty string is a question not answered yet."""

    intended_use: str = ""
    intended_users: str = ""
    out_of_scope: str = ""
    limitations: str = ""  # optional: what the user knows beyond what the run recorded

    @property
    def empty(self) -> bool:
        return not any(getattr(self, f.name).strip() for f in fields(self))

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IntendedUse:
        """A checked section (``problem(data) is None``), with surrounding blanks removed."""
        return cls(**{k: str(data.get(k) or "").strip() for k in LIMITS})


def problem(data: Any) -> str | None:
    """What is wrong with a ``model_card`` section, in words for one line; None when it is usable.

    Checks the type, the keys (only those of ``IntendedUse``), each value's type and length, and control
    characters, in that order, before reading any text further.
    """
    if not isinstance(data, dict):
        return f"the model card is {type(data).__name__}, not an object with intended_use, intended_users, ..."
    unknown = sorted(str(k)[:30] for k in data if k not in LIMITS)
    if unknown:
        return f"the model card has unknown key(s) {', '.join(unknown[:5])}"
    for key, limit in LIMITS.items():
        value = data.get(key, "")
        if value is None:
            continue
        if not isinstance(value, str):
            return f"the model card's '{key}' is {type(value).__name__}, not text"
        if len(value) > limit:
            return f"the model card's '{key}' has {len(value):,} characters (at most {limit:,})"
        if any(ord(ch) < 32 and ch not in _ALLOWED_CONTROL for ch in value) or "\x7f" in value:
            return f"the model card's '{key}' holds control characters"
    return None


def load_file(path: str | Path) -> IntendedUse:
    """The form's answers from a JSON file (``--model-card``), checked like the project's section.

    Raises:
        ProjectError: missing, unreadable, too large, not JSON or a refused section (one line naming the file).
    """
    from tl_desktop.core.fsutil import read_json

    path = Path(path)
    try:
        data = read_json(path, max_bytes=MAX_FILE_BYTES)
    except FileNotFoundError as exc:
        raise ProjectError(f"no such model card file: {path}") from exc
    except DamagedFileError as exc:
        raise ProjectError(str(exc)) from exc
    except OSError as exc:
        raise ProjectError(os_error_line(exc)) from exc
    found = problem(data)
    if found:
        raise ProjectError(f"{path.name} is refused: {found}; write it as "
                           '{"intended_use": "...", "intended_users": "...", "out_of_scope": "...", '
                           '"limitations": "..."}')
    return IntendedUse.from_dict(data)


__all__ = ["IntendedUse", "LIMITS", "problem", "load_file"]
