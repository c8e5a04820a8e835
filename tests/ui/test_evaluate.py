"""Evaluate step on a finished run: live threshold figures from stored per-image probabilities, pickers,
calibration and "not sure", confusion-matrix drill-down (diagonal included), Grad-CAM heatmaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tl_desktop.core.evaluation import statistics as clinical
from tl_desktop.core.evaluation.run_evaluation import load_clinical
from tl_desktop.ui.evaluate.view import EvaluateView
from tl_desktop.ui.session import Session
from tl_desktop.workers import Worker


@pytest.fixture
def view(qtbot, finished_run):
    session = Session()
    widget = EvaluateView(session)
    qtbot.addWidget(widget)
    widget.resize(1100, 760)
    widget.show()
    session.select_run(str(finished_run))
    qtbot.waitUntil(lambda: widget.clinical is not None and widget.metrics is not None, timeout=30_000)
    qtbot.waitUntil(lambda: not widget.busy(), timeout=10_000)
    yield widget
    widget.shutdown()


def _cell(table, r, c) -> str:
    return table.item(r, c).text()


def test_curves_show_auc_with_interval_in_the_legend(view):
    texts = view.threshold.plots.legend_texts
    assert len(texts) == len(view.clinical.names)
    assert all("AUC" in t and "95% CI" in t for t in texts)
    assert texts[0].startswith(view.decision.positive)  # the positive class first
    assert view.calibration.ece.text().count("%") >= 2


def test_slider_updates_figures_and_matrix_live_without_running_the_model(view, qtbot):
    panel, clin = view.threshold, view.clinical
    positive = clin.names.index(view.decision.positive)
    y, _p = clin.probs("test")
    n_pos = int((y == positive).sum())
    panel.slider.setValue(0)  # everything is called positive
    assert not any(w.is_running() for w in Worker.live)
    column = [int(_cell(panel.matrix, r, positive)) for r in range(len(clin.names))]
    assert sum(column) == len(y)
    assert _cell(panel.table, 0, 1) == f"100.0 % ({n_pos}/{n_pos})"
    panel.slider.setValue(panel.slider.maximum())  # nobody (below probability 1.0) is called positive
    column = [int(_cell(panel.matrix, r, positive)) for r in range(len(clin.names))]
    assert sum(column) <= n_pos
    assert _cell(panel.table, 1, 1).startswith("100.0 %")  # specificity
    assert "–" in _cell(panel.table, 1, 2) and "%" in _cell(panel.table, 1, 2)  # with its 95% interval
    assert not any(w.is_running() for w in Worker.live)
    # the figures are the core's at that threshold
    expected = clinical.binary_stats((y == positive).astype(int), clin.probs("test")[1][:, positive], 1.0)
    assert _cell(panel.table, 0, 1).endswith(f"({expected['tp']}/{expected['tp'] + expected['fn']})")


def test_pickers_choose_on_validation_like_the_core(view, finished_run):
    stored = load_clinical(finished_run)  # evaluated with the default rule: Youden on validation
    view.threshold.slider.setValue(100)
    view.threshold.youden.click()
    assert view.decision.threshold == pytest.approx(stored["decision_threshold"])
    assert view.threshold.value.value() == pytest.approx(stored["decision_threshold"], abs=1e-4)
    view.threshold.sens_target.setValue(1.0)
    view.threshold.sens_button.click()
    y, p = view.clinical.probs("val")
    positive = view.clinical.names.index(view.decision.positive)
    stats = clinical.binary_stats((y == positive).astype(int), p[:, positive], view.decision.threshold)
    assert stats["sensitivity"]["value"] == 1.0
    assert "validation" in view.threshold.pick_note.text()


def test_positive_class_chooser_redraws_and_recomputes(view):
    other = next(n for n in view.clinical.names if n != view.decision.positive)
    view.threshold.positive.setCurrentText(other)
    assert view.decision.positive == other
    assert view.threshold.plots.legend_texts[0].startswith(other)
    y, _ = view.clinical.probs("test")
    n = int((y == view.clinical.names.index(other)).sum())
    assert _cell(view.threshold.table, 0, 1).endswith(f"/{n})")


def test_abstain_adds_not_sure_column_and_coverage(view):
    view.calibration.enabled.setChecked(True)
    view.calibration.value.setValue(0.999)
    assert view.decision.abstain == pytest.approx(0.999)
    matrix = view.threshold.matrix
    assert matrix.columnCount() == len(view.clinical.names) + 1
    assert matrix.horizontalHeaderItem(matrix.columnCount() - 1).text() == "not sure"
    accuracy, coverage = view.clinical.accuracy_at_abstain(0.999)
    assert f"{100 * coverage:.1f} %" in view.calibration.figures.text()
    view.calibration.enabled.setChecked(False)
    assert view.decision.abstain is None and matrix.columnCount() == len(view.clinical.names)


def test_diagonal_cell_lists_the_correctly_classified_images(view):
    names = view.clinical.names
    counts = view.metrics["confusion_matrix"]
    view.matrix.cellClicked.emit(0, 0)
    assert view.tabs.currentWidget() is view.images
    shown = view.images.shown
    assert len(shown) == counts[0][0] > 0
    assert all(i.true == i.predicted == names[0] for i in shown)
    assert view.images.gallery.model.rowCount() == counts[0][0]
    for r in range(len(names)):  # every cell lists exactly its count
        for c in range(len(names)):
            view.matrix.cellClicked.emit(r, c)
            assert len(view.images.shown) == counts[r][c]


def test_heatmap_of_a_gallery_image_is_computed_once_and_saved(view, qtbot, tmp_path):
    view.matrix.cellClicked.emit(0, 0)
    grid = view.images.gallery
    grid.view.setCurrentIndex(grid.model.index(0))
    heat = view.images.heatmap
    qtbot.waitUntil(lambda: heat.current() is not None, timeout=30_000)
    result = heat.current()
    assert result["class_name"] == view.images.shown[0].predicted
    assert heat.save_button.isEnabled() and not heat.heat.pixmap().isNull()
    out = heat.save_png(tmp_path / "heat.png")
    with Image.open(out) as image:
        assert image.size == (256, 256) and np.asarray(image).std() > 0
    # another class, then back: the first one comes from the cache, without a worker
    heat.target.setCurrentIndex(heat.target.findData(view.clinical.names[1]))
    qtbot.waitUntil(lambda: heat.current() is not None, timeout=30_000)
    assert heat.current()["class_name"] == view.clinical.names[1]
    heat.target.setCurrentIndex(0)
    assert heat.current() is result and not heat.worker.is_running()


def test_threshold_chosen_in_the_gui_is_the_one_in_the_exported_onnx(qtbot, finished_project, tmp_path):
    import onnx

    from tl_desktop.ui.main_window import MainWindow

    window = MainWindow(warm_up=False)
    qtbot.addWidget(window)
    window.show()
    window.open_path(str(finished_project))
    evaluate = window.views["evaluate"]
    window.show_step("evaluate")
    qtbot.waitUntil(lambda: evaluate.clinical is not None, timeout=30_000)
    positive = evaluate.clinical.names[-1]
    evaluate.threshold.positive.setCurrentText(positive)
    evaluate.threshold.value.setValue(0.3137)  # typed by the user, kept exactly
    _y, probs = evaluate.clinical.probs("test")
    abstain = round(float(np.median(probs.max(axis=1))), 4)  # about half the test images are "not sure"
    evaluate.calibration.enabled.setChecked(True)
    evaluate.calibration.value.setValue(abstain)
    evaluate.threshold.export_button.click()
    qtbot.waitUntil(lambda: "0.3137" in evaluate.threshold.stored.text(), timeout=10_000)
    assert f"{abstain:.4f}" in evaluate.threshold.stored.text()

    export = window.views["export"]
    window.show_step("export")
    export.out.setText(str(tmp_path / "model.onnx"))
    export.button.click()
    qtbot.waitUntil(lambda: export.result is not None, timeout=120_000)
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "model.onnx")).metadata_props}
    assert meta["positive_class"] == positive
    assert float(meta["decision_threshold"]) == 0.3137
    assert "≥ 0.3137" in export.where.text() and "not sure" in export.where.text()
    assert float(meta["abstain_threshold"]) == abstain
    assert float(meta["temperature"]) == pytest.approx(evaluate.clinical.temperature)

    # Predict with the exported file decides as Evaluate showed, "not sure" included
    expected = {i.path: i.predicted for i in evaluate.clinical.images(evaluate.decision)}
    predict = window.views["predict"]
    window.show_step("predict")
    predict.model_path.setText(str(tmp_path / "model.onnx"))
    root = evaluate.root
    predict.predict([str(root / path) for path in expected])
    qtbot.waitUntil(lambda: predict.results.rowCount() == len(expected), timeout=60_000)
    got = {str(Path(p.path).relative_to(root).as_posix()): p.label for p in predict.results.rows}
    assert "not sure" in got.values()
    assert sum(got[k] != v for k, v in expected.items()) <= 1  # torch vs onnxruntime rounding at the edge
    window.close()


def test_metrics_and_per_image_results_may_arrive_in_either_order(qtbot, finished_run):
    from tl_desktop.core.fsutil import read_json

    for clinical_first in (True, False):
        widget = EvaluateView(Session())
        qtbot.addWidget(widget)
        widget.run_dir = str(finished_run)
        steps = [lambda w=widget: w.show_clinical(str(finished_run), load_clinical(finished_run)),
                 lambda w=widget: w.show_metrics(str(finished_run), read_json(finished_run / "metrics.json"),
                                                 read_json(finished_run / "manifest.json")["root"])]
        for step in steps if clinical_first else steps[::-1]:
            step()
        assert widget.images.heatmap.run_dir == str(finished_run)
        widget.show_cell(widget.clinical.names[0], widget.clinical.names[0], thresholded=False)
        tile = widget.images.gallery.model.tile(0)
        assert Path(tile.path).is_file()
        widget.shutdown()


def _dialogs(widget) -> list:
    from PySide6.QtWidgets import QMessageBox

    return widget.findChildren(QMessageBox, "errorDialog")


def _load(qtbot, widget: EvaluateView, run_dir: Path) -> None:
    widget.load_run(str(run_dir))
    with qtbot.waitSignal(widget.workers["metrics"].ended, timeout=30_000):
        pass


def test_a_folder_that_is_not_yet_a_run_is_a_line_and_a_damaged_run_a_dialog(qtbot, tmp_path, finished_run):
    widget = EvaluateView(Session())
    qtbot.addWidget(widget)
    (tmp_path / "setting-up").mkdir()
    _load(qtbot, widget, tmp_path / "setting-up")  # no manifest.json yet: IncompleteRunError
    assert "no test results" in widget.run_label.text() and "manifest.json" in widget.run_label.text()
    assert _dialogs(widget) == []
    (finished_run / "metrics.json").unlink()
    (finished_run / "checkpoints" / "best.safetensors").write_bytes(b"not a checkpoint")
    _load(qtbot, widget, finished_run)  # a RunError that is not about an incomplete folder
    assert "best.safetensors is damaged" in widget.run_label.text()
    assert len(_dialogs(widget)) == 1 and "Evaluation failed" in _dialogs(widget)[0].text()
    widget.shutdown()


def test_the_reaction_to_an_error_follows_its_type_not_its_text(qtbot):
    from tl_desktop.core.errors import IncompleteRunError, RunError
    from tl_desktop.workers import Failure

    widget = EvaluateView(Session())
    qtbot.addWidget(widget)
    widget._on_error(Failure(IncompleteRunError("a sentence without the old key words"), ""))
    assert _dialogs(widget) == []
    widget._on_error(Failure(RunError("runs/a is not a run folder (no config.json), manifest"), "Traceback ..."))
    assert len(_dialogs(widget)) == 1 and _dialogs(widget)[0].detailedText() == "Traceback ..."
