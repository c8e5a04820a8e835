"""The Evaluate step of a multi-label run (several findings per image, each present or absent).

Instead of the single-label tabs (confusion matrix, one class's threshold, "not sure") it shows, from the one
stored evaluation (``ClinicalResult.summary``, i.e. ``multilabel_run.summary``): the headline lines in plain words
(``multilabel.summary_lines``), the per-finding table (``multilabel_run.table_rows``, the same cells as the
report's), the ROC curve of every finding in one plot, how the thresholds were chosen, and the images with a
wrong finding decision next to a Grad-CAM heatmap of the finding chosen (the most probable one by default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QSplitter, QTabWidget, QVBoxLayout, QWidget

from tl_desktop.core.evaluation import multilabel_run
from tl_desktop.core.evaluation.multilabel import summary_lines
from tl_desktop.core.evaluation.stored_result import ClinicalResult, ImageResult
from tl_desktop.ui.data.scan_report import fill_table, make_table
from tl_desktop.ui.evaluate.heatmap_panel import HeatmapPanel
from tl_desktop.ui.glossary import term_links
from tl_desktop.ui.widgets.common import label
from tl_desktop.ui.widgets.curve_plots import COLORS, GUIDE, auc_text
from tl_desktop.ui.widgets.image_viewer import KnownFacts, open_viewer
from tl_desktop.ui.widgets.themed_plot import make_plot

MISTAKE_COLUMNS = ["Image", "True findings", "Model's findings (probability)", "Wrong decisions"]
NONE = "no finding"
TOP_FINDING = "the most probable finding"
SUBGROUPS_NOTE = ("The subgroup breakdown (by sex, age band, scanner or site) is made for single-label runs only; "
                  "this run is multi-label, so its figures are not broken down here or in the report.")


def findings_words(names: list[str]) -> str:
    return ", ".join(names) if names else NONE


def headline_lines(clinical: ClinicalResult) -> list[str]:
    """``multilabel.summary_lines`` of the stored test figures (``clinical.json``'s ``multilabel``)."""
    return summary_lines(clinical.data["multilabel"])


class FindingsPanel(QWidget):
    """The Findings tab: plain lines, the per-finding table, every finding's ROC curve and the threshold rule."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lines = label("", wrap=True)
        self.lines.setTextFormat(Qt.TextFormat.RichText)
        self.rule = label("", "hint", wrap=True)
        self.table = make_table(multilabel_run.TABLE_HEADINGS, "Each finding judged on its own on the test "
                                "images: AUC with its bootstrap 95% interval, sensitivity and specificity at the "
                                "finding's threshold with Wilson 95% intervals")
        self.roc = make_plot("ROC curve of each finding, test images", "sensitivity", (-8, -8),
                             x_label="1 − specificity (false-positive rate)")
        self.roc.setXRange(0, 1, padding=0.04)
        self.roc.setYRange(0, 1, padding=0.04)
        self.roc.setMinimumSize(260, 220)
        self.roc.plot([0, 1], [0, 1], pen=GUIDE)
        self._curves: list[Any] = []
        self.legend_texts: list[str] = []
        for column, heading in enumerate(multilabel_run.TABLE_HEADINGS):  # two lines: the columns fit
            self.table.horizontalHeaderItem(column).setText(heading.replace(" (", "\n(").replace(
                "Average p", "Average\np"))
        left = QVBoxLayout()
        left.addWidget(self.lines)
        left.addWidget(self.table, 1)
        left.addWidget(term_links([("exact_match", "exact match"), ("hamming_loss", "Hamming loss"), ("f1", "F1"),
                                   ("average_precision", "average precision"), ("auc", "AUC"),
                                   ("threshold", "threshold")], self))
        left.addWidget(self.rule)
        row = QHBoxLayout(self)
        row.addLayout(left, 2)
        row.addWidget(self.roc, 1)

    def show_findings(self, clinical: ClinicalResult, summary: dict[str, Any]) -> None:
        """Every part from the stored evaluation: ``summary`` is ``clinical.summary()``."""
        items = "".join(f"<li>{_escape(line)}</li>" for line in headline_lines(clinical))
        self.lines.setText(f"<ul style='margin-left: -20px'>{items}</ul>")
        fill_table(self.table, multilabel_run.table_rows(summary))
        self.table.resizeColumnsToContents()
        self.rule.setText(multilabel_run.rule_text(clinical.data))
        self._draw_roc(clinical)

    def _draw_roc(self, clinical: ClinicalResult) -> None:
        for item in self._curves:
            self.roc.removeItem(item)
        self._curves, self.legend_texts = [], []
        labels = clinical.data["multilabel"]["labels"]
        for i, name in enumerate(clinical.names):
            entry = labels[name]
            if entry.get("roc") is None or entry.get("auc") is None:
                continue
            text = auc_text(name, entry)
            self.legend_texts.append(text)
            pen = {"color": COLORS[i % len(COLORS)], "width": 2}
            self._curves.append(self.roc.plot(entry["roc"]["fpr"], entry["roc"]["tpr"], pen=pen, name=text))

    def clear(self) -> None:
        self.lines.clear()
        self.rule.clear()
        fill_table(self.table, [])
        for item in self._curves:
            self.roc.removeItem(item)
        self._curves, self.legend_texts = [], []


class FindingsMistakes(QWidget):
    """The images with at least one wrong finding decision (most wrong, then most confident first) and the
    heatmap of the selected one; double-click opens the image viewer."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.root = Path()
        self.rows: list[dict[str, Any]] = []
        self.note = label("", "hint", wrap=True)
        self.table = make_table(MISTAKE_COLUMNS, "Click an image for its heatmap; double-click for a large view")
        self.table.itemSelectionChanged.connect(self._selected)
        self.table.cellDoubleClicked.connect(lambda row, _column: self.open_image(row))
        self.heatmap = HeatmapPanel()
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.note)
        column.addWidget(self.table, 1)
        heat_box = QGroupBox("Heatmap of the selected image (Grad-CAM), one finding at a time")
        QVBoxLayout(heat_box).addWidget(self.heatmap)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(heat_box)
        body.setSizes([640, 480])
        box = QHBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(body)

    def show_mistakes(self, run_dir: str, root: Path, names: list[str], summary: dict[str, Any]) -> None:
        """The ``misclassified`` rows of a multi-label ``summary`` (``multilabel.per_image_rows``)."""
        self.root, self.rows = root, list(summary.get("misclassified") or [])
        self.heatmap.set_run(run_dir, names, TOP_FINDING)
        n = summary.get("n", 0)
        self.note.setText(f"{len(self.rows)} of {n} test images have at least one wrong finding decision (a "
                          "finding missed or one the image does not have), most wrong and most confident first. "
                          "Probabilities are each finding's own (they need not add up to 100 %)."
                          if self.rows else f"Every finding decision is right on the {n} test images.")
        fill_table(self.table, [[r["path"], findings_words(r["true"]), _called(r), r["errors"]] for r in self.rows])

    def _selected(self) -> None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        if len(rows) == 1:
            r = self.rows[rows.pop()]
            top = max(r["probabilities"], key=r["probabilities"].get)
            answer = ImageResult(r["path"], findings_words(r["true"]), top, dict(r["probabilities"]))
            self.heatmap.show_image(str(self.root / r["path"]), answer, _caption(r))

    def open_image(self, row: int) -> None:
        """The viewer on a test image, with its true findings and the model's."""
        r = self.rows[row]
        open_viewer(self, self.root / r["path"], KnownFacts(findings_words(r["true"]), "test", None, _called(r)))

    def clear(self) -> None:
        self.rows = []
        self.note.clear()
        fill_table(self.table, [])
        self.heatmap.set_run(None, [])

    def shutdown(self) -> None:
        self.heatmap.shutdown()


