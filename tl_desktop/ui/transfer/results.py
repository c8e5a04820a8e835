"""The panels of the "Did transfer help?" window that show its results.

The panels draw from the JSON the core writes (``transfer.json``, ``compare_models.json``,
``label_budget.json``) where ``core.insight.results`` keeps them, so a fresh result and one reopened from disk
look the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.ui.widgets.common import duration, hint, label
from tl_desktop.ui.widgets.files import show_in_folder

# verdict -> (big words, colour)
VERDICTS = {
    "positive": ("Positive: transfer helped", "#2e7d32"),
    "neutral": ("Neutral: no clear difference", "#6d6d6d"),
    "negative": ("Negative: transfer hurt", "#c0392b"),
}
VERDICT_SUMMARY = {  # verdict -> one clause for a status line ("Finished: transfer helped ...")
    "positive": "transfer helped (positive transfer)",
    "neutral": "no clear difference with or without transfer (neutral)",
    "negative": "transfer hurt (negative transfer)",
}
MEANINGS = {
    "positive": "The pretrained model clearly did better than the best that could be done without it: using it on "
                "these images is justified.",
    "neutral": "With and without the pretrained knowledge the test scores are not clearly different (often: too "
               "few test images to tell). Either choice is defensible; more test images would settle it.",
    "negative": "A model without pretrained knowledge did clearly better on these images: the pretrained model is "
                "too far from them to help (far transfer), at least with this budget.",
}
ANSWERS = {"likely": ("Likely yes", "#2e7d32"), "maybe": ("Maybe a little", "#b07a1e"),
           "unlikely": ("Unlikely", "#6d6d6d")}
ARM_ROWS = [  # arm, shown name, pretrained knowledge, what it is
    ("linear-probe", "Last layer only (linear probe)", "yes", "the pretrained network kept as it is, only its last "
     "layer trained"),
    ("fine-tune", "Last layers too (fine-tune)", "yes", "the pretrained network, its last stages and last layer "
     "trained"),
    ("scratch", "From random weights (from scratch)", "no", "the same network trained from random weights"),
    ("thumbnail", "Pixel classifier", "no", "a linear classifier on the raw pixels of 32x32 thumbnails, no network"),
]
ARM_NAMES = {arm: name for arm, name, _, _ in ARM_ROWS}
INDICATOR_COLUMNS = ["Model", "Pretrained\nknowledge", "Test balanced accuracy\n(95% CI)", "Epochs to\ntarget",
                     "Training time\nto target"]
MULTILABEL_SCORE_COLUMN = "Test mean AUC over\nfindings (95% CI)"  # column 2 of a multi-label check
MULTILABEL_THUMBNAIL = "a logistic regression per finding on the raw pixels of 32x32 thumbnails, no network"
COMPARE_COLUMNS = ["Model", "Weights\n(million)", "Test balanced accuracy\n(95% CI)", "Time", "Size (MB)"]


def with_ci(score: dict[str, float] | None) -> str:
    """63.3 % (46.7-80.0): a score and its 95% interval, in percent."""
    if not score:
        return "–"
    return f"{100 * score['value']:.1f} %  ({100 * score['low']:.1f}–{100 * score['high']:.1f})"


def auc_with_ci(score: dict[str, float] | None) -> str:
    """0.83 (0.75-0.90): a mean AUC and its 95% interval."""
    if not score:
        return "–"
    return f"{score['value']:.2f}  ({score['low']:.2f}–{score['high']:.2f})"


def is_multilabel(report: dict[str, Any]) -> bool:
    """True for a check of a multi-label set (``transfer.json`` with ``task: "multi-label"``)."""
    return report.get("task") == "multi-label"


def _cell(text: str, tip: str = "", bold: bool = False, align_right: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if tip:
        item.setToolTip(tip)
    if bold:
        font = item.font()
        font.setBold(True)
        item.setFont(font)
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def model_label(name: str) -> str:
    """The catalog's readable name of a backbone (EfficientNet-Lite0), else the name itself."""
    from tl_desktop.core.models.catalog import get_info

    try:
        return get_info(name).label
    except (KeyError, ValueError):
        return name


def fit_height(table: QTableWidget) -> None:
    """Make the table exactly as tall as all its rows and as wide as all its columns, so it never scrolls and no
    row is hidden (no empty grey area under a short table either). Measured from the header's size hint: its
    height is not known before the window is shown."""
    table.resizeColumnsToContents()
    table.resizeRowsToContents()
    header = table.horizontalHeader()
    frame = 2 * table.frameWidth()
    height = header.sizeHint().height() + frame + sum(table.rowHeight(r) for r in range(table.rowCount()))
    width = frame + sum(table.columnWidth(c) for c in range(table.columnCount()))
    table.setFixedHeight(height)
    table.setMinimumWidth(width)
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)


