"""Naming the classes of a labelling project: add, rename, remove, with the core's checks as one-line errors.

``ClassEditor`` edits a ``data.labels.Labels`` in place (the dialogs give it a copy and keep it on OK); the
order of the list is the order of the labelling buttons (keys 1-9).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.data.labels import Labels
from tl_desktop.core.errors import DataError
from tl_desktop.ui.widgets.common import hint, label

MIN_CLASSES = 2


class ClassEditor(QWidget):
    """The class list with a name field and Add / Rename / Remove; ``problem`` shows what was refused."""

    def __init__(self, labels: Labels, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels = labels
        self.removed = 0  # labels dropped with removed classes
        self.list = QListWidget(toolTip="The classes, in the order of the labelling buttons (keys 1-9)")
        self.list.currentTextChanged.connect(lambda text: self.name.setText(text))
        self.name = QLineEdit(placeholderText="Class name, e.g. normal", toolTip="The name of a class "
                              "(Enter adds it)")
        self.name.installEventFilter(self)  # Enter adds the class and goes no further (not the dialog's OK)
        self.add_button = QPushButton("Add", toolTip="Add the class named in the field")
        self.add_button.clicked.connect(self.add)
        self.rename_button = QPushButton("Rename", toolTip="Give the selected class the name in the field "
                                                           "(its labels keep it)")
        self.rename_button.clicked.connect(self.rename)
        self.remove_button = QPushButton("Remove", toolTip="Remove the selected class; its images become "
                                                           "unlabelled")
        self.remove_button.clicked.connect(self.remove)
        self.problem = label("", "badge-warn", wrap=True)
        row = QHBoxLayout()
        row.addWidget(self.name, 1)
        for button in (self.add_button, self.rename_button, self.remove_button):
            row.addWidget(button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.list, 1)
        box.addLayout(row)
        box.addWidget(self.problem)
        self._refill()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        """Enter with a name in the field adds the class and goes no further: it must not also press the
        dialog's default button (that started labelling after the first or second name). With the field
        empty, Enter is the dialog's as usual (Start labelling / OK)."""
        if (watched is self.name and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent)
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.name.text().strip()):
            self.add()
            return True
        return super().eventFilter(watched, event)

    def _refill(self, current: str | None = None) -> None:
        self.list.clear()
        for n, name in enumerate(self.labels.classes):
            self.list.addItem(name)
            self.list.item(n).setToolTip(f"key {n + 1}" if n < 9 else "no key: click its button")
        if current in self.labels.classes:
            self.list.setCurrentRow(self.labels.classes.index(current))

    def _apply(self, change, current: str | None) -> bool:
        try:
            result = change()
        except DataError as exc:
            self.problem.setText(str(exc)[:1].upper() + str(exc)[1:] + ".")
            return False
        self.problem.setText("")
        self._refill(current)
        return result is not False

    def add(self) -> None:
        name = self.name.text().strip()
        if self._apply(lambda: self.labels.add_class(name), name):
            self.name.clear()

    def rename(self) -> None:
        item = self.list.currentItem()
        if item is None:
            self.problem.setText("Select the class to rename in the list first.")
            return
        old, new = item.text(), self.name.text().strip()
        self._apply(lambda: self.labels.rename_class(old, new), new)

    def remove(self) -> None:
        item = self.list.currentItem()
        if item is None:
            self.problem.setText("Select the class to remove in the list first.")
            return
        dropped = self.labels.remove_class(item.text())
        self.removed += dropped
        self._refill()
        self.problem.setText(f"{dropped} image{'s' if dropped != 1 else ''} labelled '{item.text()}' will be "
                             "unlabelled." if dropped else "")

    def check(self) -> bool:
        """At least two classes (else the problem line says so)."""
        if len(self.labels.classes) < MIN_CLASSES:
            self.problem.setText(f"Name at least {MIN_CLASSES} classes (type a name, then Add).")
            return False
        return True


class ClassesDialog(QDialog):
    """Change the classes of the labels being given (a copy; ``labels`` after OK)."""

    def __init__(self, labels: Labels, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Classes")
        self.labels = Labels.from_dict(labels.to_dict())
        self.editor = ClassEditor(self.labels)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._ok)
        buttons.rejected.connect(self.reject)
        box = QVBoxLayout(self)
        box.addWidget(hint("The order is the order of the buttons: the first class has key 1, the second key 2…"))
        box.addWidget(self.editor, 1)
        box.addWidget(buttons)
        self.resize(460, 360)

    def _ok(self) -> None:
        if self.editor.check():
            self.accept()
