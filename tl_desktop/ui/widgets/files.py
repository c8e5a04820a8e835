"""Show the user a file: open its folder (or the file) in the system's file manager, or, where none opens,
say where it is in a small message with a "Copy path" button. Every "Show in folder" of the app uses this.

    from tl_desktop.ui.widgets.files import show_in_folder
    show_in_folder(exported_file, parent=self)   # True when a file manager opened
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLineEdit, QPushButton, QVBoxLayout, QWidget

from tl_desktop.ui.widgets.common import label

log = logging.getLogger(__name__)


class FileLocationDialog(QDialog):
    """Where a file or folder is, as selectable text, with "Copy path" (stays open, says "Copied") and Close."""

    def __init__(self, path: Path, reason: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = path
        self.setWindowTitle("Where the file is")
        where = f"The {'folder' if path.is_dir() else 'file'} is here:" if path.exists() else "It was here:"
        self.message = label(f"{reason}\n\n{where}", wrap=True)
        self.path_box = QLineEdit(str(path), readOnly=True, toolTip="Select the text, or press Copy path")
        self.path_box.setMinimumWidth(min(720, max(360, 8 * len(str(path)))))
        self.copy_button = QPushButton("Copy path", toolTip="Put the path on the clipboard, to paste it into a "
                                                            "file manager, an e-mail or a document")
        self.copy_button.clicked.connect(self.copy_path)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Close).setToolTip("Close this message")
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.path_box)
        layout.addWidget(buttons)

    def copy_path(self) -> None:
        QGuiApplication.clipboard().setText(str(self.path))
        self.copy_button.setText("Copied ✓")


def _open_or_tell(target: Path, shown: Path, reason: str, parent: QWidget | None) -> FileLocationDialog | None:
    """Open ``target`` with the system; when it is missing or nothing opens, show (non-blocking) and return
    the message that says where ``shown`` is and why it did not open."""
    if not target.exists():
        reason = f"{target} is not there any more (moved or deleted?)."
    elif QDesktopServices.openUrl(QUrl.fromLocalFile(str(target))):
        return None
    log.info("could not open %s: %s", target, reason)
    dialog = FileLocationDialog(shown, reason, parent)
    dialog.open()
    return dialog


def show_in_folder(path: Path | str, parent: QWidget | None = None) -> FileLocationDialog | None:
    """Open the folder holding ``path`` (``path`` itself when it is a folder) in the file manager.

    Returns:
        None when a file manager opened; else the message that says where ``path`` is (already shown).
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    return _open_or_tell(folder, path, "No file manager opened on this computer.", parent)


def open_file(path: Path | str, parent: QWidget | None = None) -> FileLocationDialog | None:
    """Open ``path`` in the program the system uses for it (a log in a text editor, a PDF in a viewer).

    Returns:
        None when it opened; else the message that says where ``path`` is (already shown).
    """
    path = Path(path)
    return _open_or_tell(path, path, "No program opened the file on this computer.", parent)
