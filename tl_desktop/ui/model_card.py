"""The model card form: what the model is for, who would use it, what it is not for, and known limitations.

A short dialog reached from the Evaluate step ("Model card…", next to "Write report…"). The answers are the
project's ``model_card`` section (``core.project.intended_use.IntendedUse``), saved with the project; the
report's model card and checklist read them. Every box is plain text with the core's length limit.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.project.intended_use import LIMITS, IntendedUse
from tl_desktop.ui.session import Session
from tl_desktop.ui.widgets.common import hint, label

# field -> (label, example shown in the empty box, lines of the box)
QUESTIONS: dict[str, tuple[str, str, int]] = {
    "intended_use": ("What is the model for?",
                     "For example: mark chest radiographs that may show a pleural effusion, as a second reader "
                     "after the radiologist, for adult inpatients.", 3),
    "intended_users": ("Who would use its answers?",
                       "For example: radiologists and radiology residents; not patients.", 2),
    "out_of_scope": ("What is it NOT for?",
                     "For example: children under 16, portable (AP) films, CT images, any use without a "
                     "radiologist's review.", 3),
    "limitations": ("Known limitations (optional)",
                    "For example: all images come from one hospital and one scanner type (2018–2020); few very "
                    "small effusions. The report adds what the run recorded (test set size, grouping, ...).", 3),
}


class ModelCardDialog(QDialog):
    """Edits a project's model card; ``card()`` is what the boxes hold now."""

    def __init__(self, card: IntendedUse | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model card")
        self.boxes: dict[str, QPlainTextEdit] = {}
        self.counts: dict[str, QLabel] = {}
        form = QFormLayout()
        for key, (question, example, lines) in QUESTIONS.items():
            box = QPlainTextEdit(placeholderText=example, tabChangesFocus=True)
            box.setPlainText(getattr(card, key) if card is not None else "")
            box.setFixedHeight(box.fontMetrics().lineSpacing() * (lines + 1) + 12)
            count = label("", "hint")
            box.textChanged.connect(lambda k=key: self._bound(k))
            self.boxes[key], self.counts[key] = box, count
            column = QVBoxLayout()
            column.setSpacing(1)
            column.addWidget(box)
            column.addWidget(count)
            form.addRow(label(question, wrap=True), column)
            self._bound(key)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(hint("Your answers go into the report: its model card and its reporting checklist. "
                              "Write in plain words for a reader who does not know this project (an ethics board, "
                              "a journal, a colleague). The app fills in the rest: the data, the training, the "
                              "test figures and the limitations the run recorded."))
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.resize(640, self.sizeHint().height())

    def _bound(self, key: str) -> None:
        """Keep a box within its length limit (pasted text is cut) and show how much is used."""
        box, limit = self.boxes[key], LIMITS[key]
        text = box.toPlainText()
        if len(text) > limit:
            box.blockSignals(True)
            box.setPlainText(text[:limit])
            box.moveCursor(box.textCursor().MoveOperation.End)
            box.blockSignals(False)
            text = text[:limit]
        self.counts[key].setText(f"{len(text)} / {limit} characters")

    def card(self) -> IntendedUse:
        """The boxes' text, without characters the project would refuse (controls other than line breaks)."""
        def clean(text: str) -> str:
            return "".join(ch for ch in text if ch in "\n\t" or (ord(ch) >= 32 and ch != "\x7f")).strip()

        return IntendedUse(**{key: clean(box.toPlainText()) for key, box in self.boxes.items()})


def edit_model_card(parent: QWidget, session: Session) -> bool:
    """Show the form for the open project; on Save store the answers and save the project. Returns whether saved."""
    project = session.project
    if project is None:
        return False
    dialog = ModelCardDialog(project.model_card, parent)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return False
    card = dialog.card()
    project.model_card = None if card.empty else card
    session.save()
    session.message.emit("Model card saved with the project; the next report includes it.")
    return True
