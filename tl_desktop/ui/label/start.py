"""Starting to label in the app, from the Data step: "These images have no labels yet" / "Label in the app".

``LabelEntry`` is the Data step's line about labelling (shown when there is something to label, or nothing
chosen yet); ``StartDialog`` asks what to label (every image of a folder, or the images without a class
folder / CSV label) and the class names. On "Start labelling" the project's labels are set up
(``Session.set_labels``, saved at once; the user's files are never moved) and the Label step opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.data.labels import Labels
from tl_desktop.ui.label.classes import ClassEditor
from tl_desktop.ui.session import Session
from tl_desktop.ui.widgets.common import hint, label

NOT_IN_CLASS_FOLDER = "not in a class folder"  # the start of the scan's reason for such files


def to_label_count(report: Any) -> int:
    """Images of a scan without labels that labelling in the app would take (not yet set up)."""
    if report is None:
        return 0
    return len(report.unlabelled) + sum(s.reason.startswith(NOT_IN_CLASS_FOLDER) for s in report.skipped)


class LabelEntry(QWidget):
    """One line and a button in the Data step: start labelling, or go on with it."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.text = label("", wrap=True)
        self.button = QPushButton("Label in the app…", toolTip="Sort images into classes here, one by one or many "
                                  "at a time; the model proposes labels as you go")
        self.button.setProperty("role", "primary")
        self.button.clicked.connect(self.start)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.text, 1)
        row.addWidget(self.button)
        self.setVisible(False)

    def show_scan(self, report: Any) -> None:
        """Say what there is to label in this scan (or hide when the images are all labelled)."""
        project = self.session.project
        if project is None:
            self.setVisible(False)
            return
        labels = project.labels
        if labels is not None:
            unsure = set(labels.not_sure)  # the scan lists them as unlabelled; the Label step counts them apart
            left = sum(s.path not in unsure for s in report.unlabelled) if report is not None else 0
            self.text.setText(f"Labelling in the app: {len(labels.assigned):,} labelled, {left:,} still to label, "
                              f"{len(labels.not_sure):,} not sure.")
            self.button.setText("Go on labelling")
        elif report is None:
            self.text.setText("No labels yet? Choose a folder of unsorted images and label them in the app.")
            self.button.setText("Label in the app…")
        else:
            count = to_label_count(report)
            unsorted = report.unusable and not report.samples
            if not count and not unsorted:
                self.setVisible(False)
                return
            self.text.setText("These images have no labels yet: label them here, one by one or many at a time."
                              if unsorted else
                              f"{count:,} image{'s have' if count != 1 else ' has'} no label (not in a class folder).")
            self.button.setText("Label in the app…")
        self.setVisible(True)

    def start(self) -> None:
        """Open the Label step, or first ask what to label and the class names."""
        project = self.session.project
        if project is None:
            return
        if project.labels is not None:
            self.session.labelling_requested.emit()
            return
        report = self.session.report
        dialog = StartDialog(project.source_path(), project.source.kind if project.source_path() else None,
                             list(report.classes) if report is not None else [], self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        layout = dialog.layout_choice()
        begin(self.session, layout, dialog.folder if layout == "images" else None, dialog.labels.classes)


def begin(session: Session, layout: str, folder: str | Path | None, classes: list[str]) -> None:
    """Set up labelling in the open project: ``layout`` (``labels.LAYOUTS``), the data ``folder`` when it
    changes, the ``classes``; then the Label step opens."""
    project = session.project
    if project is None:
        return
    if folder is not None and Path(folder) != project.source_path():
        project.set_source(folder, "folder")
        project.split = None
        session.split = None
    session.set_labels(Labels(layout, list(classes)))
    session.labelling_requested.emit()


class StartDialog(QDialog):
    """What to label and the classes' names."""

    def __init__(self, source: Path | None, kind: str | None, classes: list[str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Label images in the app")
        self.folder: str | None = str(source) if source is not None and kind == "folder" else None
        self.labels = Labels("images", list(classes))
        self.every = QRadioButton("Label every image in a folder (sub-folder names are not classes)",
                                  toolTip="For a folder of unsorted images, or one folder per patient")
        self.rest = QRadioButton("Keep the labels I have (class folders or the CSV) and label the images "
                                 "without one", toolTip="Images directly in the data folder, or CSV rows with an "
                                 "empty label, are the ones to label")
        self.rest.setEnabled(source is not None)
        group = QButtonGroup(self)
        for button in (self.every, self.rest):
            group.addButton(button)
        (self.rest if classes else self.every).setChecked(True)
        self.where = label("", "hint", wrap=True)
        self.choose = QPushButton("Choose folder…", toolTip="The folder of images to label (nothing is moved)")
        self.choose.clicked.connect(self._choose)
        self.editor = ClassEditor(self.labels)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        start = self.buttons.addButton("Start labelling", QDialogButtonBox.ButtonRole.AcceptRole)
        start.setToolTip("Open the Label step")
        self.buttons.accepted.connect(self._ok)
        self.buttons.rejected.connect(self.reject)
        self.every.toggled.connect(self._update)
        self._arrange()
        self._update()
        self.resize(620, 440)

    def _arrange(self) -> None:
        where = QHBoxLayout()
        where.addWidget(self.where, 1)
        where.addWidget(self.choose)
        box = QVBoxLayout(self)
        box.addWidget(hint("Your files stay where they are: the labels are stored in the project and can be "
                           "exported as a CSV."))
        box.addWidget(self.every)
        box.addLayout(where)
        box.addWidget(self.rest)
        box.addWidget(label("Classes (at least two; keys 1–9 choose them while labelling):"))
        box.addWidget(self.editor, 1)
        box.addWidget(self.buttons)

    def layout_choice(self) -> str:
        return "images" if self.every.isChecked() else "as-listed"

    def _choose(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images to label", self.folder or "")
        if folder:
            self.folder = folder
            self.every.setChecked(True)
            self._update()

    def _update(self) -> None:
        self.choose.setEnabled(self.every.isChecked())
        self.where.setText(f"Folder: {self.folder}" if self.folder else "No folder chosen yet.")

    def _ok(self) -> None:
        if self.every.isChecked() and not self.folder:
            self.editor.problem.setText("Choose the folder of images to label.")
            return
        if self.editor.check():
            self.accept()
