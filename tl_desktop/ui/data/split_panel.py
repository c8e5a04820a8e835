"""Split settings (validation/test share, seed, group-by) and the resulting counts with the leakage check."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.events import LeakageCheck
from tl_desktop.ui.data.scan_report import fill_table, make_table
from tl_desktop.ui.widgets.common import label

SUBSETS = ("train", "val", "test")
GROUP_CHOICES = [
    ("none", "None: images are independent",
     "Every image is assigned on its own. Use only when no patient or specimen has several images."),
    ("csv", "Group column of the CSV",
     "Images with the same value in the CSV's group column always land in the same part."),
    ("dicom:PatientID", "DICOM Patient ID",
     "All images of one patient land in the same part (the ID itself is never stored, only a salted hash)."),
    ("regex", "Part of the file name (pattern)",
     "A regular expression whose first bracketed group names the patient or specimen, e.g. (P\\d+)_"),
]


class SplitPanel(QGroupBox):
    """Emits ``requested(settings)`` when the user asks for a split; shows the split it is given."""

    requested = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Training, validation and test images", parent)
        self.val = self._fraction(0.15, "Share of images used to pick the best epoch (validation).")
        self.test = self._fraction(0.15, "Share of images kept aside and used only for the final evaluation (test).")
        self.seed = QSpinBox(minimum=0, maximum=999_999, toolTip="The same seed always gives the same split.")
        self.group = QComboBox(toolTip="Keep all images of one patient or specimen in the same part, so the test "
                                       "measures how the model does on new patients.")
        for value, text, tip in GROUP_CHOICES:
            self.group.addItem(text, value)
            self.group.setItemData(self.group.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.pattern = QLineEdit(placeholderText=r"e.g. (P\d+)_  — the first group names the patient",
                                 toolTip="Regular expression searched in each file path; its first group is the "
                                         "patient or specimen.")
        self.group.currentIndexChanged.connect(self._on_group_changed)
        self.button = QPushButton("Make split", toolTip="Divide the images into training, validation and test.")
        self.button.clicked.connect(self._request)
        self.counts = make_table(["Class", "Training", "Validation", "Test"], "Images per class in each part")
        self.reviewed = label("", "hint", wrap=True)
        self.leak = label("", wrap=True)
        self._verdict = ("", "hint")  # the leakage check's lines and style role
        self.audit_note = ""  # near-duplicate pairs the data-quality check found across this split's parts
        self._layout()
        self._on_group_changed()

    @staticmethod
    def _fraction(value: float, tip: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox(minimum=0.0, maximum=0.5, singleStep=0.05, decimals=2, value=value, toolTip=tip)
        return box

    def _layout(self) -> None:
        form = QFormLayout()
        shares = QHBoxLayout()
        shares.addWidget(label("validation"))
        shares.addWidget(self.val)
        shares.addWidget(label("test"))
        shares.addWidget(self.test)
        shares.addStretch()
        form.addRow("Shares:", shares)
        form.addRow("Seed:", self.seed)
        form.addRow("Group by:", self.group)
        form.addRow("", self.pattern)
        box = QVBoxLayout(self)
        box.addLayout(form)
        box.addWidget(self.button)
        box.addWidget(self.counts, 1)
        box.addWidget(self.reviewed)
        box.addWidget(self.leak)

    def _on_group_changed(self) -> None:
        self.pattern.setVisible(self.group.currentData() == "regex")

    def group_by(self) -> str | None:
        value = self.group.currentData()
        if value == "none":
            return None
        if value == "regex":
            return f"regex:{self.pattern.text().strip()}"
        return value

    def set_values(self, val: float, test: float, seed: int, group_by: str | None) -> None:
        self.val.setValue(val)
        self.test.setValue(test)
        self.seed.setValue(seed)
        key = "regex" if group_by and group_by.startswith("regex:") else (group_by or "none")
        index = self.group.findData(key)
        self.group.setCurrentIndex(max(index, 0))
        if key == "regex":
            self.pattern.setText(group_by.removeprefix("regex:"))

    def _request(self) -> None:
        self.requested.emit({"val_fraction": self.val.value(), "test_fraction": self.test.value(),
                             "seed": self.seed.value(), "group_by": self.group_by()})

    def show_split(self, report: Any | None, split: Any | None, check: LeakageCheck | None = None,
                   applied: dict[str, Any] | None = None) -> None:
        """Counts per class and part, the review decisions they include (``applied``: ``split.Divided.applied``)
        and the leakage verdict (``check`` from split.leakage_check; None: not checked)."""
        self.reviewed.setText(reviewed_text(applied))
        self.reviewed.setVisible(bool(self.reviewed.text()))
        if report is None or split is None:
            fill_table(self.counts, [])
            self._verdict = ("No split yet: press “Make split”." if report is not None else "", "hint")
            self._render_leak()
            return
        table = {c: dict.fromkeys(SUBSETS, 0) for c in report.classes}
        for sample in report.samples:
            subset = split.assignment.get(sample.path)
            if subset in SUBSETS:
                table.setdefault(sample.label, dict.fromkeys(SUBSETS, 0))[subset] += 1
        rows = [[c, *(table[c][s] for s in SUBSETS)] for c in table]
        rows.append(["All classes", *(sum(table[c][s] for c in table) for s in SUBSETS)])
        fill_table(self.counts, rows)
        self._show_leakage(check)

    def show_audit_crossings(self, count: int) -> None:
        """A line under the leakage verdict: near-duplicate pairs (data-quality check) in two parts."""
        self.audit_note = (f"⚠ The data-quality check found {count:,} near-duplicate pair{'s' if count != 1 else ''} "
                           f"in two parts of this split: decide on {'them' if count != 1 else 'it'} in the Data "
                           "quality tab (keep together or exclude one)." if count else "")
        self._render_leak()

    def _render_leak(self) -> None:
        text, role = self._verdict
        if self.audit_note:
            text, role = "\n".join(t for t in (text, self.audit_note) if t), "badge-warn"
        self.leak.setText(text)
        self.leak.setProperty("role", role)
        self.leak.style().unpolish(self.leak)
        self.leak.style().polish(self.leak)

    def _show_leakage(self, check: LeakageCheck | None) -> None:
        if check is None:
            text, role = "Split restored from the project.", "hint"
        else:
            notes = [*(f.message for f in check.findings), *(w.message for w in check.warnings)]
            mark = "⚠" if check.leaks else "✔"
            text = "\n".join([f"{mark} {check.verdict()}", *(f"• {n}" for n in notes[:8])])
            role = "badge-warn" if check.leaks or notes else "badge-ok"
        self._verdict = (text, role)
        self._render_leak()


def reviewed_text(applied: dict[str, Any] | None) -> str:
    """The review decisions a split includes, in one line ("" when none changed it)."""
    counts = (applied or {}).get("counts") or {}

    def images(n: int) -> str:
        return f"{n:,} image{'s' if n != 1 else ''}"

    parts = [text for n, text in (
        (counts.get("excluded", 0), f"{images(counts.get('excluded', 0))} left out"),
        (counts.get("relabelled", 0), f"{images(counts.get('relabelled', 0))} relabelled"),
        (counts.get("together_files", 0), f"{images(counts.get('together_files', 0))} kept together"),
        (counts.get("moved", 0), f"{images(counts.get('moved', 0))} moved to another part to stay together"),
    ) if n]
    return f"Your review decisions are included: {', '.join(parts)}." if parts else ""
