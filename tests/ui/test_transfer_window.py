"""The "Did transfer help?" window on real digits (3 classes x 20 images, 32 px, 1-2 epochs, CPU): the check
runs in a worker with live curves of fine-tune and scratch, shows the verdict and the indicators, persists,
stops cleanly; the label-budget curve is drawn; the main window's menu opens it."""

from __future__ import annotations

import pytest

from tests.helpers import write_digits_folder
from tl_desktop.core.fsutil import atomic_write_json
from tl_desktop.core.insight.results import COMPARE_FILE, compare_sentence, latest_result, new_result_folder
from tl_desktop.core.project import project_file as proj
from tl_desktop.ui.transfer.window import TransferWindow
from tl_desktop.workers import Worker


@pytest.fixture(scope="module")
def tiny_digits(tmp_path_factory):
    return write_digits_folder(tmp_path_factory.mktemp("tiny-digits"), classes=(0, 1, 2), per_class=20, size=32)


@pytest.fixture
def project(tmp_path, tiny_digits):
    p = proj.create(tmp_path / "p", "Tiny digits")
    p.set_source(tiny_digits)
    s = p.settings
    s.image_size, s.batch_size, s.device, s.seed = 32, 16, "cpu", 3
    proj.save(p)
    return p


@pytest.fixture
def window(qtbot, project):
    win = TransferWindow(project)
    qtbot.addWidget(win)
    win.show()
    return win


def _run(qtbot, win, button, timeout=120_000) -> list[str]:
    outcomes: list[str] = []
    win.task_ended.connect(lambda kind, outcome: outcomes.append(outcome))
    with qtbot.waitSignal(win.task_ended, timeout=timeout):
        button.click()
    return outcomes


def test_check_draws_live_curves_and_shows_the_verdict(window, qtbot, project, monkeypatch):
    assert window.image_size.value() == 32 and window.model.currentData() == "tf_efficientnet_lite0"
    assert window.verdict.report is None
    window.budget.setValue(2)
    live: list[str] = []  # arms of the points the plot received while the check ran
    original = window.curves.add_point

    def add_point(arm, epoch, value):
        if window.is_running():
            live.append(arm)
        original(arm, epoch, value)

    monkeypatch.setattr(window.curves, "add_point", add_point)
    assert _run(qtbot, window, window.start_button) == ["finished"]
    assert live.count("fine-tune") == 2 and live.count("scratch") == 2 and live.count("linear-probe") == 2
    assert window.curves.point_count("fine-tune") == 2 and window.curves.point_count("scratch") == 2
    assert window.curves.target_line.isVisible()
    words = window.verdict.verdict.text().lower()
    assert any(w in words for w in ("positive", "neutral", "negative"))
    table = window.verdict.table
    assert table.rowCount() == 4
    assert all(table.item(r, c) and table.item(r, c).text() for r in range(4) for c in range(table.columnCount()))
    assert "95% CI" in window.verdict.difference.text()
    saved, folder = latest_result(project.folder, "check")
    assert window.verdict.folder.folder == folder and (folder / "transfer.txt").is_file()
    assert saved["verdict"] in words
    assert window.start_button.isEnabled() and not window.stop_button.isEnabled()
    assert not Worker.live

    reopened = TransferWindow(project)  # results persist: shown on opening
    qtbot.addWidget(reopened)
    assert reopened.verdict.report["verdict"] == saved["verdict"]
    assert reopened.curves.point_count("scratch") == 2 and reopened.verdict.table.rowCount() == 4


