"""Group images by patient from their file names, in words: ready-made choices ("the part of the name before
the first `_`", "... before the first `-`", "the folder name"), a regular expression for anything else, and a
live preview of the groups each one finds.

Every choice is stored as the core's ``regex:<pattern>`` grouping (``core.data.split.group_values``), so the
engine, the project file and the command line see nothing new; a stored pattern equal to a ready-made one
shows as that choice again. The preview and the check of a typed pattern run here on the scanned file names
(a few thousand searches, instant); the core still validates the pattern when the split is made.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QVBoxLayout, QWidget

from tl_desktop.ui.glossary import with_term
from tl_desktop.ui.widgets.common import label

# key, shown text, pattern searched in each image's path (relative, "/" separators), tooltip
PRESETS = [
    ("name-underscore", "Patient ID is the part of the file name before the first “_”", r"(?:^|/)([^/_]+)_[^/]*$",
     "P017_left.png and P017_right.png belong to patient P017."),
    ("name-dash", "Patient ID is the part of the file name before the first “-”", r"(?:^|/)([^/-]+)-[^/]*$",
     "P017-1.png and P017-2.png belong to patient P017."),
    ("folder", "Patient ID is the name of the folder holding the image", r"([^/]+)/[^/]+$",
     "normal/P017/scan1.png and normal/P017/scan2.png belong to patient P017."),
]
CUSTOM = "regex"
# value, shown text, tooltip; the ready-made file-name choices go between DICOM and the own pattern
CHOICES = [
    ("none", "None: images are independent",
     "Every image is assigned on its own. Use only when no patient or specimen has several images."),
    ("csv", "Group column of the CSV",
     "Images with the same value in the CSV's group column always land in the same part."),
    ("dicom:PatientID", "DICOM Patient ID",
     "All images of one patient land in the same part (the ID itself is never stored, only a salted hash)."),
    *[(f"preset:{key}", text, tip) for key, text, _, tip in PRESETS],
    (CUSTOM, "My own pattern (regular expression)",
     "A pattern searched in each file's path; its first bracketed part names the patient, e.g. (P\\d+)_"),
]
EXAMPLE = "(P\\d+)_ takes “P001” from “P001_scan.png”"
EXAMPLES_SHOWN = 3
# the start of Python's message (re.error.msg) -> what is wrong, in words
_REGEX_WORDS = [
    ("missing ), unterminated subpattern", "a bracket “(” is opened but never closed with “)”"),
    ("unbalanced parenthesis", "a “)” closes a bracket that was never opened"),
    ("unterminated character set", "a “[” is opened but never closed with “]”"),
    ("nothing to repeat", "“*”, “+”, “?” or “{…}” must come after something to repeat"),
    ("multiple repeat", "two repeat signs follow each other (such as “**” or “+*”)"),
    ("bad escape", "a backslash “\\” is followed by a letter that means nothing here"),
    ("bad character range", "a range inside “[…]” runs backwards (such as “z-a”)"),
    ("missing ), unterminated", "a bracket “(” is opened but never closed with “)”"),
    ("unknown extension", "“(?” is followed by something that is not a known kind of bracket"),
]


def preset_pattern(key: str) -> str:
    """The pattern of a ready-made choice (``name-underscore``, ``name-dash``, ``folder``)."""
    return {k: pattern for k, _, pattern, _ in PRESETS}[key]


def preset_of(pattern: str) -> str | None:
    """The ready-made choice whose pattern this is, else None (a pattern the user typed)."""
    return next((key for key, _, p, _ in PRESETS if p == pattern), None)


def pattern_problem(pattern: str) -> str | None:
    """What is wrong with a typed pattern, in one plain line (None: it can be used)."""
    if not pattern.strip():
        return "Type a pattern, or pick one of the ready-made “Patient ID is …” choices."
    try:
        re.compile(pattern)
    except re.error as exc:
        words = next((w for start, w in _REGEX_WORDS if exc.msg.startswith(start)), "it is not a valid pattern")
        where = f" (at character {exc.pos + 1})" if exc.pos is not None else ""
        return f"This pattern cannot be used: {words}{where}. Example: {EXAMPLE}."
    return None


@dataclass
class GroupPreview:
    """The groups one pattern finds in a scan's file names."""

    images: int
    counts: Counter = field(default_factory=Counter)  # group -> images
    unmatched: list[str] = field(default_factory=list)  # paths the pattern finds nothing in
    same_as_classes: bool = False  # one group per class, each of one class only (e.g. the class folders)

    def sentence(self) -> str:
        """``3 patients (groups) found in 36 images, e.g. P001 (12 images), ...``, with the cautions."""
        if not self.counts:
            return (f"⚠ No file name matches: each of the {self.images:,} images would count as its own patient, "
                    "as with no grouping.")
        examples = ", ".join(f"{g} ({n} image{'s' if n != 1 else ''})"
                             for g, n in self.counts.most_common(EXAMPLES_SHOWN))
        n = len(self.counts)
        lines = [f"{n:,} patient{'s' if n != 1 else ''} (groups) found in {self.images:,} images, e.g. {examples}."]
        if self.unmatched:
            lines.append(f"⚠ {len(self.unmatched):,} image{'s' if len(self.unmatched) != 1 else ''} match nothing "
                         f"and count as their own patient, e.g. {self.unmatched[0]}.")
        if self.same_as_classes:
            lines.append("⚠ There is one group per class: every class would be one patient, so the split cannot "
                         "keep a class in each part. Choose another way of finding the patient.")
        elif n == self.images:
            lines.append("Every image is its own group: this is the same as no grouping.")
        return "\n".join(lines)

    @property
    def warns(self) -> bool:
        return not self.counts or bool(self.unmatched) or self.same_as_classes


