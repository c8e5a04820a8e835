"""Bundle-aware resource paths and the user's data, cache, log and config folders (platformdirs).

``TL_DESKTOP_HOME`` moves every user folder under one directory: the tests use it so they never touch
the real user's files, and a lab can use it to keep everything on a shared drive. The app's own folders
(data, cache, log, config) are hidden platform folders; the user's projects are not: they default to
``default_projects_dir()`` in the user's Documents (the window asks on first start, ``ui.settings``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "tl-desktop"
PROJECTS_FOLDER_NAME = "tl-desktop projects"
CACHE_DIR_ENV = "TL_DESKTOP_CACHE_DIR"


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
    """The cache (prepared images, embeddings, weights): ``CACHE_DIR_ENV`` when set (the Settings dialog sets
    it from the user's choice), else the platform's cache folder (or ``TL_DESKTOP_HOME/cache``)."""
    chosen = os.environ.get(CACHE_DIR_ENV)
    if chosen:
        path = Path(chosen)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return default_cache_dir()


def default_cache_dir() -> Path:
    return _user_dir("cache")


def log_dir() -> Path:
    return _user_dir("log")


def config_dir() -> Path:
    return _user_dir("config")


def default_projects_dir() -> Path:
    """Where new projects go unless the user chose another folder: ``Documents/tl-desktop projects``, or
    ``~/tl-desktop projects`` where the system has no Documents folder; ``TL_DESKTOP_HOME/projects`` when
    that variable is set. Not created here (the first project or the first-start dialog makes it)."""
    home = os.environ.get("TL_DESKTOP_HOME")
    if home:
        return Path(home) / "projects"
    import platformdirs

    documents = Path(platformdirs.user_documents_dir())
    parent = documents if documents.is_dir() else Path.home()
    return parent / PROJECTS_FOLDER_NAME
