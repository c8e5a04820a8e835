"""The start page: new project, open project, recent projects, and the sample project for first-time users."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.ui.settings import projects_folder, recent_projects
from tl_desktop.ui.widgets.common import hint, icon, label, title
from tl_desktop.ui.widgets.files import show_in_folder


class WelcomeView(QWidget):
    new_requested = Signal()
    open_requested = Signal()
    sample_requested = Signal()
    recent_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sample_button = QPushButton(icon("sample"), "  Open the sample project (handwritten digits)")
        self.sample_button.setProperty("role", "primary")
        self.sample_button.setIconSize(QSize(28, 28))
        self.sample_button.setToolTip("1,797 handwritten digits (0-9) from scikit-learn, ready to train in a "
                                      "minute on any computer. Nothing is downloaded.")
        self.sample_button.clicked.connect(self.sample_requested)
        self.new_button = QPushButton(icon("new"), "New project…", toolTip="Start a project for your images (Ctrl+N)")
        self.new_button.clicked.connect(self.new_requested)
        self.open_button = QPushButton(icon("open"), "Open project…", toolTip="Open an existing project (Ctrl+O)")
        self.open_button.clicked.connect(self.open_requested)
        self.recent = QListWidget(toolTip="Double-click to open")
        self.recent.itemActivated.connect(lambda item: self.recent_requested.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.folder_note = hint("")
        self.folder_note.linkActivated.connect(lambda _url: show_in_folder(projects_folder(), self))
        self.sample_box = self._sample_box()
        self._arrange()
        self.refresh()

    def _sample_box(self) -> QFrame:
        box = QFrame(frameShape=QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(box)
        layout.addWidget(label("New here? Try the sample first", "figure"))
        layout.addWidget(hint("The sample project teaches a model to read handwritten digits. It shows every step "
                              "— images, model, training curves, evaluation, export and prediction — in about a "
                              "minute, before you use your own images."))
        layout.addWidget(self.sample_button, 0, Qt.AlignmentFlag.AlignLeft)
        return box

    def _arrange(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.open_button)
        buttons.addStretch()
        column = QVBoxLayout()
        column.setAlignment(Qt.AlignmentFlag.AlignTop)
        column.addSpacing(40)
        column.addWidget(title("Transfer learning on your own images"))
        column.addWidget(hint("Everything runs on this computer: your images never leave it, and no internet "
                              "connection is needed. A project keeps your images' location, the split into "
                              "training and test data, and every model you train."))
        column.addSpacing(12)
        column.addWidget(self.sample_box)
        column.addSpacing(12)
        column.addLayout(buttons)
        column.addWidget(self.folder_note)
        column.addSpacing(12)
        self.recent_title = label("Recent projects", "figure")
        column.addWidget(self.recent_title)
        column.addWidget(self.recent, 1)
        column.addStretch(1)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(column, 4)
        outer.addStretch(1)

    def refresh(self) -> None:
        """Reload the recent projects (the list is hidden when there are none) and the projects folder."""
        folder = projects_folder()
        self.folder_note.setText(f"New projects go into {folder}" + (
            ' (<a href="show">show in folder</a>)' if folder.is_dir() else ""))
        self.recent.clear()
        projects = recent_projects()
        for folder in projects:
            item = QListWidgetItem(icon("data"), f"{folder.name}    —    {folder}")
            item.setData(Qt.ItemDataRole.UserRole, str(folder))
            self.recent.addItem(item)
        self.recent.setVisible(bool(projects))
        self.recent_title.setVisible(bool(projects))

    def has_sample_offer(self) -> bool:
        return self.sample_box.isVisibleTo(self)
