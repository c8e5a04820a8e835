"""Where projects go: the first-start question (the projects folder) and the New project dialog.

Both are shown with ``open()`` (window-modal, not blocking) and say what is wrong in place: an empty name, a
folder that already holds a project or cannot be created keeps the dialog open with a line saying why.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.project import project_file as proj
from tl_desktop.ui.settings import set_projects_folder
from tl_desktop.ui.widgets.common import hint, label, title

WHAT_A_PROJECT_HOLDS = ("Each project is a folder of its own: the project file, runs/ (every model you train), "
                        "exports/ (the models you export) and reports/ (every report, one dated folder each). "
                        "Your images stay where they are; they are not copied.")


class _FolderRow(QWidget):
    """A read-only folder path with a Change… button."""

    def __init__(self, folder: Path, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = caption
        self.path = QLineEdit(str(folder), readOnly=True, toolTip="The folder (press Change… to choose another)")
        self.change = QPushButton("Change…", toolTip="Choose another folder")
        self.change.clicked.connect(self.choose)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.path, 1)
        row.addWidget(self.change)

    def folder(self) -> Path:
        return Path(self.path.text())

    def choose(self) -> None:
        start = self.folder() if self.folder().is_dir() else Path.home()
        chosen = QFileDialog.getExistingDirectory(self, self.caption, str(start))
        if chosen:
            self.path.setText(str(Path(chosen)))


class ProjectsFolderDialog(QDialog):
    """First start: "Where should your projects go?" with the proposed folder, Change… and OK. OK stores the
    folder (``settings.set_projects_folder``, which creates it); a folder that cannot be made is said in place."""

    def __init__(self, proposed: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Your projects folder")
        self.row = _FolderRow(proposed, "Folder for your projects")
        self.problem = label("", "badge-warn", wrap=True)
        self.problem.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        self.ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setToolTip("Use this folder for your projects")
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(title("Where should your projects go?"))
        layout.addWidget(hint(WHAT_A_PROJECT_HOLDS))
        layout.addWidget(self.row)
        layout.addWidget(hint("New projects are created here unless you choose another folder for one."))
        layout.addWidget(self.problem)
        layout.addWidget(buttons)
        self.setMinimumWidth(560)

    def accept(self) -> None:  # noqa: D102 - stores the folder, or says in place why it cannot
        try:
            set_projects_folder(self.row.folder())
        except OSError as exc:
            self.problem.setText(f"This folder cannot be made ({exc.strerror or exc}): choose another one.")
            self.problem.show()
            return
        super().accept()


class NewProjectDialog(QDialog):
    """A project's name and where its folder goes (default: the projects folder); Create refuses, in place, an
    empty name and a folder that already holds a project."""

    def __init__(self, location: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New project")
        self.name = QLineEdit(placeholderText="e.g. Chest X-ray effusion (the project folder is named after it)",
                              toolTip="A name for the project; its folder is named after it")
        self.name.textChanged.connect(self._update)
        self.row = _FolderRow(location, "Where should the project folder be created?")
        self.row.path.textChanged.connect(self._update)
        self.where = label("", "hint", wrap=True)
        self.problem = label("", "badge-warn", wrap=True)
        self.problem.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.create_button = buttons.addButton("Create", QDialogButtonBox.ButtonRole.AcceptRole)
        self.create_button.setDefault(True)
        self.create_button.setToolTip("Create the project folder and open it")
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setToolTip("Close without creating a project")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Name:", self.name)
        form.addRow("In the folder:", self.row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.where)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)
        self.setMinimumWidth(560)
        self._update()

    def project_name(self) -> str:
        return self.name.text().strip()

    def target(self) -> Path:
        """The project folder that Create makes: the chosen folder / the name made safe for file systems."""
        return self.row.folder() / proj.safe_folder_name(self.project_name())

    def _update(self) -> None:
        self.problem.hide()
        self.where.setText(f"The project folder will be {self.target()}")
        self.where.setVisible(bool(self.project_name()))

    def refusal(self) -> str:
        """Why Create cannot go ahead now, in the user's words; "" when it can."""
        if not self.project_name():
            return "Type a name for the project first."
        if (self.target() / proj.PROJECT_FILE).exists():
            return (f"There is already a project named “{self.target().name}” in this folder: open it "
                    "(File > Open project) or choose another name.")
        return ""

    def accept(self) -> None:  # noqa: D102 - refuses in place, with the reason shown
        reason = self.refusal()
        if reason:
            self.problem.setText(reason)
            self.problem.show()
            self.name.setFocus()
            return
        super().accept()
