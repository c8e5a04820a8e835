"""A line of notes that stays readable: identical notes once with a count, the first note in full, and every
note in a scrollable dialog of bounded size (a tooltip holding nine copies of one sentence ran off the screen).
"""

from __future__ import annotations

import html
from collections import Counter

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTextBrowser, QVBoxLayout, QWidget

NOTES_LINK = "notes:all"
TIP_NOTES = 3       # notes in the tooltip; the dialog holds them all
DIALOG_SIZE = (560, 360)


def distinct_notes(notes: list[str]) -> list[tuple[str, int]]:
    """Each different note once, in the order first seen, with how many times it came."""
    counts = Counter(n.strip() for n in notes if n and n.strip())
    return list(counts.items())


def _counted(note: str, count: int) -> str:
    return f"{note} (noted {count} times)" if count > 1 else note


def notes_text(notes: list[str]) -> str:
    """The line: ``Note: <first note> (9 times)``, and ``... and 2 other notes: <a>show all</a>`` when there are
    more different ones (rich text; the notes are escaped). "" for none."""
    distinct = distinct_notes(notes)
    if not distinct:
        return ""
    first = html.escape(_counted(*distinct[0]), quote=False)
    others = len(distinct) - 1
    if not others:
        return f"Note: {first}"
    return (f"Note: {first} — and {others} other note{'s' if others > 1 else ''}: "
            f'<a href="{NOTES_LINK}">show all</a>')


def notes_tooltip(notes: list[str]) -> str:
    """At most ``TIP_NOTES`` notes as wrapped paragraphs (rich text, so Qt wraps it to a bounded width)."""
    distinct = distinct_notes(notes)
    shown = "".join(f"<p>{html.escape(_counted(n, c), quote=False)}</p>" for n, c in distinct[:TIP_NOTES])
    more = len(distinct) - TIP_NOTES
    return shown + (f"<p><i>{more} more: click “show all”.</i></p>" if more > 0 else "")


def notes_html(notes: list[str]) -> str:
    """Every different note as a list item, with its count: the dialog's text."""
    items = "".join(f"<li>{html.escape(_counted(n, c), quote=False)}</li>" for n, c in distinct_notes(notes))
    return f"<ul>{items}</ul>"


class NotesDialog(QDialog):
    """Every note, each once with its count, in a scrollable text of bounded size."""

    def __init__(self, notes: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notesDialog")
        self.setWindowTitle("Notes on these figures")
        self.text = QTextBrowser(openLinks=False)
        self.text.setHtml(notes_html(notes))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        box = QVBoxLayout(self)
        box.addWidget(self.text, 1)
        box.addWidget(buttons)
        self.resize(*DIALOG_SIZE)


def show_notes(line: QLabel, notes: list[str]) -> None:
    """Put ``notes`` on ``line``: the short line, the bounded tooltip, and "show all" opening ``NotesDialog``."""
    line.setProperty("notes", list(notes))
    if not line.property("notes_linked"):
        line.setProperty("notes_linked", True)
        line.linkActivated.connect(lambda link: _open(line) if link == NOTES_LINK else None)
    line.setTextFormat(Qt.TextFormat.RichText)  # the notes are escaped: "&" and "<" read as written
    line.setText(notes_text(notes))
    line.setToolTip(notes_tooltip(notes) if len(distinct_notes(notes)) > 1 else "")


def _open(line: QLabel) -> NotesDialog:
    dialog = NotesDialog(list(line.property("notes") or []), line.window())
    dialog.open()
    return dialog
