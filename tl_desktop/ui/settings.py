"""Preferences in QSettings, kept in the user config dir (``TL_DESKTOP_HOME`` isolates them in tests)."""

from __future__ import annotations

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
