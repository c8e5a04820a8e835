"""Atomic file writes: a temporary file in the same folder, fsync, then ``os.replace``.

A crash or power cut leaves either the old file or the new one, never a half-written one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path | str, text: str) -> Path:
    """UTF-8; a file name that is not valid UTF-8 (surrogate-escaped by Python) is written as its own bytes."""
    return atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))


def atomic_write_json(path: Path | str, obj: Any) -> Path:
    """UTF-8 JSON; lone surrogates (undecodable file-name bytes) become ``\\udcXX`` escapes, so such a name
    reads back as exactly the same str and so the same file."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    return atomic_write_bytes(path, text.encode("utf-8", "backslashreplace"))


def read_json(path: Path | str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
