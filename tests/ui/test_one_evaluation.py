"""One truth per model (issue 13, first "Done when"): train in the window, stop, continue to the end, open
Evaluate, and check that the overview matrix and headline, the drill-down thumbnails' labels, the heatmap
captions, the threshold tab's matrix, the report's tables and metrics.json all agree with the per-image
predictions of the final checkpoint."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import write_digits_folder
from tests.ui.training_stop import stopped_after_epoch
from tl_desktop.core import runs
from tl_desktop.core.evaluation import statistics
from tl_desktop.core.evaluation.run_evaluation import load_clinical, run_logits
from tl_desktop.core.models import run_model
from tl_desktop.core.project import project_file as proj
from tl_desktop.ui.main_window import MainWindow
from tl_desktop.ui.widgets.common import percent
from tl_desktop.workers import tasks

EPOCHS, STOP_AFTER = 3, 1


@pytest.fixture
def project(tmp_path) -> Path:
    """Three look-alike digits at 20 px and a short, slow probe: the model makes mistakes to drill into."""
    data = write_digits_folder(tmp_path / "digits", classes=(3, 5, 8), per_class=40, size=20)
    project = proj.create(tmp_path / "p", "One truth")
    project.set_source(data)
    s = project.settings
    s.epochs, s.strategy, s.image_size, s.batch_size, s.augmentation, s.device = (
        EPOCHS, "linear-probe", 20, 16, "none", "cpu")
    s.patience, s.lr = 0, 2e-2
    proj.save(project)
    return project.folder


def _final_predictions(run_dir: Path) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """(test paths, true, predicted class index, class names) of the final best checkpoint, predicted afresh."""
    loaded = run_model.load_run(run_dir)
    test = run_logits(loaded, ("test",))["test"]
    return test["paths"], np.asarray(test["labels"]), np.asarray(test["logits"]).argmax(1), loaded.class_names


def _matrix_texts(widget, n: int) -> list[list[int]]:
    return [[int(widget.item(r, c).text()) for c in range(n)] for r in range(n)]


def _shot(widget, name: str) -> None:
    folder = os.environ.get("TL_SCREENSHOTS")
    if folder:
        widget.layout().activate()
        widget.grab().save(str(Path(folder) / name))


def test_every_view_report_and_metrics_agree_with_the_final_checkpoint(qtbot, project, monkeypatch, tmp_path):
    monkeypatch.setattr(tasks, "train_task", stopped_after_epoch(STOP_AFTER))
    window = MainWindow(warm_up=False)
    qtbot.addWidget(window)
    window.resize(1280, 860)
    window.show()
    window.open_path(str(project))
    qtbot.waitUntil(lambda: window.session.split is not None, timeout=30_000)
    train, evaluate = window.views["train"], window.views["evaluate"]
    window.show_step("train")
    with qtbot.waitSignal(train.run_ended, timeout=120_000):
        train.start_button.click()
    run_dir = proj.load(project).run_path(proj.load(project).runs[0])
    assert runs.read_status(run_dir)["state"] == "cancelled"

    train.history.setCurrentRow(0)  # the stopped run, selected in the run list
    window.show_step("evaluate")  # its evaluation: of its best checkpoint so far
    qtbot.waitUntil(lambda: evaluate.clinical is not None and not evaluate.busy(), timeout=60_000)
    stopped_sha = evaluate.clinical.checkpoint["sha256"]
    assert stopped_sha == runs.checkpoint_sha256(run_dir)

    window.show_step("train")
    with qtbot.waitSignal(train.run_ended, timeout=120_000):
        train.resume_button.click()
    assert runs.read_status(run_dir)["state"] == "finished"
    assert window.stack.currentWidget() is train  # the final curves first; the user goes on
    train.evaluation_button.click()
    assert window.stack.currentWidget() is evaluate
    final_sha = runs.checkpoint_sha256(run_dir)
    qtbot.waitUntil(lambda: evaluate.clinical is not None and not evaluate.busy()
                    and evaluate.clinical.checkpoint["sha256"] == final_sha, timeout=60_000)
    assert not evaluate.banner.isVisible()

    paths, y, pred, names = _final_predictions(run_dir)
    k, answer = len(names), dict(zip(paths, pred, strict=True))
    truth = dict(zip(paths, y, strict=True))
    expected = [[int(np.sum((y == r) & (pred == c))) for c in range(k)] for r in range(k)]
    stored = evaluate.clinical.data["predictions"]["test"]
    assert stored["paths"] == paths and (np.asarray(stored["logits"]).argmax(1) == pred).all()
    assert sum(expected[r][c] for r in range(k) for c in range(k) if r != c) > 0, "no mistakes to drill into"

    # Overview: headline, matrix and the line that names the checkpoint
    accuracy = float(np.mean(y == pred))
    assert evaluate.figures["accuracy"].text() == percent(accuracy)
    assert evaluate.figures["n"].text() == str(len(y))
    assert _matrix_texts(evaluate.matrix, k) == expected
    assert final_sha[:8] in evaluate.run_label.text() and "best checkpoint, epoch" in evaluate.run_label.text()
    _shot(evaluate, "evaluate_overview.png")

    # the drill-down: every non-zero off-diagonal cell, its thumbnails' labels and a heatmap caption
    heat = evaluate.images.heatmap
    for r in range(k):
        for c in range(k):
            if r == c or not expected[r][c]:
                continue
            evaluate.matrix.cellClicked.emit(r, c)
            shown = evaluate.images.shown
            assert len(shown) == expected[r][c] == evaluate.images.gallery.model.rowCount()
            for row, image in enumerate(shown):
                assert (image.true, image.predicted) == (names[r], names[c])
                assert (truth[image.path], answer[image.path]) == (r, c)
                tile = evaluate.images.gallery.model.tile(row)
                assert tile.caption.startswith(f"true: {names[r]}\nmodel: {names[c]} ")
                assert f"is {names[r]}, model said {names[c]}" in tile.tooltip
            grid = evaluate.images.gallery
            grid.view.setCurrentIndex(grid.model.index(0))
            qtbot.waitUntil(lambda: heat.current() is not None, timeout=30_000)
            assert heat.current()["class_name"] == names[c]
            assert f"true class {names[r]}; the model's answer: {names[c]} " in heat.info.text()
    _shot(evaluate, "evaluate_images.png")

    # the threshold tab's matrix: the stored decision rule applied to the same per-image probabilities
    decision = evaluate.decision
    _, probs = evaluate.clinical.probs("test")
    assert (probs.argmax(1) == pred).all()
    positive = None if decision.positive is None else names.index(decision.positive)  # none: 3 classes
    decided = statistics.decide(probs, positive, decision.threshold, decision.abstain)
    at_threshold = [[int(np.sum((y == r) & (decided == c))) for c in range(k)] for r in range(k)]
    assert _matrix_texts(evaluate.threshold.matrix, k) == at_threshold
    evaluate.tabs.setCurrentWidget(evaluate.threshold)
    _shot(evaluate, "evaluate_threshold.png")

    # metrics.json (the fit's summary) shows the same test figures
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["confusion_matrix"] == expected and metrics["accuracy"] == pytest.approx(accuracy)
    assert len(metrics["misclassified"]) == int(np.sum(y != pred))

    # the report: its per-class table and the evaluated checkpoint, and its audit copy of the evaluation
    evaluate.write_report(str(tmp_path / "report"))
    qtbot.waitUntil(lambda: evaluate.last_report is not None, timeout=120_000)
    report = Path(evaluate.last_report.pdf).parent  # a new dated folder under the chosen one
    assert report.parent == tmp_path / "report"
    html = (report / "report.html").read_text(encoding="utf-8")
    assert final_sha[:8] in html
    for i, name in enumerate(names):
        n_i, right = sum(expected[i]), expected[i][i]
        called = sum(row[i] for row in expected)
        precision = "n/a" if not called else rf"{100 * right / called:.1f}% \([^<]*\)"  # with its interval
        row = rf"<tr><td>{name}</td><td>{n_i}</td><td>{100 * right / n_i:.1f}% \([^<]*\)</td><td>{precision}</td></tr>"
        assert re.search(row, html), row
    audit = json.loads((report / "audit" / "clinical.json").read_text())
    assert audit["checkpoint"]["sha256"] == final_sha == load_clinical(run_dir)["checkpoint"]["sha256"]
    window.close()
