"""Atomic file writes: a temporary file in the same folder, fsync, then ``os.replace``.

A crash or power cut leaves either the old file or the new one, never a half-written one. Also the one way the
app writes CSV text (``csv_text``): RFC 4180 via the csv module, every text cell safe to open in a spreadsheet.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tl_desktop.core.errors import DamagedFileError


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a hidden ``.NAME.*.tmp`` file in the same folder.

    Raises:
        OSError: the folder cannot be written (disk full, read-only, permission); its ``filename`` is ``path``
            (not the temporary file), so the message names the file the user asked for.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    except BaseException:
        _discard(tmp)
        raise
    return path


def _discard(tmp: str | None) -> None:
    if tmp is not None:
        try:
            Path(tmp).unlink(missing_ok=True)
        except OSError:
            pass  # a vanished drive: nothing more can be done here


_TEMP_NAME = re.compile(r"\..+\.[A-Za-z0-9_]+\.tmp")


def remove_stale_temps(folder: Path | str, min_age_s: float = 10.0) -> list[Path]:
    """Remove the hidden temporary files of atomic writes that were killed (``.NAME.*.tmp`` in ``folder``,
    not below it) that are older than ``min_age_s`` (a younger one may be a write in progress); returns them.
    Files that cannot be removed are left."""
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        try:
            if (_TEMP_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)
                    and now - entry.stat(follow_symlinks=False).st_mtime >= min_age_s):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def atomic_write_text(path: Path | str, text: str) -> Path:
    """UTF-8; a file name that is not valid UTF-8 (surrogate-escaped by Python) is written as its own bytes."""
    return atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))


def atomic_write_json(path: Path | str, obj: Any) -> Path:
    """UTF-8 JSON; lone surrogates (undecodable file-name bytes) become ``\\udcXX`` escapes, so such a name
    reads back as exactly the same str and so the same file."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    return atomic_write_bytes(path, text.encode("utf-8", "backslashreplace"))


def read_json(path: Path | str, *, max_bytes: int | None = None) -> Any:
    """The JSON document in ``path``.

    Raises:
        DamagedFileError: not UTF-8 JSON, nested absurdly deep, or larger than ``max_bytes`` (the message
            names the file and what to do).
        OSError: the file cannot be read (missing, permission, vanished drive).
    """
    path = Path(path)
    if max_bytes is not None and path.stat().st_size > max_bytes:
        raise DamagedFileError(f"{path} is {path.stat().st_size:,} bytes, far more than such a file holds; "
                               "restore it from a backup")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except UnicodeDecodeError as exc:
        raise DamagedFileError(f"{path} cannot be read (not UTF-8 text); restore it from a backup") from exc
    except json.JSONDecodeError as exc:
        raise DamagedFileError(f"{path} cannot be read (not valid JSON at line {exc.lineno}, column {exc.colno}); "
                               "restore it from a backup") from exc
    except RecursionError as exc:
        raise DamagedFileError(f"{path} cannot be read (nested too deeply); restore it from a backup") from exc


# --- CSV --------------------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell starting so as a formula
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|nan)", re.IGNORECASE)


def csv_safe_cell(value: Any) -> Any:
    """``value`` as a CSV cell that a spreadsheet shows and never runs (OWASP "CSV injection").

    A text cell starting with ``= + - @``, a tab or a carriage return gets a leading apostrophe; so does one
    already starting with an apostrophe, so that ``csv_cell`` gives every text back exactly. Numbers (also
    as text, like ``-0.5``) and other values are returned unchanged.
    """
    if not isinstance(value, str) or not value or _NUMBER.fullmatch(value):
        return value
    return f"'{value}" if value[0] in _FORMULA_START or value[0] == "'" else value


def csv_cell(text: str) -> str:
    """The text a cell written through ``csv_safe_cell`` held (the inverse: one added apostrophe removed)."""
    if len(text) > 1 and text[0] == "'" and (text[1] in _FORMULA_START or text[1] == "'"):
        return text[1:]
    return text


def csv_text(rows: Iterable[Iterable[Any]]) -> str:
    """CSV text (RFC 4180 quoting, ``\\n`` line ends) of ``rows``, every cell through ``csv_safe_cell``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([csv_safe_cell(cell) for cell in row] for row in rows)
    return buffer.getvalue()
