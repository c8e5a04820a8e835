"""The Subgroups tab of Evaluate: the test figures broken down by a CSV column or a non-identifying DICOM tag.

The attributes offered are those the core finds on the run's test images (``subgroups.offered_attributes``);
identifying tags are never among them, and refused columns are named with the reason. "Show" stores the
breakdown in the run's evaluation artefact (``current.set_subgroups``), and every number in the tables is read
from what was stored there, as the report reads it (``subgroups.cell``). Flagged rows are marked and the rule is
written under the tables in plain words.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.core.evaluation import subgroup_tables as tables
from tl_desktop.core.evaluation import subgroups as sg
from tl_desktop.ui.widgets.common import label
from tl_desktop.ui.widgets.errors import task_failed
from tl_desktop.workers import Worker

FLAG = tables.FLAG
FLAG_BRUSH = QBrush(QColor("#fbe3e1"))


def _offered_task(run_dir: str, *, callback, cancel) -> list[sg.Attribute]:
    return sg.offered_attributes(run_dir)


def _compute_task(run_dir: str, names: list[str], *, callback, cancel) -> dict[str, Any]:
    from tl_desktop.core.evaluation.current import set_subgroups

    return set_subgroups(run_dir, names, callback=callback, cancel=cancel)


class SubgroupsPanel(QWidget):
    """Choose attributes, show one table per attribute from the stored breakdown."""

    computed = Signal(object)  # the clinical.json dict with the new breakdown (stored already)
    chosen = Signal(list)  # the attributes the user asked for (the project keeps them)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_dir: str | None = None
        self.workers: dict[str, Worker] = {}
        self.boxes: dict[str, QCheckBox] = {}
        self.tables: dict[str, QTableWidget] = {}
        self._wanted: list[str] = []
        self._pending: dict[str, Any] | None = None  # a run's evaluation whose attributes are not looked for yet
        self.intro = label("Does the model work as well for every group? Choose what to break the test figures "
                           "down by: columns of your CSV, or DICOM tags that describe the patient group or the "
                           "scanner. Tags that identify a patient (ID, name, birth date, study) are never offered.",
                           "hint", wrap=True)
        self.choices = QHBoxLayout()
        self.show_button = QPushButton("Show subgroups", enabled=False, toolTip=(
            "Compute the figures of each chosen group from the stored test predictions (the model is not run "
            "again) and keep them with this evaluation"))
        self.show_button.clicked.connect(self.compute)
        self.refused = label("", "hint", wrap=True)
        self.decision = label("", wrap=True)
        self.rule = label("", "hint", wrap=True)
        self.note = label("", "hint", wrap=True)
        self.body = QVBoxLayout()
        self._arrange()

    def _arrange(self) -> None:
        row = QHBoxLayout()
        row.addLayout(self.choices)
        row.addStretch(1)
        row.addWidget(self.show_button)
        holder = QWidget()
        inner = QVBoxLayout(holder)
        inner.addLayout(self.body)
        inner.addStretch(1)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(holder)
        box = QVBoxLayout(self)
        for widget in (self.intro,):
            box.addWidget(widget)
        box.addLayout(row)
        box.addWidget(self.refused)
        box.addWidget(self.note)
        box.addWidget(self.decision)
        box.addWidget(scroll, 1)
        box.addWidget(self.rule)

    # --- the run ------------------------------------------------------------------------------------
    def set_run(self, run_dir: str, data: dict[str, Any], wanted: list[str] | None = None) -> None:
        """Show the run's stored breakdown and look for the attributes its test images offer; ``wanted``
        (the project's choice) is computed when the stored breakdown is of other attributes."""
        self.run_dir = run_dir
        self._wanted = list(wanted or [])
        self.show_block(data.get("subgroups"))
        self._pending = data
        if self._wanted or self.isVisible():
            self._look()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        """The test images are read for attributes when the tab is first shown (or the project wants some)."""
        super().showEvent(event)
        self._look()

    def _look(self) -> None:
        data, self._pending = self._pending, None
        if data is None or self.run_dir is None:
            return
        self.note.setText("Looking at the test images for attributes…")
        worker = Worker(_offered_task, self.run_dir, name="subgroup attributes")
        worker.finished.connect(lambda found, r=self.run_dir: self._on_offered(r, found, data))
        worker.errored.connect(lambda failure: self.note.setText(f"No attributes found: {failure.message}"))
        self._start("offered", worker)

    def _on_offered(self, run_dir: str, found: list[sg.Attribute], data: dict[str, Any]) -> None:
        if run_dir != self.run_dir:
            return
        self._clear_choices()
        stored = sg.stored_attributes(data)
        ticked = set(stored or self._wanted)
        for attribute in (a for a in found if a.offered):
            where = "CSV column" if attribute.source == "csv" else "DICOM tag"
            box = QCheckBox(attribute.name, toolTip=f"{where}, {attribute.values} different values on the test "
                                                    "images")
            box.setChecked(attribute.name in ticked)
            self.boxes[attribute.name] = box
            self.choices.addWidget(box)
        refused = [f"{a.name}: {a.reason}" for a in found if not a.offered]
        self.refused.setText("Not offered: " + "; ".join(refused) if refused else "")
        self.show_button.setEnabled(bool(self.boxes))
        self.note.setText("" if self.boxes else "The test images have no CSV columns besides path, label and "
                                                "group, and no DICOM tags to group them by.")
        wanted = [n for n in self._wanted if n in self.boxes]
        if wanted and wanted != stored:
            self.compute(wanted)

    # --- computing ----------------------------------------------------------------------------------
    def compute(self, names: list[str] | None = None) -> None:
        """Store the breakdown by the ticked (or given) attributes in the evaluation, then show it."""
        if self.run_dir is None:
            return
        names = names if isinstance(names, list) else [n for n, b in self.boxes.items() if b.isChecked()]
        self.chosen.emit(names)
        self.show_button.setEnabled(False)
        self.note.setText("Computing the subgroup figures from the stored test predictions…")
        worker = Worker(_compute_task, self.run_dir, names, name="subgroups")
        worker.finished.connect(lambda data, r=self.run_dir: self._on_computed(r, data))
        worker.errored.connect(self._on_error)
        worker.ended.connect(lambda: self.show_button.setEnabled(bool(self.boxes)))
        self._start("compute", worker)

    def _on_computed(self, run_dir: str, data: dict[str, Any]) -> None:
        if run_dir == self.run_dir:
            self.note.clear()
            self.show_block(data.get("subgroups"))
            self.computed.emit(data)

    def _on_error(self, failure: Any) -> None:
        from tl_desktop.core.errors import ClinicalError

        self.note.setText(f"Subgroups not computed: {failure.message}")
        if not isinstance(failure.error, ClinicalError):
            task_failed(self, "subgroups", failure)

    def _start(self, key: str, worker: Worker) -> None:
        old = self.workers.get(key)
        if old is not None and old.is_running():
            old.stop()
        self.workers[key] = worker
        worker.start()

    # --- showing ------------------------------------------------------------------------------------
    def show_block(self, block: dict[str, Any] | None) -> None:
        """One table per attribute of a stored breakdown (``clinical.json``'s ``subgroups``); none: a hint."""
        self._clear_tables()
        if not block or not block.get("figures"):
            self.decision.setText("No subgroups chosen yet: tick one or more above and press “Show subgroups”.")
            self.rule.clear()
            return
        flagged = sum(r["flagged"] for rows in block["figures"].values() for r in rows)
        self.decision.setText(f"Decision rule of these figures: {block['decision']}. "
                              + (f"<b>{flagged} subgroup(s) flagged {FLAG}</b>: the model does worse there than "
                                 "on the other test images." if flagged else "No subgroup is flagged."))
        self.rule.setText(f"{FLAG} Flag rule: {block['rule']} Intervals: {block['interval']}.")
        for name in block["figures"]:
            group = QGroupBox(f"{name} ({tables.where(block, name)})")
            table = _table(tables.table_rows(block, name), tables.headings(block))
            QVBoxLayout(group).addWidget(table)
            self.tables[name] = table
            self.body.addWidget(group)

    def _clear_tables(self) -> None:
        while self.body.count():
            widget = self.body.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        self.tables = {}

    def _clear_choices(self) -> None:
        for box in self.boxes.values():
            self.choices.removeWidget(box)
            box.deleteLater()
        self.boxes = {}

    def clear(self) -> None:
        self.run_dir, self._pending = None, None
        self._clear_choices()
        self._clear_tables()
        for widget in (self.refused, self.decision, self.rule, self.note):
            widget.clear()
        self.show_button.setEnabled(False)

    def shutdown(self) -> None:
        for worker in self.workers.values():
            if worker.is_running():
                worker.stop()
                worker.wait()


def _table(rows: list[dict[str, Any]], heads: list[str]) -> QTableWidget:
    """Value, images, the figures with their intervals and the note; flagged rows tinted and marked."""
    table = QTableWidget(len(rows), len(heads))
    table.setHorizontalHeaderLabels(heads)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    for i, row in enumerate(rows):
        for j, text in enumerate(row["cells"]):
            item = QTableWidgetItem(text)
            if j == 1:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if row["flagged"]:
                item.setBackground(FLAG_BRUSH)
            table.setItem(i, j, item)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    table.setFixedHeight(table.horizontalHeader().height() + sum(table.rowHeight(i) for i in range(len(rows))) + 4)
    return table
