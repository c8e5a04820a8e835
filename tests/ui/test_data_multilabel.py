"""The Data step and the Train step's plots on a multi-label set (real digits composed: a 0 on the left is
finding "zero", a 7 on the right "seven"; ``helpers.write_findings_csv``): the tables say "Finding" and count
images per finding in each part, the scan's sentences on the findings sit under the table, and a multi-label
run's curves name their figures; a single-label project keeps its words."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import write_digits_folder, write_findings_csv


def _headers(table) -> list[str]:
    return [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]


def _rows(table) -> dict[str, list[str]]:
    return {table.item(r, 0).text(): [table.item(r, c).text() for c in range(1, table.columnCount())]
            for r in range(table.rowCount())}


@pytest.fixture
def data_view(qtbot):
    from tl_desktop.ui.data.view import DataView
    from tl_desktop.ui.session import Session

    session = Session()
    view = DataView(session)
    qtbot.addWidget(view)
    view.resize(1366, 768)
    view.show()
    yield view
    view.shutdown()


def _open(view, qtbot, folder: Path, source: Path, kind: str) -> None:
    view.session.create(folder, "Findings")
    view.set_source(source, kind)
    qtbot.waitUntil(lambda: view.session.split is not None, timeout=60_000)
    qtbot.waitUntil(lambda: view.split_panel.counts.rowCount() > 0, timeout=10_000)


def test_multilabel_csv_shows_findings_per_part_and_the_scans_sentences(data_view, qtbot, tmp_path):
    csv = write_findings_csv(tmp_path / "images", n=80)
    _open(data_view, qtbot, tmp_path / "p", csv, "csv")
    report, split = data_view.session.report, data_view.session.split
    assert report.is_multilabel and report.classes == ["seven", "zero"]
    if folder := os.environ.get("TL_SCREENSHOTS"):
        data_view.grab().save(os.path.join(folder, "data_multilabel.png"))

    assert _headers(data_view.classes) == ["Finding", "Images"]
    # 80 images: 40 show a zero, 40 a seven, 20 both, 20 neither (write_findings_csv's pattern)
    assert _rows(data_view.classes) == {"seven": ["40"], "zero": ["40"], "No finding": ["20"], "All images": ["80"]}
    note = data_view.findings_note.text()
    assert note.splitlines() == report.multilabel_lines() and data_view.findings_note.isVisible()
    assert "Images without any finding: 20 of 80 (25%)." in note and "seven + zero: 20" in note

    assert _headers(data_view.split_panel.counts) == ["Finding", "Training", "Validation", "Test"]
    rows = _rows(data_view.split_panel.counts)
    counts = split.counts(report)
    for name in ("seven", "zero"):  # per finding: the split's own counts, never a "seven;zero" row
        assert rows[name] == [str(counts[s].get(name, 0)) for s in ("train", "val", "test")]
    assert "seven;zero" not in rows and sum(map(int, rows["All images"])) == 80
    parts = [split.assignment[s.path] for s in report.samples if not s.findings]
    assert rows["No finding"] == [str(parts.count(s)) for s in ("train", "val", "test")]
    assert "with 2 findings (several or none per image)" in data_view.report.summary.text()


def test_single_label_folder_keeps_class_words(data_view, qtbot, tmp_path):
    root = write_digits_folder(tmp_path / "digits", classes=(0, 1), per_class=10)
    _open(data_view, qtbot, tmp_path / "p", root, "folder")
    assert _headers(data_view.classes) == ["Class", "Images"]
    assert _rows(data_view.classes) == {"digit_0": ["10"], "digit_1": ["10"], "All classes": ["20"]}
    assert _headers(data_view.split_panel.counts)[0] == "Class" and not data_view.findings_note.isVisible()
    assert "All classes" in _rows(data_view.split_panel.counts)


def _acc_words(view) -> tuple[str, str]:
    item = view.plots.acc_plot.getPlotItem()
    return item.titleLabel.text, item.getAxis("left").labelText


def test_train_step_names_a_multilabel_runs_figures(qtbot, findings_run, finished_run):
    from tl_desktop.core.events import EpochEnded
    from tl_desktop.ui.session import Session
    from tl_desktop.ui.train.view import TrainView, _done_text

    view = TrainView(Session())
    qtbot.addWidget(view)
    view.resize(1366, 768)
    single = _acc_words(view)
    assert single == ("Accuracy (higher is better)", "accuracy %")

    view._show_curves(findings_run)  # what selecting the run in the history does
    title, axis = _acc_words(view)
    assert title == "Right finding decisions (higher is better)"
    assert "1 − Hamming loss" in axis and "p ≥ 0.5" in axis
    assert view.plots.data["val_acc"][1], "the run's validation curve is drawn"
    view._on_epoch(EpochEnded(epoch=1, train_loss=0.5, train_acc=0.8, val_loss=0.4, val_acc=0.75, lr=0.01,
                              images_per_s=100.0, eta_s=0.0, best_epoch=1, is_best=True, seconds=1.0))
    assert "right finding decisions 80" in view.log_pane.toPlainText()
    if folder := os.environ.get("TL_SCREENSHOTS"):
        view.show()
        view.grab().save(os.path.join(folder, "train_multilabel.png"))

    from tl_desktop.core.fsutil import read_json

    done = _done_text(read_json(findings_run / "metrics.json"))
    assert done.startswith("Done. Test: mean AUC over findings 0.") and "every finding right on" in done

    view._show_curves(finished_run)  # a single-label run: the words come back
    assert _acc_words(view) == single
    assert _done_text({"accuracy": 0.9, "balanced_accuracy": 0.8}).startswith("Done. Test accuracy 90")
