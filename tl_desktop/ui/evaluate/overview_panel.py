"""The headline and Overview tab of Evaluate: what is true for the task, from ``ClinicalResult.summary``.

The headline leads with the test images, accuracy and balanced accuracy (each with its Wilson 95% interval where
it is a proportion) and the mean ROC-AUC, and a line on the decision rule: none for more than two classes (the
most probable class; no class is "positive"), or the operating point with its status, "suggested (not in the
exported model)" or "chosen on <date> (in the exported model)". The Overview tab holds the confusion matrix and
each class's sensitivity (recall) and precision with Wilson intervals (``stored_result.class_figures``).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QSizePolicy, QVBoxLayout, QWidget

from tl_desktop.ui.data.scan_report import fill_table, make_table
from tl_desktop.ui.glossary import follow_links, link, set_term, term_links
from tl_desktop.ui.widgets.common import fit_columns, keep_height, label, percent
from tl_desktop.ui.widgets.confusion import ConfusionMatrix

METRIC_COLUMNS = ["Class", "Sensitivity (95% CI)", "Precision (95% CI)", "F1", "ROC-AUC", "Test images"]
TAB_TITLES = {False: "Threshold and curves", True: "Curves and class of interest"}  # by "more than two classes"
FIGURES = (("n", "test images"), ("accuracy", "accuracy"), ("balanced", "balanced accuracy"),
           ("auc", "ROC-AUC (mean)"))


def with_interval(figure: dict[str, Any]) -> str:
    """"85.0 % (62.1–94.8 %)" for a ``class_figures`` proportion; "–" without cases."""
    if figure.get("value") is None:
        return "–"
    return f"{percent(figure['value'])} ({100 * figure['low']:.1f}–{100 * figure['high']:.1f} %)"


def point_text(clinical: Any) -> str:
    """The headline's line on the decision rule of a ``ClinicalResult``."""
    data = clinical.data
    if data.get("positive_class") is None:
        base = "Decision rule: none, each test image gets its most probable class"
        if clinical.multiclass:
            base += (f" ({len(clinical.names)} classes, so no class is treated as “positive”; to study one class "
                     f"against the others, choose it in “{TAB_TITLES[True]}”)")
        return base + "."
    point = f"{data['positive_class']} when its probability ≥ {data['decision_threshold']:.3f}"
    if clinical.exported_by_user:
        when = (data.get("decision_chosen_utc") or "")[:10]
        return f"Operating point: {point}, chosen{' on ' + when if when else ''} (in the exported model)."
    return (f"Operating point: {point}, suggested (not in the exported model): review it in "
            f"“{TAB_TITLES[clinical.multiclass]}” and press “Use this operating point” to put it in the exported "
            "model.")


