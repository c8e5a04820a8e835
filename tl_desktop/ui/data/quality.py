"""The Data step's "Data quality" tab: run the audit in a worker (progress, cancel), then review its findings:
near-duplicate pairs side by side, the gallery of likely label errors, and the decisions made (with Undo).

The audit itself is the core's (``core.insight.audit.audit``); this tab only starts it and shows its rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QTabWidget, QVBoxLayout, QWidget

from tl_desktop.core.events import Progress
from tl_desktop.ui.glossary import set_term, term_links
from tl_desktop.ui.review.decisions_list import DecisionList, summary
from tl_desktop.ui.review.gallery import ReviewGallery
from tl_desktop.ui.review.pairs import PairList
from tl_desktop.ui.review.rows import rows_of
from tl_desktop.ui.session import Session, drop_workers
from tl_desktop.ui.widgets.common import hint, label
from tl_desktop.ui.widgets.errors import task_failed
from tl_desktop.workers import Worker

PHASE_WORDS = {"embeddings": "Looking at every image", "neighbours": "Comparing images",
               "labels": "Checking the labels", "scan": "Reading the images"}


def audit_task(source: Any, split: Any, *, callback, cancel) -> Any:
    """``core.insight.audit.audit`` in the Worker's shape (imported when run: it loads the network)."""
    from tl_desktop.core.insight.audit import audit

    return audit(source, split=split, callback=callback, cancel=cancel)


class QualityPanel(QWidget):
    """"Check data quality", its progress, and the three review tabs."""

    found_changed = Signal()  # a check finished (or was cleared): ``found`` holds its near-duplicate pairs

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.worker: Worker | None = None
        self.root = Path()
        self.found: list[tuple[str, str]] = []  # the last check's near-duplicate pairs (relative paths)
        self.check_button = QPushButton("Check data quality", toolTip=(
            "Look for near-copies of one image (also across training and test) and for images whose label the "
            "other images contradict; nothing is changed until you decide"))
        self.check_button.clicked.connect(self.check)
        self.progress = QProgressBar(visible=False)
        self.cancel_button = QPushButton("Cancel", visible=False, toolTip="Stop the check")
        self.cancel_button.clicked.connect(lambda: self.worker and self.worker.stop())
        self.state = label("Not checked yet.", wrap=True)
        self.decided = label("", "badge-ok", wrap=True)
        self.pairs = PairList(session)
        self.gallery = ReviewGallery(session)
        self.decisions = DecisionList(session)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.pairs, "Near-duplicates")
        self.tabs.addTab(self.gallery, "Likely label errors")
        set_term(self.pairs, "near_duplicate")  # F1 inside a tab: its term
        set_term(self.gallery, "label_issue")
        self.tabs.addTab(self.decisions, "Your decisions")
        self._arrange()
        session.review_changed.connect(self._show_decided)
        session.project_changed.connect(self._on_project)
        self._show_decided()

    def _arrange(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.check_button)
        top.addWidget(self.progress, 1)
        top.addWidget(self.cancel_button)
        top.addStretch()
        top.addWidget(term_links([("near_duplicate", "near-duplicate"), ("label_issue", "likely label error")],
                                 self))
        box = QVBoxLayout(self)
        box.addWidget(hint("Finds the same picture saved twice (re-saved, resized, cropped or brighter) and images "
                           "whose label looks wrong. You decide what happens to each; your files are never moved."))
        box.addLayout(top)
        box.addWidget(self.state)
        box.addWidget(self.decided)
        box.addWidget(self.tabs, 1)

    # --- the check ----------------------------------------------------------------------------------
    def check(self) -> None:
        project = self.session.project
        if project is None or self.session.report is None:
            self.state.setText("Choose and scan the images first.")
            return
        if self.worker is not None and self.worker.is_running():
            return
        source = project.data_source()
        self.root = Path(self.session.report.root)
        self.worker = Worker(audit_task, source, self.session.split, name="audit")
        self.worker.progressed.connect(self._on_progress)
        self.worker.finished.connect(self.show_result)
        self.worker.errored.connect(lambda failure: task_failed(self, "data quality check", failure))
        self.worker.aborted.connect(lambda: self.state.setText("Check cancelled."))
        self.worker.ended.connect(lambda: self._set_busy(False))
        self._set_busy(True)
        self.state.setText("Checking the images…")
        self.worker.start()

    def _set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.check_button.setEnabled(not busy)
        self.progress.setRange(0, 0)

    def _on_progress(self, event: Any) -> None:
        if isinstance(event, Progress) and event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
            self.progress.setFormat(f"{PHASE_WORDS.get(event.phase, event.phase.capitalize())}: %v of %m")

    def show_result(self, result: Any) -> None:
        """Fill the tabs from an audit report (or its ``to_dict()``)."""
        pairs, issues = rows_of(result, self.root)
        self.found = [(p.left, p.right) for p in pairs]
        self.found_changed.emit()
        self.pairs.set_pairs(pairs, self.root)
        self.gallery.set_rows(issues, self.root)
        crossing = sum(p.crosses_splits for p in pairs)
        leak = f", {crossing:,} of them in two parts of the split" if crossing else ""
        self.state.setText(f"Checked: {len(pairs):,} near-duplicate pair{'s' if len(pairs) != 1 else ''}{leak}; "
                           f"{len(issues):,} image{'s' if len(issues) != 1 else ''} whose label looks wrong.")
        self.tabs.setTabText(0, f"Near-duplicates ({len(pairs):,})")
        self.tabs.setTabText(1, f"Likely label errors ({len(issues):,})")
        self.tabs.setCurrentWidget(self.pairs if pairs or not issues else self.gallery)

    def _show_decided(self) -> None:
        review = self.session.project.review if self.session.project is not None else None
        self.decided.setText(summary(review))
        self.decided.setVisible(bool(review is not None and len(review)))
        self.tabs.setTabText(2, f"Your decisions ({len(review) if review is not None else 0:,})")

    def _on_project(self, _project: Any) -> None:
        drop_workers(self.worker)
        self.worker = None
        self._set_busy(False)
        self.state.setText("Not checked yet.")
        self.found = []
        self.found_changed.emit()
        self.pairs.set_pairs([], Path())
        self.gallery.set_rows([], Path())
        self._show_decided()

    def shutdown(self) -> None:
        if self.worker is not None and self.worker.is_running():
            self.worker.stop()
            self.worker.wait()
        self.pairs.shutdown()
        self.gallery.shutdown()
