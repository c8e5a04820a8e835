"""Split settings (validation/test share, seed, group-by with its live preview, ``grouping``) and the resulting
counts with the leakage check. "Make split" either asks for the split or says in place why it cannot."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.events import LeakageCheck
from tl_desktop.ui.data.grouping import GroupingChooser
from tl_desktop.ui.data.scan_report import fill_table, make_table
from tl_desktop.ui.glossary import term_button, with_term
from tl_desktop.ui.widgets.common import label

SUBSETS = ("train", "val", "test")
PART_HEADERS = ["Training", "Validation", "Test"]
FINDING_HEADER = "Finding"  # the first column of a multi-label set's tables
NO_DATA = "Nothing to split yet: choose a folder or a CSV of images above first."
PENDING = "The split below does not use this grouping yet: press “Make split” to divide the images by it."
BAD_GROUPING = "Not split: the “Group by” pattern above cannot be used yet. Fix it, or pick a ready-made choice."


class SplitPanel(QGroupBox):
    """Emits ``requested(settings)`` when the user asks for a split; shows the split it is given."""

    requested = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Training, validation and test images", parent)
        self.val = self._fraction(0.15, "Share of images used to pick the best epoch (validation).")
        self.test = self._fraction(0.15, "Share of images kept aside and used only for the final evaluation (test).")
        self.seed = QSpinBox(minimum=0, maximum=999_999, toolTip="The same seed always gives the same split.")
        self.grouping = GroupingChooser()
        self.group, self.pattern = self.grouping.group, self.grouping.pattern
        self.grouping.changed.connect(self._on_grouping_changed)
        self.button = QPushButton("Make split", toolTip="Divide the images into training, validation and test.")
        self.button.clicked.connect(self._request)
        self.why = label("", "badge-warn", wrap=True)  # why "Make split" did nothing, said in place
        self.why.setObjectName("splitWhy")
        self.why.setVisible(False)
        self.report: Any | None = None  # the scan the split would divide (None: nothing scanned)
        self._shown_grouping: tuple[bool, str | None] = (False, None)  # a split is shown, and its group_by
        self.counts = make_table(["Class", *PART_HEADERS], "Images per class in each part (a multi-label set: "
                                 "images showing each finding; an image with two findings counts under both)")
        self.reviewed = label("", "hint", wrap=True)
        self.leak = label("", wrap=True)
        self._verdict = ("", "hint")  # the leakage check's lines and style role
        self.audit_note = ""  # near-duplicate pairs the data-quality check found across this split's parts
        self._layout()

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
        shares.addWidget(term_button("validation_test", self))
        shares.addStretch()
        form.addRow("Shares:", shares)
        form.addRow("Seed:", self.seed)
        form.addRow("Group by:", self.grouping)
        box = QVBoxLayout(self)
        box.addLayout(form)
        box.addWidget(self.button)
        box.addWidget(self.why)
        box.addWidget(self.counts, 1)
        box.addWidget(self.reviewed)
        box.addLayout(with_term(self.leak, "leakage", self))

    def group_by(self) -> str | None:
        return self.grouping.group_by()

    def set_report(self, report: Any | None) -> None:
        """The scanned images: what "Make split" divides and what the grouping preview looks at."""
        self.report = report
        self.grouping.set_report(report)
        self._say(None)

    def set_values(self, val: float, test: float, seed: int, group_by: str | None) -> None:
        self.val.setValue(val)
        self.test.setValue(test)
        self.seed.setValue(seed)
        self.grouping.set_group_by(group_by)

    def _request(self) -> None:
        """Ask for the split, or say in place why it cannot be made yet."""
        why = self.why_not()
        self._say(why)
        if why is None:
            self.requested.emit({"val_fraction": self.val.value(), "test_fraction": self.test.value(),
                                 "seed": self.seed.value(), "group_by": self.group_by()})

    def why_not(self) -> str | None:
        """Why "Make split" cannot act now, in one plain line; None when it can."""
        if self.report is None:
            return NO_DATA
        if not self.report.usable:
            return f"There are no usable images to split: {self.report.unusable} (see the Scan report tab)."
        if self.grouping.problem() is not None:
            return BAD_GROUPING
        return None

    def _say(self, text: str | None, role: str = "badge-warn") -> None:
        """The line under "Make split": why it did nothing, or that the split shown is not the chosen one."""
        self.why.setText(text or "")
        self.why.setVisible(bool(text))
        self.why.setProperty("role", role)
        self.why.style().unpolish(self.why)
        self.why.style().polish(self.why)

    def _on_grouping_changed(self) -> None:
        shown, grouping = self._shown_grouping
        self._say(PENDING if shown and self.group_by() != grouping and self.grouping.problem() is None else None,
                  "hint")

    def show_split(self, report: Any | None, split: Any | None, check: LeakageCheck | None = None,
                   applied: dict[str, Any] | None = None) -> None:
        """Counts per class and part, the review decisions they include (``applied``: ``split.Divided.applied``)
        and the leakage verdict (``check`` from split.leakage_check; None: not checked)."""
        self._shown_grouping = (split is not None, split.group_by if split is not None else None)
        self._on_grouping_changed()
        self.reviewed.setText(reviewed_text(applied))
        self.reviewed.setVisible(bool(self.reviewed.text()))
        if report is None or split is None:
            fill_table(self.counts, [])
            self._verdict = ("No split yet: press “Make split”." if report is not None else "", "hint")
            self._render_leak()
            return
        self.counts.setHorizontalHeaderLabels([FINDING_HEADER if report.is_multilabel else "Class", *PART_HEADERS])
        if report.is_multilabel:
            fill_table(self.counts, finding_rows(report, split))
            self._show_leakage(check)
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


def finding_rows(report: Any, split: Any) -> list[list[Any]]:
    """A multi-label split's table: images showing each finding per part (``split.counts``), then the images
    without any finding and all images (an image with several findings counts once there)."""
    counts = split.counts(report)
    names = list(dict.fromkeys([*report.classes, *(c for s in SUBSETS for c in counts[s])]))
    parts = [split.assignment.get(s.path) for s in report.samples]
    none = [split.assignment.get(s.path) for s in report.samples if not s.findings]
    return ([[c, *(counts[s].get(c, 0) for s in SUBSETS)] for c in names]
            + [["No finding", *(none.count(s) for s in SUBSETS)], ["All images", *(parts.count(s) for s in SUBSETS)]])


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
