"""Evaluate step on a finished run (three classes): no positive class until the user chooses a class of interest,
live threshold figures from stored per-image probabilities, pickers, calibration and "not sure", confusion-matrix
drill-down (diagonal included), Grad-CAM heatmaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tl_desktop.core.evaluation import statistics as clinical
from tl_desktop.core.evaluation.run_evaluation import load_clinical
from tl_desktop.core.evaluation.stored_result import class_figures
from tl_desktop.ui.evaluate.threshold_panel import NO_CLASS
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


def _choose(view, name: str) -> None:
    """Choose a class of interest in the threshold tab, as a user does."""
    view.threshold.positive.setCurrentIndex(view.threshold.positive.findData(name))


def test_three_classes_lead_with_accuracy_and_pick_no_positive_class(view):
    assert len(view.clinical.names) == 3 and view.decision.positive is None and view.decision.threshold is None
    point = view.headline.point.text()
    assert "most probable class" in point and "no class is treated as “positive”" in point
    assert "positive class" not in point.lower() and "threshold" not in point.lower()
    assert view.figures["accuracy"].text().endswith("%") and view.figures["balanced"].text().endswith("%")
    assert "95% CI" in view.headline.captions["accuracy"].text()
    figures = class_figures(view.metrics)  # each class's sensitivity and precision with its Wilson interval
    for row, name in enumerate(view.clinical.names):
        for column, key in ((1, "recall"), (2, "precision")):
            f = figures[name][key]
            assert _cell(view.table, row, column) == (f"{100 * f['value']:.1f} % ({100 * f['low']:.1f}–"
                                                      f"{100 * f['high']:.1f} %)")
    panel = view.threshold
    assert panel.positive.currentText() == NO_CLASS and panel.class_label.text() == "Class of interest:"
    assert "no class is treated as “positive”" in panel.intro.text()
    assert not panel.slider.isEnabled() and not panel.youden.isEnabled() and not panel.export_button.isEnabled()
    assert panel.stored.text().startswith("No decision rule inside: the model answers the most probable class")
    k = len(view.clinical.names)  # the threshold tab's matrix is the plain answer, as on the overview
    assert [[int(_cell(panel.matrix, r, c)) for c in range(k)] for r in range(k)] == view.metrics["confusion_matrix"]
    _choose(view, view.clinical.names[1])  # a class of interest: a starting point, not stored
    assert view.decision.positive == view.clinical.names[1] and view.decision.threshold is not None
    assert panel.slider.isEnabled() and panel.export_button.isEnabled() and "not stored" in panel.pick_note.text()
    assert load_clinical(view.run_dir)["positive_class"] is None
    _choose(view, "")  # back to none
    assert view.decision.positive is None and view.decision.threshold is None and not panel.slider.isEnabled()


def test_curves_show_auc_with_interval_in_the_legend(view):
    texts = view.threshold.plots.legend_texts
    assert len(texts) == len(view.clinical.names)
    assert all("AUC" in t and "95% CI" in t for t in texts)
    _choose(view, view.clinical.names[2])
    assert view.threshold.plots.legend_texts[0].startswith(view.clinical.names[2])  # the class of interest first
    assert view.calibration.ece.text().count("%") >= 2


def test_slider_updates_figures_and_matrix_live_without_running_the_model(view, qtbot):
    _choose(view, view.clinical.names[0])
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


def test_pickers_choose_on_validation_like_the_core(view):
    name = view.clinical.names[1]
    _choose(view, name)
    y, p = view.clinical.probs("val")
    youden = clinical.pick_threshold((y == 1).astype(int), p[:, 1], "youden")  # the core's rule on validation
    view.threshold.slider.setValue(100)
    view.threshold.youden.click()
    assert view.decision.threshold == pytest.approx(youden)
    assert view.threshold.value.value() == pytest.approx(youden, abs=1e-4)
    view.threshold.sens_target.setValue(1.0)
    view.threshold.sens_button.click()
    y, p = view.clinical.probs("val")
    positive = view.clinical.names.index(view.decision.positive)
    stats = clinical.binary_stats((y == positive).astype(int), p[:, positive], view.decision.threshold)
    assert stats["sensitivity"]["value"] == 1.0
    assert "validation" in view.threshold.pick_note.text()


def test_positive_class_chooser_redraws_and_recomputes(view):
    _choose(view, view.clinical.names[0])
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


def test_three_classes_are_exported_from_the_window_without_a_decision_rule(qtbot, finished_project, tmp_path):
    import onnx

    from tl_desktop.ui.main_window import MainWindow

    window = MainWindow(warm_up=False)
    qtbot.addWidget(window)
    window.show()
    window.open_path(str(finished_project))
    evaluate = window.views["evaluate"]
    window.show_step("evaluate")
    qtbot.waitUntil(lambda: evaluate.clinical is not None, timeout=30_000)
    assert evaluate.decision.positive is None
    export = window.views["export"]
    window.show_step("export")
    export.out.setText(str(tmp_path / "model.onnx"))
    export.button.click()
    qtbot.waitUntil(lambda: export.result is not None, timeout=120_000)
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "model.onnx")).metadata_props}
    assert not {"positive_class", "decision_threshold", "decision_rule", "abstain_threshold"} & set(meta)
    assert "No decision rule inside: the model answers the most probable class" in export.where.text()
    window.close()


def test_two_classes_show_a_suggestion_that_only_the_button_puts_in_the_export(qtbot, tmp_path_factory, tmp_path):
    import shutil

    from tests.evaluation_run import two_digit_run
    from tl_desktop.core.evaluation.run_evaluation import decision_metadata

    run = shutil.copytree(two_digit_run(tmp_path_factory), tmp_path / "two")
    (run / "clinical.json").unlink()  # other tests set decisions on the shared run: evaluated afresh here
    widget = EvaluateView(Session())
    qtbot.addWidget(widget)
    widget.show()
    widget.session.select_run(str(run))
    qtbot.waitUntil(lambda: widget.clinical is not None and not widget.busy(), timeout=30_000)
    stored = load_clinical(run)
    panel, suggested = widget.threshold, stored["suggestion"]
    assert widget.decision.positive == suggested["positive_class"] and panel.class_label.text() == "Positive class:"
    assert "suggested (not in the exported model)" in widget.headline.point.text()
    assert panel.stored.text().startswith("Suggested only. Until you press “Use this operating point”")
    assert "No decision rule inside" in panel.stored.text() and panel.clear_button.isHidden()
    assert "positive_class" not in decision_metadata(run)
    panel.export_button.click()  # "Use this operating point": accepted as it is
    qtbot.waitUntil(lambda: panel.stored.text().startswith("Decision rule inside"), timeout=10_000)
    assert "chosen by you on" in panel.stored.text() and not panel.clear_button.isHidden()
    assert "(in the exported model)" in widget.headline.point.text()
    accepted = load_clinical(run)
    assert accepted["decision_source"] == "user" and accepted["threshold_rule"]["accepted_by_user"]
    meta = decision_metadata(run)
    assert meta["positive_class"] == suggested["positive_class"]
    assert float(meta["decision_threshold"]) == suggested["decision_threshold"]
    panel.clear_button.click()  # "Remove the decision rule": the suggestion again, nothing exported
    qtbot.waitUntil(lambda: panel.stored.text().startswith("Suggested"), timeout=10_000)
    assert "positive_class" not in decision_metadata(run) and panel.clear_button.isHidden()
    widget.shutdown()


def test_while_the_run_trains_the_last_evaluation_is_shown_labelled_and_replaced_when_it_ends(qtbot, finished_run):
    from tl_desktop.core import runs
    from tl_desktop.core.evaluation.current import evaluation_state

    widget = EvaluateView(Session())
    qtbot.addWidget(widget)
    widget.show()
    stored = load_clinical(finished_run)
    best = runs.load_checkpoint(finished_run, "best")
    runs.write_status(finished_run, "running")  # as the core writes it while the run trains
    widget.session.select_run(str(finished_run))
    qtbot.waitUntil(lambda: widget.clinical is not None and not widget.busy(), timeout=30_000)
    assert widget.banner.isVisible() and "Training in progress" in widget.banner.text()
    assert "best checkpoint, epoch" in widget.banner.text() and "still its best" in widget.banner.text()
    assert not widget.report_button.isEnabled()
    # training writes a better checkpoint: the shown figures are labelled out of date, never recomputed meanwhile
    from tl_desktop.core.models import run_model

    loaded = run_model.load_run(finished_run)
    next(loaded.model.parameters()).data.mul_(0.5)
    runs.save_checkpoint(finished_run, "best", loaded.model, best[2])
    widget.check_current()
    qtbot.waitUntil(lambda: not widget.busy() and "out of date" in widget.banner.text(), timeout=30_000)
    assert "checkpoint has changed" in widget.banner.text() and "checkpoint changed" in widget.banner.toolTip()
    assert load_clinical(finished_run) == stored
    assert widget.clinical.data == stored
    # training ends: showing the step again evaluates the new checkpoint and replaces every figure at once
    runs.write_status(finished_run, "finished")
    widget.hide()
    widget.show()
    qtbot.waitUntil(lambda: not widget.busy() and not widget.banner.isVisible(), timeout=60_000)
    now = runs.checkpoint_sha256(finished_run)
    assert widget.clinical.checkpoint["sha256"] == now != stored["checkpoint"]["sha256"]
    assert now[:8] in widget.run_label.text()
    assert widget.metrics == widget.clinical.summary() and evaluation_state(finished_run).stale is None
    widget.shutdown()


def _dialogs(widget) -> list:
    from PySide6.QtWidgets import QMessageBox

    return widget.findChildren(QMessageBox, "errorDialog")


def _load(qtbot, widget: EvaluateView, run_dir: Path) -> None:
    widget.show()  # the evaluation is loaded when the step is on screen
    widget.load_run(str(run_dir))
    with qtbot.waitSignal(widget.workers["clinical"].ended, timeout=30_000):
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
    assert "best.safetensors" in widget.run_label.text()  # damaged, or modified after training (integrity)
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