def preview(samples: list[tuple[str, str]], pattern: str) -> GroupPreview:
    """The groups ``pattern`` finds in ``samples`` ((relative path, class) pairs), as ``group_values`` takes
    them: the first bracketed part of the first match, or the whole match when the pattern has no brackets."""
    compiled = re.compile(pattern)
    out = GroupPreview(len(samples))
    classes: dict[str, set[str]] = {}  # group -> the classes of its images
    for path, label_ in samples:
        found = compiled.search(path)
        if found is None:
            out.unmatched.append(path)
            continue
        value = found.group(1) if compiled.groups else found.group(0)
        out.counts[value] += 1
        classes.setdefault(value, set()).add(label_)
    all_classes = {c for _, c in samples}
    out.same_as_classes = (len(all_classes) > 1 and len(classes) == len(all_classes)
                           and all(len(c) == 1 for c in classes.values()))
    return out


class GroupingChooser(QWidget):
    """The "Group by" choice, the pattern field (for "My own pattern") and the live preview under them.

    ``group_by()`` is the core's setting (None, ``csv``, ``dicom:PatientID`` or ``regex:<pattern>``);
    ``problem()`` says why it cannot be used yet (a typed pattern that is not valid), None when it can.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.samples: list[tuple[str, str]] = []
        self.csv_groups: list[str | None] = []
        self.group = QComboBox(toolTip="Keep all images of one patient or specimen in the same part, so the test "
                                       "measures how the model does on new patients.")
        for value, text, tip in CHOICES:
            self.group.addItem(text, value)
            self.group.setItemData(self.group.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.pattern = QLineEdit(placeholderText=f"e.g. {EXAMPLE}", toolTip=(
            "A regular expression searched in each file's path (folders included, “/” between them); its first "
            "bracketed part is the patient or specimen."))
        self.preview = label("", "hint", wrap=True)
        self.preview.setObjectName("groupPreview")
        self.preview.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(with_term(self.group, "grouped_split", self))  # "?": what grouping is for
        for widget in (self.pattern, self.preview):
            box.addWidget(widget)
        self.group.currentIndexChanged.connect(self._refresh)
        self.pattern.textChanged.connect(self._refresh)
        self._refresh()

    def set_report(self, report: Any | None) -> None:
        """The scanned images the preview looks at (None: not scanned yet)."""
        samples = list(report.samples) if report is not None else []
        self.samples = [(s.path, s.label) for s in samples]
        self.csv_groups = [s.group for s in samples]
        self._refresh()

    def group_by(self) -> str | None:
        value = self.group.currentData()
        if value == "none":
            return None
        if value.startswith("preset:"):
            return f"regex:{preset_pattern(value.removeprefix('preset:'))}"
        if value == CUSTOM:
            return f"regex:{self.pattern.text().strip()}"
        return value

    def set_group_by(self, group_by: str | None) -> None:
        pattern = group_by.removeprefix("regex:") if group_by and group_by.startswith("regex:") else None
        key = group_by or "none"
        if pattern is not None:
            preset = preset_of(pattern)
            key = f"preset:{preset}" if preset else CUSTOM
            if not preset:
                self.pattern.setText(pattern)
        self.group.setCurrentIndex(max(self.group.findData(key), 0))
        self._refresh()

    def problem(self) -> str | None:
        """Why the chosen grouping cannot be used (a typed pattern that is empty or not valid), else None."""
        if self.group.currentData() != CUSTOM:
            return None
        return pattern_problem(self.pattern.text().strip())

    def _refresh(self, *_args: Any) -> None:
        self.pattern.setVisible(self.group.currentData() == CUSTOM)
        text, warn = self._preview_text()
        self.preview.setText(text)
        self.preview.setVisible(bool(text))
        _set_role(self.preview, "badge-warn" if warn else "hint")
        self.changed.emit()

    def _preview_text(self) -> tuple[str, bool]:
        value = self.group.currentData()
        if value == "none":
            return "", False
        if (problem := self.problem()) is not None:
            return problem, True
        if not self.samples:
            return "The patients found will show here once the images are scanned.", False
        if value == "csv":
            found = Counter(g for g in self.csv_groups if g)
            if not found:
                return "⚠ The CSV has no “group” column: choose another way of finding the patient.", True
            return f"{len(found):,} groups in the CSV's group column, over {len(self.samples):,} images.", False
        if value.startswith("dicom:"):
            return "The Patient ID is read from each DICOM file when you press “Make split”.", False
        result = preview(self.samples, self.group_by().removeprefix("regex:"))
        return result.sentence(), result.warns


def _set_role(widget: QLabel, role: str) -> None:
    widget.setProperty("role", role)
    widget.style().unpolish(widget)
    widget.style().polish(widget)
