"""Issue 5's fault paths: drag and drop, closing while training (cancel, save, continue the run later), a
worker error as a readable dialog and a log entry, an out-of-memory retry as a notice, and a 10,000-image
thumbnail grid that keeps the event loop responsive while scrolling."""

from __future__ import annotations

import os
import shutil
import time

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QMessageBox

from tests.helpers import write_digits_folder
from tl_desktop.core import runs
from tl_desktop.core.events import Notice
from tl_desktop.core.project import project_file as proj
from tl_desktop.sample import build_sample_project
from tl_desktop.ui.main_window import MainWindow

# A freeze check, not a speed goal: a shared 2-core machine under load stalls a healthy loop for 100-350 ms
# (seen here at load 7); a frozen window stalls for seconds. The < 50 ms goal is measured by bench/ui_responsiveness.py.
HEARTBEAT_LIMIT_MS = 1000


def _window(qtbot) -> MainWindow:
    win = MainWindow(warm_up=False)
    qtbot.addWidget(win)
    win.show()
    return win


def _errors(widget) -> list[QMessageBox]:
    return widget.window().findChildren(QMessageBox, "errorDialog")


def test_dropping_a_folder_on_the_data_step_scans_it(qtbot, tmp_path, digits_dir):
    window = _window(qtbot)
    window.session.create(tmp_path / "p", "Dropped")
    data = window.views["data"]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(digits_dir))])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    data.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    data.dropEvent(drop)
    assert drop.isAccepted()
    assert window.session.project.source_path() == digits_dir
    qtbot.waitUntil(lambda: window.session.split is not None, timeout=30_000)
    assert data.classes.rowCount() == 4 and data.grid.model.rowCount() == 90
    window.close()


@pytest.fixture
def sample(tmp_path):
    folder = build_sample_project(tmp_path / "sample", size=32, per_class=20)
    project = proj.load(folder)
    s = project.settings
    s.epochs, s.strategy, s.image_size, s.batch_size, s.augmentation, s.device = 2, "fine-tune", 32, 16, "none", "cpu"
    proj.save(project)
    return folder


def test_closing_while_training_asks_cancels_saves_and_the_run_continues_later(qtbot, sample, monkeypatch):
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[1]) or QMessageBox.StandardButton.Yes)
    window = _window(qtbot)
    window.open_path(str(sample))
    qtbot.waitUntil(lambda: window.session.split is not None, timeout=30_000)
    train = window.views["train"]
    window.show_step("train")
    train.start_button.click()
    qtbot.waitUntil(lambda: len(train.plots.data["batch"][0]) > 0, timeout=60_000)  # mid-epoch
    worker = train.worker
    with qtbot.waitSignal(train.run_ended, timeout=60_000):
        window.close()
        assert asked == ["Training is running"] and window.isVisible()  # asked; closes once stopped
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    assert not worker.is_running() and worker.token.cancelled
    saved = proj.load(sample)  # the project was saved with the stopped run
    assert len(saved.runs) == 1 and saved.runs[0].cancelled
    run_dir = saved.run_path(saved.runs[0])
    assert runs.read_status(run_dir)["state"] == "cancelled"

    again = _window(qtbot)  # "Continue run" in a new session
    again.open_path(str(sample))
    train = again.views["train"]
    again.show_step("train")
    train.history.setCurrentRow(0)
    assert train.resume_button.isEnabled()
    with qtbot.waitSignal(train.run_ended, timeout=120_000):
        train.resume_button.click()
    assert runs.read_status(run_dir)["state"] == "finished"
    assert not proj.load(sample).runs[0].cancelled and len(runs.read_history(run_dir)) == 2
    again.close()


def test_a_worker_error_is_a_readable_dialog_and_a_log_entry(qtbot, tmp_path):
    from tl_desktop import app

    root, level = app.logging.getLogger(), app.logging.getLogger().level
    before = list(root.handlers)
    log_file = app.setup_logging()
    try:
        data = write_digits_folder(tmp_path / "images", classes=(0, 1), per_class=10, size=16)
        project = proj.create(tmp_path / "p", "Vanishing data")
        project.set_source(data)
        proj.save(project)
        window = _window(qtbot)
        window.open_path(str(project.folder))
        qtbot.waitUntil(lambda: window.session.split is not None, timeout=30_000)
        shutil.rmtree(data)  # e.g. a USB disk unplugged before training
        train = window.views["train"]
        with qtbot.waitSignal(train.run_ended, timeout=60_000):
            train.start_button.click()
        boxes = _errors(train)
        assert boxes, "no error dialog"
        box = boxes[-1]
        what = box.text().split("<br>", 1)[1]
        assert "\n" not in what and len(what) < 300
        assert "Training stopped with an error" in box.text()
        assert "Traceback" in box.detailedText() and box.informativeText()
        for handler in root.handlers:
            handler.flush()
        assert "Training stopped with an error" in log_file.read_text()
        assert proj.load(project.folder).name == "Vanishing data"  # the project is intact
        window.close()
    finally:
        for handler in set(root.handlers) - set(before):
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


def test_out_of_memory_retry_is_a_notice_not_an_error(qtbot, tmp_path):
    window = _window(qtbot)
    window.session.create(tmp_path / "p", "Notice")
    train = window.views["train"]
    messages = []
    window.session.message.connect(messages.append)
    text = "GPU memory was full: retrying the epoch with batch size 8"
    train._on_event(Notice(text))  # what the engine emits after a CUDA out-of-memory error
    assert text in train.log_pane.toPlainText().splitlines()[-1]
    assert messages == [text] and text in window.statusBar().currentMessage()
    assert not _errors(train)
    window.close()


def test_ten_thousand_thumbnails_scroll_without_stalling(qtbot, tmp_path):
    from tl_desktop.ui.widgets.thumbnail_grid import ThumbnailGrid, Tile

    originals = sorted(write_digits_folder(tmp_path / "src", classes=(0, 1), per_class=5, size=64).rglob("*.png"))
    folder = tmp_path / "many"
    folder.mkdir()
    tiles = []
    for i in range(10_000):  # 10,000 distinct files (hard links: real PNGs, no 10,000 encodes)
        path = folder / f"img_{i:05d}.png"
        os.link(originals[i % len(originals)], path)
        tiles.append(Tile(str(path), path.name, str(path)))
    grid = ThumbnailGrid()
    qtbot.addWidget(grid)
    grid.resize(900, 600)
    grid.show()
    grid.set_groups({"a": tiles[:5000], "b": tiles[5000:]})
    assert grid.model.rowCount() == 10_000
    bar = grid.view.verticalScrollBar()
    gaps, last = [], [time.perf_counter()]

    def beat() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    def scroll() -> None:
        bar.setValue(bar.value() + bar.pageStep())

    heartbeat, scroller = QTimer(interval=10), QTimer(interval=15)
    heartbeat.timeout.connect(beat)
    scroller.timeout.connect(scroll)
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=10_000)
    heartbeat.start()
    scroller.start()
    qtbot.waitUntil(lambda: bar.value() >= bar.maximum(), timeout=60_000)
    scroller.stop()
    qtbot.wait(300)  # the last page's thumbnails load
    heartbeat.stop()
    worst = 1000 * max(gaps)
    print(f"thumbnail grid: {len(gaps)} beats while scrolling 10,000 images, largest gap {worst:.1f} ms")
    assert len(grid.cache._images) > 0  # thumbnails were decoded (lazily, in the pool)
    assert worst < HEARTBEAT_LIMIT_MS, f"the event loop stalled for {worst:.0f} ms while scrolling"
    grid.shutdown()