class FindingsTabs:
    """The three tabs a multi-label run shows in Evaluate (findings, mistakes, the subgroup note); while one is
    shown the single-label tabs are hidden, and the other way round."""

    TITLES = ("Findings", "Mistakes and heatmaps", "Subgroups")

    def __init__(self, tabs: QTabWidget, single_label: list[QWidget]) -> None:
        self.tabs, self.single_label = tabs, single_label
        self.panel, self.mistakes = FindingsPanel(), FindingsMistakes()
        self.subgroups = QWidget()
        note = label(SUBGROUPS_NOTE, wrap=True)
        column = QVBoxLayout(self.subgroups)
        column.addWidget(note)
        column.addStretch()
        self.subgroups_note = note
        for widget, text in zip((self.panel, self.mistakes, self.subgroups), self.TITLES, strict=True):
            tabs.addTab(widget, text)
        self.set_shown(False)

    @property
    def shown(self) -> bool:
        return self.tabs.isTabVisible(self.tabs.indexOf(self.panel))

    def set_shown(self, multilabel: bool) -> None:
        """The findings tabs for a multi-label run, the single-label tabs for any other (none is lost)."""
        for widget in (self.panel, self.mistakes, self.subgroups):
            self.tabs.setTabVisible(self.tabs.indexOf(widget), multilabel)
        for widget in self.single_label:
            self.tabs.setTabVisible(self.tabs.indexOf(widget), not multilabel)
        if multilabel and not self.tabs.isTabVisible(self.tabs.currentIndex()):
            self.tabs.setCurrentWidget(self.panel)
        elif not multilabel and not self.tabs.isTabVisible(self.tabs.currentIndex()):
            self.tabs.setCurrentIndex(0)

    def show(self, clinical: ClinicalResult, summary: dict[str, Any], root: Path) -> None:
        self.set_shown(True)
        self.panel.show_findings(clinical, summary)
        self.mistakes.show_mistakes(str(clinical.run_dir), root, clinical.names, summary)

    def clear(self) -> None:
        self.panel.clear()
        self.mistakes.clear()
        self.set_shown(False)

    def shutdown(self) -> None:
        self.mistakes.shutdown()


def _called(row: dict[str, Any]) -> str:
    """"seven 73 %, zero 71 %": the model's findings with their probabilities ("no finding" when none)."""
    p = row["probabilities"]
    return ", ".join(f"{name} {100 * p[name]:.0f} %" for name in row["predicted"]) or NONE


def _caption(row: dict[str, Any]) -> str:
    return f"true findings: {findings_words(row['true'])}; the model's findings: {_called(row)}"


def _escape(text: str) -> str:
    import html

    return html.escape(text)