class Headline(QWidget):
    """The figures above the tabs and the line on the decision rule."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.figures = {key: label("–", "figure") for key, _text in FIGURES}
        self.captions = {key: label(text, "hint", wrap=True) for key, text in FIGURES}  # two lines at 1024 px
        self.point = label("", "hint", wrap=True)
        keep_height(self.point)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(18)
        for key, _text in FIGURES:
            column = QVBoxLayout()
            self.figures[key].setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            column.addWidget(self.figures[key])
            follow_links(self.captions[key])  # a caption's term is a link to the glossary (no taller row)
            column.addWidget(self.captions[key])
            column.addStretch()
            self.captions[key].setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            keep_height(self.captions[key])
            row.addLayout(column, 1 if key == "n" else 2)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(row)
        box.addWidget(self.point)
        set_term(self.point, "threshold")  # F1 (a "?" beside it would make the line wrap sooner)

    def show_summary(self, metrics: dict[str, Any], clinical: Any) -> None:
        auc = (metrics.get("roc_auc") or {}).get("macro")
        n = metrics.get("n", 0)
        right = sum(metrics["confusion_matrix"][i][i] for i in range(len(metrics.get("class_names", []))))
        self.figures["n"].setText(f"{n:,}")
        self.figures["accuracy"].setText(percent(metrics.get("accuracy")))
        self.figures["balanced"].setText(percent(metrics.get("balanced_accuracy")))
        self.figures["auc"].setText("–" if auc is None else f"{auc:.3f}")
        from tl_desktop.core.evaluation.statistics import wilson_interval

        low, high = wilson_interval(right, n)
        self.captions["accuracy"].setText("accuracy" if low is None else
                                          f"accuracy ({right}/{n}; 95% CI {100 * low:.1f}–{100 * high:.1f} %)")
        self.captions["balanced"].setText(f"{link('balanced_accuracy', 'balanced accuracy')} (mean sensitivity of "
                                          "the classes)")
        self.captions["auc"].setText(f"{link('auc', 'ROC-AUC')} (mean)")
        self.point.setText(point_text(clinical))

    def show_findings(self, metrics: dict[str, Any]) -> None:
        """The headline of a multi-label run: test images, exact match (with its Wilson interval), macro F1 and
        the mean AUC of the findings; the line says each finding has its own threshold."""
        from tl_desktop.core.evaluation.statistics import wilson_interval

        n, exact = metrics.get("n", 0), metrics.get("subset_accuracy")
        right = round((exact or 0) * n)
        auc = (metrics.get("roc_auc") or {}).get("macro")
        self.figures["n"].setText(f"{n:,}")
        self.figures["accuracy"].setText(percent(exact))
        self.figures["balanced"].setText("–" if metrics.get("macro_f1") is None else f"{metrics['macro_f1']:.3f}")
        self.figures["auc"].setText("–" if auc is None else f"{auc:.3f}")
        low, high = wilson_interval(right, n)
        exact_match = link("exact_match", "exact match")
        self.captions["accuracy"].setText(exact_match if low is None else
                                          f"{exact_match}: every finding right ({right}/{n}; 95% CI "
                                          f"{100 * low:.1f}–{100 * high:.1f} %)")
        self.captions["balanced"].setText(f"macro {link('f1', 'F1')} (mean over the findings)")
        self.captions["auc"].setText(f"{link('auc', 'ROC-AUC')} (mean of the findings)")
        names = metrics.get("class_names", [])
        self.point.setText(f"Multi-label: {len(names)} findings ({', '.join(names)}), each present or absent on "
                           "its own. Decision rule: a finding is called when its probability reaches its own "
                           "threshold, chosen on the validation images.")

    def clear(self) -> None:
        for key, text in FIGURES:
            self.figures[key].setText("–")
            self.captions[key].setText(text)
        self.point.clear()


class OverviewPanel(QWidget):
    """The Overview tab: the confusion matrix and the per-class table."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = fit_columns(make_table(METRIC_COLUMNS, "How well each class is recognised on the test images, "
                                                            "with Wilson 95% intervals"))
        self.matrix = ConfusionMatrix()
        row = QHBoxLayout(self)
        matrix_box = QGroupBox()  # its title as a label: a group box title does not wrap
        matrix_title = label("Confusion matrix: rows true class, columns the model's answer (click a cell)", wrap=True)
        keep_height(matrix_title)
        column = QVBoxLayout(matrix_box)
        column.addWidget(matrix_title)
        column.addWidget(self.matrix, 1)  # the room left over goes to the matrix, not around its title
        row.addWidget(matrix_box, 2)
        table_column = QVBoxLayout()
        table_column.addWidget(self.table, 1)
        table_column.addWidget(term_links([("sensitivity", "sensitivity"), ("precision", "precision"), ("f1", "F1"),
                                           ("auc", "ROC-AUC"), ("confidence_interval", "95% CI")], self))
        row.addLayout(table_column, 3)

    def show_summary(self, metrics: dict[str, Any], curves: dict[str, Any]) -> None:
        """Per-class table (sensitivity and precision with intervals, ROC-AUC with its bootstrap interval)."""
        from tl_desktop.core.evaluation.stored_result import class_figures

        classes = list(metrics.get("class_names", []))
        auc = metrics.get("roc_auc") or {}
        figures = class_figures(metrics)
        rows = []
        for name in classes:
            m = (metrics.get("per_class") or {}).get(name, {})
            entry = (curves.get(name) or {}).get("auc")
            auc_text = ("–" if auc.get(name) is None else f"{auc[name]:.3f}") if entry is None else (
                f"{entry['auc']:.3f} ({entry['low']:.3f}–{entry['high']:.3f})")
            rows.append([name, with_interval(figures[name]["recall"]), with_interval(figures[name]["precision"]),
                         percent(m.get("f1")), auc_text, m.get("support", 0)])
        fill_table(self.table, rows)
        self.table.horizontalHeaderItem(METRIC_COLUMNS.index("ROC-AUC")).setText(
            "ROC-AUC (95% CI)" if curves else "ROC-AUC")
        self.matrix.set_matrix(classes, metrics.get("confusion_matrix") or [])

    def clear(self) -> None:
        fill_table(self.table, [])
        self.matrix.set_matrix([], [])