def test_stop_mid_run_cancels_cleanly(window, qtbot):
    window.budget.setValue(2)
    outcomes: list[str] = []
    window.task_ended.connect(lambda kind, outcome: outcomes.append(outcome))

    def stop_on_first_epoch(item):
        if type(getattr(item, "event", None)).__name__ == "EpochEnded" and window.stop_button.isEnabled():
            window.stop_button.click()

    window.start_button.click()
    worker = window.worker
    worker.progressed.connect(stop_on_first_epoch)
    assert window.stop_button.isEnabled() and not window.start_button.isEnabled()
    qtbot.waitUntil(lambda: bool(outcomes), timeout=120_000)
    assert outcomes == ["aborted"]
    assert not worker.is_running() and worker._thread.isFinished()
    assert not Worker.live and window.worker is None
    assert window.verdict.report is None and "Stopped" in window.status.text()
    assert window.start_button.isEnabled()
    assert latest_result(window.project.folder, "check") is None  # no transfer.json for a stopped check


def test_label_budget_button_draws_the_curve(window, qtbot):
    window.tabs.setCurrentIndex(2)
    assert _run(qtbot, window, window.budget_button) == ["finished"]
    assert window.budget_plot.point_count() >= 4
    xs, ys = window.budget_plot.mean_curve.getData()
    assert len(xs) == window.budget_plot.point_count() and all(0 <= y <= 100 for y in ys)
    assert window.answer.answer.text() in ("Likely yes", "Maybe a little", "Unlikely")
    assert "test images" in window.answer.explanation.text()
    assert latest_result(window.project.folder, "budget") is not None


def test_errors_become_a_readable_dialog(window, qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    window.project.source.path = str(window.project.folder / "missing")
    assert _run(qtbot, window, window.budget_button) == ["errored"]
    boxes = [b for b in window.findChildren(QMessageBox) if b.objectName() == "errorDialog"]
    assert boxes and "failed" in boxes[-1].text()
    assert window.budget_button.isEnabled()


def test_window_and_cli_state_the_same_comparison(qtbot, project, monkeypatch, capsys, tmp_path):
    """One comparison: the window (reopening it from disk) and 'tl-desktop compare-models' say the same."""
    from tl_desktop.cli import main
    from tl_desktop.core.insight import transfer

    def row(model, label, value, low, high):
        return {"model": model, "label": label, "params": 3_400_000, "test_balanced_accuracy":
                {"value": value, "low": low, "high": high}, "test_accuracy": {"value": value, "low": low,
                                                                              "high": high},
                "wall_seconds": 12.0, "weights_mb": 13.6, "run_dir": str(tmp_path / model)}

    rows = [row("small", "Small net", 0.81, 0.70, 0.90), row("big", "Big net", 0.86, 0.76, 0.94),
            row("old", "Old net", 0.40, 0.30, 0.50)]
    atomic_write_json(new_result_folder(project.folder, "compare") / COMPARE_FILE, {"rows": rows})
    win = TransferWindow(project)
    qtbot.addWidget(win)
    shown = win.compare_summary.text()
    assert shown == compare_sentence(rows)
    assert "Big net" in shown and "overlaps with Small net:" in shown and "Old net" not in shown

    monkeypatch.setattr(transfer, "compare_models", lambda *args, **kwargs: rows)
    images = tmp_path / "images"  # compare_models is replaced: the CLI only needs a folder to name
    images.mkdir()
    assert main(["compare-models", str(images), "--out", str(tmp_path / "cli")]) == 0
    assert shown in capsys.readouterr().out.splitlines()


def test_main_window_menu_opens_the_window(qtbot, project):
    from tl_desktop.ui.main_window import MainWindow

    main = MainWindow(warm_up=False)
    qtbot.addWidget(main)
    main.open_path(str(project.folder))
    qtbot.waitUntil(lambda: main.session.split is not None, timeout=30_000)
    action = next(a for m in main.menuBar().findChildren(type(main.menuBar().actions()[0].menu()))
                  for a in m.actions() if a.text().startswith("Did transfer"))
    action.trigger()
    win = main.transfer_window
    assert win.isVisible() and not win.isModal() and win.project is main.session.project
    action.trigger()
    assert main.transfer_window is win  # one window per project
    main.close()