def make_table(columns: list[str], tip: str) -> QTableWidget:
    table = QTableWidget(0, len(columns), toolTip=tip)
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setWordWrap(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.setSizeAdjustPolicy(QAbstractItemView.SizeAdjustPolicy.AdjustToContents)
    return table


def big_label(text: str = "") -> QLabel:
    widget = label(text, wrap=True)
    font = QFont(widget.font())
    font.setPointSizeF(font.pointSizeF() * 1.7)
    font.setBold(True)
    widget.setFont(font)
    return widget


def set_coloured(widget: QLabel, text: str, colour: str | None) -> None:
    widget.setText(text)
    widget.setStyleSheet(f"color: {colour};" if colour else "")


class FolderLine(QWidget):
    """'Saved in <folder>' with a button that opens the folder in the file manager."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder: Path | None = None
        self.text = label("", "hint", wrap=True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.button = QPushButton("Open folder", toolTip="Show the runs and the result files in the file manager")
        self.button.clicked.connect(lambda: show_in_folder(Path(self.folder), self))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.button)
        self.set_folder(None)

    def set_folder(self, folder: Path | None, what: str = "") -> None:
        self.folder = folder
        self.text.setText(f"{what} saved in {folder}" if folder else "")
        self.button.setVisible(folder is not None)


class VerdictPanel(QWidget):
    """The verdict in large plain words, the difference it rests on, the rule, and the three indicators."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report: dict[str, Any] | None = None
        self.verdict = big_label()
        self.verdict.setObjectName("transferVerdict")
        self.meaning = label("", wrap=True)
        self.difference = label("", wrap=True)
        self.rule = label("", "hint", wrap=True)
        self.target = label("", wrap=True)
        self.table = make_table(INDICATOR_COLUMNS, "The three indicators of transfer for every model of the check. "
                                "Bold rows are the two compared by the verdict (each chosen on the validation "
                                "images).")
        self.folder = FolderLine()
        words = QVBoxLayout()  # left: the verdict in words; right: the table with every model, never scrolled
        for widget in (self.verdict, self.meaning, self.difference, self.target):
            words.addWidget(widget)
        words.addStretch(1)
        figures = QVBoxLayout()
        figures.addWidget(self.table)
        figures.addWidget(hint("The three indicators: 1 = what the pretrained features alone reach (the linear "
                               "probe's test score); 2 = how fast each network reached the target; 3 = the final "
                               "test scores with and without transfer. Bold: the two models the verdict compares."))
        figures.addWidget(self.rule)
        figures.addStretch(1)
        top = QHBoxLayout()
        top.addLayout(words, 1)
        top.addLayout(figures, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.folder)
        self.clear("No result yet. Press “Start the check”.")

    def clear(self, text: str) -> None:
        self.report = None
        set_coloured(self.verdict, "", None)
        self.verdict.setVisible(False)
        self.difference.setText(text)
        for widget in (self.meaning, self.rule, self.target):
            widget.setText("")
        self.table.setRowCount(0)
        self.folder.set_folder(None)

    def show_report(self, report: dict[str, Any], folder: Path) -> None:
        """Show a ``transfer.json`` document; ``folder`` is where it lies."""
        self.report = report
        words, colour = VERDICTS.get(report["verdict"], (report["verdict"], "#6d6d6d"))
        set_coloured(self.verdict, words, colour)
        self.verdict.setVisible(True)
        self.meaning.setText(MEANINGS.get(report["verdict"], ""))
        d, multi = report["difference"], is_multilabel(report)
        if multi:
            figure = (f"<b>{d['value']:+.3f}</b> of the test mean AUC over findings (95% CI {d['low']:+.3f} to "
                      f"{d['high']:+.3f}; AUC 1 = perfect, 0.5 = chance)")
        else:
            figure = (f"<b>{100 * d['value']:+.1f} points</b> of test balanced accuracy (95% CI "
                      f"{100 * d['low']:+.1f} to {100 * d['high']:+.1f})")
        n = len(report["classes"])
        self.difference.setText(
            f"Best with transfer ({ARM_NAMES.get(report['best_transfer'], report['best_transfer']).lower()}) "
            f"minus best without ({ARM_NAMES.get(report['best_no_transfer'], report['best_no_transfer']).lower()}), "
            f"each chosen on the validation images: {figure}. {model_label(report['model'])}, "
            f"{report['budget_epochs']} epoch(s) per network, {report['test_images']} test images, "
            + (f"{n} finding{'s' if n != 1 else ''} (several or none per image)." if multi else f"{n} classes."))
        self.rule.setText(f"The rule: {report['rule']}")
        self.target.setText(f"Target of indicator 2: {100 * report['target_val_balanced_accuracy']:.1f} % validation "
                            "balanced accuracy (90% of the best any network reached"
                            + ("; the mean over findings, each called present at p ≥ 0.5)." if multi else ")."))
        self._fill(report)
        self.folder.set_folder(folder, "Runs, transfer.json and transfer.txt")

    def _fill(self, report: dict[str, Any]) -> None:
        arms = report["arms"]
        rows = [row for row in ARM_ROWS if row[0] in arms]
        compared = {report["best_transfer"], report["best_no_transfer"]}
        multi = is_multilabel(report)
        headers = list(INDICATOR_COLUMNS)
        headers[2] = MULTILABEL_SCORE_COLUMN if multi else INDICATOR_COLUMNS[2]
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(len(rows))
        for r, (arm, name, pretrained, what) in enumerate(rows):
            a, bold = arms[arm], arm in compared
            network = arm != "thumbnail"
            reached = a.get("epochs_to_target")
            epochs = "no epochs" if not network else ("never" if reached is None else f"{reached} of {a['epochs_run']}")
            seconds = "–" if not network or reached is None else duration(a["seconds_to_target"])
            what = MULTILABEL_THUMBNAIL if multi and arm == "thumbnail" else what
            score = _score_cell(a, multi, bold)
            cells = [_cell(name, f"{name}: {what}. {a.get('run_dir') or ''}", bold), _cell(pretrained, bold=bold),
                     score,
                     _cell(epochs, bold=bold, align_right=True), _cell(seconds, bold=bold, align_right=True)]
            for c, item in enumerate(cells):
                self.table.setItem(r, c, item)
        fit_height(self.table)


def _score_cell(arm: dict[str, Any], multi: bool, bold: bool) -> QTableWidgetItem:
    """The test score of an arm: balanced accuracy, or (multi-label) the mean AUC over findings."""
    if multi:
        return _cell(auc_with_ci(arm.get("test_macro_auc")),
                     f"Mean over findings at p ≥ 0.5: balanced accuracy {with_ci(arm['test_balanced_accuracy'])}; "
                     f"right finding decisions {with_ci(arm['test_accuracy'])}", bold, True)
    return _cell(with_ci(arm["test_balanced_accuracy"]), f"Test accuracy {with_ci(arm['test_accuracy'])}", bold, True)


class AnswerPanel(QWidget):
    """'Is labelling more likely to pay off?' with the answer in large words and the core's explanation."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.curve: dict[str, Any] | None = None
        self.question = label("Is labelling more images likely to pay off?")
        self.answer = big_label()
        self.answer.setObjectName("labelBudgetAnswer")
        self.explanation = label("", wrap=True)
        self.rule = label("", "hint", wrap=True)
        self.folder = FolderLine()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.question, self.answer, self.explanation, self.rule, self.folder):
            layout.addWidget(widget)
        self.clear()

    def clear(self) -> None:
        self.curve = None
        set_coloured(self.answer, "", None)
        self.explanation.setText("Press “Label-budget curve” to measure it: only the last layer is trained (linear "
                                 "probe), a few seconds once the image features are computed.")
        self.rule.setText("")
        self.folder.set_folder(None)

    def show_curve(self, curve: dict[str, Any], folder: Path) -> None:
        self.curve = curve
        words, colour = ANSWERS.get(curve["answer"], (curve["answer"], "#6d6d6d"))
        set_coloured(self.answer, words, colour)
        n, text = curve["test_images"], curve["explanation"]
        text = text[len(words) + 1:].strip() if text.startswith(f"{words}:") else text
        self.explanation.setText(f"{text[:1].upper()}{text[1:]} Scored on {n} test images: one image changes the "
                                 f"score by about {100 / max(n, 1):.1f} points or more, so read the spread too.")
        self.rule.setText(f"The rule: {curve['rule']} Model: {model_label(curve['model'])}; {curve['repeats']} "
                          "random draws per point.")
        self.folder.set_folder(folder, "label_budget.json")


def fill_compare_table(table: QTableWidget, rows: list[dict[str, Any]]) -> None:
    """One row per model of ``compare_models.json``."""
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        cells = [_cell(row.get("label") or row["model"], row.get("run_dir", "")),
                 _cell(f"{row['params'] / 1e6:.1f}", align_right=True),
                 _cell(with_ci(row["test_balanced_accuracy"]), f"Test accuracy {with_ci(row['test_accuracy'])}",
                       align_right=True),
                 _cell(duration(row["wall_seconds"]), "Whole run: training, validation and test", align_right=True),
                 _cell(f"{row['weights_mb']:.1f}", "About the size of the exported ONNX file (float32)",
                       align_right=True)]
        for c, item in enumerate(cells):
            table.setItem(r, c, item)
    fit_height(table)
