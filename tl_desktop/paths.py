"""Bundle-aware resource paths and the user's data, cache, log and config folders (platformdirs).

``TL_DESKTOP_HOME`` moves every user folder under one directory: the tests use it so they never touch
the real user's files, and a lab can use it to keep everything on a shared drive.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "tl-desktop"


def bundle_dir() -> Path:
    """The folder holding ``resources/``: PyInstaller's bundle when frozen, else the source checkout."""
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
    return Path(__file__).resolve().parent.parent


def resource(*parts: str) -> Path:
    return bundle_dir().joinpath("resources", *parts)


def _user_dir(kind: str) -> Path:
    home = os.environ.get("TL_DESKTOP_HOME")
    if home:
        path = Path(home) / kind
    else:
        import platformdirs

        getter = {
            "data": platformdirs.user_data_dir,
            "cache": platformdirs.user_cache_dir,
            "log": platformdirs.user_log_dir,
            "config": platformdirs.user_config_dir,
        }[kind]
        path = Path(getter(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    return _user_dir("data")


def cache_dir() -> Path:
    return _user_dir("cache")


def log_dir() -> Path:
    return _user_dir("log")


def config_dir() -> Path:
    return _user_dir("config")
