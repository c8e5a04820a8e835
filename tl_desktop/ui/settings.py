"""Preferences in QSettings, kept in the user config dir (``TL_DESKTOP_HOME`` isolates them in tests).

Each preference is a getter and a setter here (recent projects, the projects folder, theme,
default device, cache folder); dialogs build on them.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

from tl_desktop import paths

MAX_RECENT = 8


def app_settings() -> QSettings:
    return QSettings(str(paths.config_dir() / "settings.ini"), QSettings.Format.IniFormat)


def recent_projects() -> list[Path]:
    """Recently opened project folders that still exist, newest first."""
    value = app_settings().value("recent_projects", [])
    items = [value] if isinstance(value, str) else list(value or [])
    return [Path(p) for p in items if p and (Path(p) / "project.json").is_file()]


def add_recent_project(folder: Path) -> None:
    settings = app_settings()
    items = [str(folder)] + [str(p) for p in recent_projects() if Path(p) != folder]
    settings.setValue("recent_projects", items[:MAX_RECENT])
    settings.sync()


# --- the projects folder --------------------------------------------------------------------------------
PROJECTS_FOLDER_KEY = "projects/folder"


def projects_folder() -> Path:
    """The folder new projects are created in and the Open dialog starts in: the user's choice, else
    ``paths.default_projects_dir()`` (Documents/tl-desktop projects). Not created here."""
    value = app_settings().value(PROJECTS_FOLDER_KEY)
    return Path(value) if isinstance(value, str) and value else paths.default_projects_dir()


def projects_folder_chosen() -> bool:
    """Whether the user confirmed a projects folder (the first-start dialog asks until then)."""
    value = app_settings().value(PROJECTS_FOLDER_KEY)
    return isinstance(value, str) and bool(value)


def set_projects_folder(folder: Path | str) -> Path:
    """Store ``folder`` (made absolute) as the projects folder and create it; returns it.

    Raises:
        OSError: the folder cannot be created (the caller says so and keeps the previous choice).
    """
    folder = Path(folder).expanduser().absolute()
    folder.mkdir(parents=True, exist_ok=True)
    settings = app_settings()
    settings.setValue(PROJECTS_FOLDER_KEY, str(folder))
    settings.sync()
    return folder


# --- appearance, default device, cache location (the Settings dialog, ui/preferences.py) ----------------
THEMES = ("light", "dark", "system")
DEVICES = ("auto", "cpu", "cuda", "mps")
THEME_KEY, DEVICE_KEY, CACHE_FOLDER_KEY = "appearance/theme", "train/default_device", "cache/folder"


def _choice(key: str, allowed: tuple[str, ...], default: str) -> str:
    value = app_settings().value(key, default)
    return value if value in allowed else default  # a hand-edited, unknown value falls back to the default


def _store(key: str, value: str | None) -> None:
    settings = app_settings()
    if value is None:
        settings.remove(key)
    else:
        settings.setValue(key, value)
    settings.sync()


def theme() -> str:
    """"light", "dark" or "system" (follow the system's light or dark mode, the default)."""
    return _choice(THEME_KEY, THEMES, "system")


def set_theme(name: str) -> None:
    if name not in THEMES:
        raise ValueError(f"unknown theme {name!r}; choose one of {', '.join(THEMES)}")
    _store(THEME_KEY, name)


def default_device() -> str:
    """The device a new project's Train step starts with: "auto" (default), "cpu", "cuda" or "mps"."""
    return _choice(DEVICE_KEY, DEVICES, "auto")


def set_default_device(name: str) -> None:
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    _store(DEVICE_KEY, name)


def cache_folder() -> Path | None:
    """The folder the user chose for the cache (prepared images, embeddings, weights); None: the default."""
    value = app_settings().value(CACHE_FOLDER_KEY)
    return Path(value) if isinstance(value, str) and value else None


def set_cache_folder(folder: Path | str | None) -> None:
    """Store the cache folder (None: back to the default). ``apply_cache_folder`` makes it take effect."""
    _store(CACHE_FOLDER_KEY, None if folder is None else str(Path(folder).expanduser().absolute()))


def apply_cache_folder(folder: Path | None, *, keep_environment: bool = False) -> None:
    """Point this process, and the engine processes it starts, at ``folder`` for the cache through
    ``paths.CACHE_DIR_ENV`` (None: the default folder again). Caches opened before keep their folder until
    the next job; nothing is moved. ``keep_environment``: a variable the user set already wins (at start)."""
    if keep_environment and os.environ.get(paths.CACHE_DIR_ENV):
        return
    if folder is None:
        os.environ.pop(paths.CACHE_DIR_ENV, None)
    else:
        os.environ[paths.CACHE_DIR_ENV] = str(folder)


TOUR_KEY = "tour/shown"


def tour_shown() -> bool:
    """Whether the guided tour was shown once already (it opens by itself on the first start only)."""
    return app_settings().value(TOUR_KEY, False) in (True, "true", "1", 1)


def set_tour_shown(shown: bool = True) -> None:
    _store(TOUR_KEY, "true" if shown else None)
