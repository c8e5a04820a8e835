"""The Settings dialog: projects folder, default device, cache size and folder, theme.

Each value lives where the rest of the app already reads it: the projects folder, theme, default device and
cache folder in QSettings (``ui/settings.py``); the cache size limit in the engine's own setting
(``core.data.prepared.set_cache_limit_gb``: the command line and jobs honour it too). OK checks every value
first and says in place what is wrong, keeping the dialog open; nothing is saved until all are valid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from tl_desktop import paths
from tl_desktop.ui import settings
from tl_desktop.ui.glossary import term_button
from tl_desktop.ui.widgets.common import hint, label

DEVICE_NAMES = {"auto": "Automatic (a GPU when one is usable)", "cpu": "CPU (the processor)",
                "cuda": "NVIDIA GPU (CUDA)", "mps": "Apple GPU (MPS)"}
THEME_NAMES = {"system": "Follow the system", "light": "Light", "dark": "Dark"}


@dataclass(frozen=True)
class Choices:
    """The values of the dialog as the user entered them (cache folder None: the default folder)."""

    projects_folder: Path
    device: str
    cache_gb: float
    cache_folder: Path | None
    theme: str


class SettingsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings — tl-desktop")
        self.projects = QLineEdit(str(settings.projects_folder()))
        self.device = QComboBox()
        for value, text in DEVICE_NAMES.items():
            self.device.addItem(text, value)
        self.device.setCurrentIndex(self.device.findData(settings.default_device()))
        self.cache_gb = QLineEdit()
        self.cache_folder = QLineEdit(placeholderText=f"default: {paths.default_cache_dir()}")
        chosen = settings.cache_folder()
        self.cache_folder.setText("" if chosen is None else str(chosen))
        self.themes = QButtonGroup(self)
        self.problem = label("", "badge-warn", wrap=True)
        self.problem.hide()
        self._build()
        self._load_cache_limit()

    # --- layout -------------------------------------------------------------------------------------
    def _build(self) -> None:
        form = QFormLayout()
        form.addRow("Projects folder:", self._with_browse(self.projects, "Folder for new projects"))
        form.addRow("", hint("New projects are created here; the Open dialog starts here."))
        form.addRow("Default device:", self._with_term(self.device, "device"))
        form.addRow("", hint("New projects start with this device; each project keeps its own choice in Train."))
        lo, hi = self._bounds()
        form.addRow("Cache size limit (GB):", self._with_term(self.cache_gb, "cache"))
        form.addRow("", hint(f"Between {lo:g} and {hi:,.0f} GB. The oldest prepared images are deleted past it."))
        form.addRow("Cache folder:", self._with_browse(self.cache_folder, "Folder for the cache"))
        form.addRow("", hint("Empty: the default folder. Files already in the old folder stay there; the cache is "
                             "filled again where you choose, for the next job."))
        theme_row = QHBoxLayout()
        for value, text in THEME_NAMES.items():
            button = QRadioButton(text)
            button.setProperty("theme", value)
            button.setChecked(value == settings.theme())
            self.themes.addButton(button)
            theme_row.addWidget(button)
        theme_row.addStretch(1)
        form.addRow("Theme:", theme_row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)
        self.setMinimumWidth(620)

    def _with_browse(self, edit: QLineEdit, caption: str) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        browse = QPushButton("Choose…")
        browse.clicked.connect(lambda: self._browse(edit, caption))
        layout.addWidget(browse)
        return row

    @staticmethod
    def _with_term(field: QWidget, term: str) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(field, 1)
        layout.addWidget(term_button(term))
        return row

    def _browse(self, edit: QLineEdit, caption: str) -> None:
        start = edit.text().strip() or edit.placeholderText().removeprefix("default: ")
        folder = QFileDialog.getExistingDirectory(self, caption, start)
        if folder:
            edit.setText(folder)

    # --- values -------------------------------------------------------------------------------------
    @staticmethod
    def _bounds() -> tuple[float, float]:
        from tl_desktop.core.data.prepared import LIMIT_GB_BOUNDS

        return LIMIT_GB_BOUNDS

    def _load_cache_limit(self) -> None:
        from tl_desktop.core.data.prepared import DEFAULT_LIMIT_GB, cache_limit_gb
        from tl_desktop.core.errors import UserFacingError

        try:
            self.cache_gb.setText(f"{cache_limit_gb():g}")
        except UserFacingError:  # a bad TL_DESKTOP_CACHE_GB or a hand-edited setting: offer the default
            self.cache_gb.setText(f"{DEFAULT_LIMIT_GB:g}")
        if os.environ.get("TL_DESKTOP_CACHE_GB"):
            self.cache_gb.setEnabled(False)
            self.cache_gb.setToolTip("Set by the TL_DESKTOP_CACHE_GB environment variable; change it there.")

    def theme(self) -> str:
        button = self.themes.checkedButton()
        return button.property("theme") if button is not None else settings.theme()

    def choices(self) -> Choices:
        """The entered values, checked.

        Raises:
            ValueError: with a plain sentence saying what is wrong and what to do.
        """
        projects = _folder(self.projects.text(), "projects folder")
        if projects is None:
            raise ValueError("Enter a projects folder, or press Choose… to pick one.")
        return Choices(projects, self.device.currentData(), _gigabytes(self.cache_gb.text(), self._bounds()),
                       _folder(self.cache_folder.text(), "cache folder"), self.theme())

    def accept(self) -> None:
        """Save every value and apply the theme, or say what is wrong and stay open."""
        try:
            save(self.choices(), cache_gb_fixed=not self.cache_gb.isEnabled())
        except ValueError as exc:
            self.problem.setText(str(exc))
            self.problem.show()
            return
        self.problem.hide()
        super().accept()


def _folder(text: str, what: str) -> Path | None:
    """``text`` as a folder that exists or could be made and written to; None for empty text.

    Raises:
        ValueError: the folder cannot be created or is not writable.
    """
    text = text.strip()
    if not text:
        return None
    folder = Path(text).expanduser().absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"The {what} {folder} cannot be created ({reason.lower()}). Choose a folder you can "
                         "write to, for example in your Documents.") from None
    if not os.access(folder, os.W_OK):
        raise ValueError(f"The {what} {folder} cannot be written to. Choose a folder you can write to.")
    return folder


def _gigabytes(text: str, bounds: tuple[float, float]) -> float:
    """``text`` as a cache size in GB within ``bounds`` (a comma as the decimal mark is accepted).

    Raises:
        ValueError: not a number, or outside the bounds.
    """
    lo, hi = bounds
    message = f"The cache size limit must be a number of GB between {lo:g} and {hi:,.0f} (you entered “{text}”)."
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        raise ValueError(message) from None
    if not lo <= value <= hi:  # NaN fails too
        raise ValueError(message)
    return value


def save(choices: Choices, *, cache_gb_fixed: bool = False) -> None:
    """Store the choices and apply them to this process: the theme now, the cache folder for the next job."""
    from tl_desktop.core.data.prepared import set_cache_limit_gb
    from tl_desktop.ui.theme import apply_theme

    try:
        settings.set_projects_folder(choices.projects_folder)
    except OSError as exc:
        raise ValueError(f"The projects folder {choices.projects_folder} cannot be created: {exc}") from None
    settings.set_default_device(choices.device)
    if not cache_gb_fixed:
        set_cache_limit_gb(choices.cache_gb)
    if choices.cache_folder != settings.cache_folder():
        settings.set_cache_folder(choices.cache_folder)
        settings.apply_cache_folder(choices.cache_folder)
    settings.set_theme(choices.theme)
    apply_theme(choices.theme)


def open_settings(parent: QWidget | None = None) -> SettingsDialog:
    """Open the Settings dialog (modal to ``parent``, not blocking the event loop)."""
    dialog = SettingsDialog(parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog
