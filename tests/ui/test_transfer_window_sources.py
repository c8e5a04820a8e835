"""The "Did transfer help?" window at laptop sizes and on other data: every row of the results table (linear
probe, fine-tune, scratch, pixel classifier) is visible without scrolling at 1366x768 and 1024x700, and the
"Data:" line runs the check on another folder (results beside it) or refuses an unusable one in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import write_digits_folder
from tl_desktop.core.fsutil import atomic_write_json
from tl_desktop.core.insight.results import new_result_folder
from tl_desktop.core.project import project_file as proj
from tl_desktop.ui.transfer.source import CHECKS_FOLDER
from tl_desktop.ui.transfer.window import TransferWindow

ARMS = {"linear-probe": 0.8, "fine-tune": 0.9, "scratch": 0.5, "thumbnail": 0.4}


def stored_check(data: str) -> dict:
    """A ``transfer.json`` as ``transfer_check`` writes it (four arms)."""
    def arm(name: str, value: float) -> dict:
        score, network = {"value": value, "low": value - 0.1, "high": value + 0.05}, name != "thumbnail"
        return {"arm": name, "run_dir": None, "test_balanced_accuracy": score, "test_accuracy": score,
                "best_val_balanced_accuracy": value, "epochs_run": 3 if network else 0, "wall_seconds": 9.0,
                "epoch_seconds": 6.0, "epochs_to_target": 2 if network else None,
                "seconds_to_target": 4.0 if network else None,
                "curve": [{"epoch": e, "val_balanced_acc": value * e / 3, "seconds": e} for e in (1, 2, 3)]
                if network else []}

    return {"model": "tf_efficientnet_lite0", "data": data, "out_dir": "", "budget_epochs": 3, "image_size": 32,
            "seed": 0, "test_images": 30, "classes": ["a", "b", "c"], "target_val_balanced_accuracy": 0.81,
            "arms": {name: arm(name, v) for name, v in ARMS.items()}, "best_transfer": "fine-tune",
            "best_no_transfer": "scratch", "difference": {"value": 0.4, "low": 0.2, "high": 0.5},
            "verdict": "positive", "rule": "positive when the interval lies above 0", "summary": ""}


class FakeReport:
    def __init__(self, data: str) -> None:
        self.verdict, self._data = "positive", data

    def to_dict(self) -> dict:
        return stored_check(self._data)


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return write_digits_folder(tmp_path_factory.mktemp("digits"), classes=(0, 1, 2), per_class=8, size=16)


@pytest.fixture
def project(tmp_path, digits):
    p = proj.create(tmp_path / "p", "Tiny digits")
    p.set_source(digits)
    proj.save(p)
    atomic_write_json(new_result_folder(p.folder, "check") / "transfer.json", stored_check(str(digits)))
    return p


def _window(qtbot, project) -> TransferWindow:
    win = TransferWindow(project)
    qtbot.addWidget(win)
    return win


@pytest.mark.parametrize("size", [(1366, 768), (1024, 700)])
def test_every_result_row_is_visible_without_scrolling(qtbot, project, size, tmp_path):
    win = _window(qtbot, project)
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    qtbot.wait(50)
    assert win.size().width() == size[0]  # the window fits the screen's width
    table = win.verdict.table
    assert table.rowCount() == 4
    viewport = table.viewport()
    for r in range(4):
        assert table.rowViewportPosition(r) >= 0
        assert table.rowViewportPosition(r) + table.rowHeight(r) <= viewport.height(), f"row {r} is cut"
    assert sum(table.columnWidth(c) for c in range(table.columnCount())) <= viewport.width()
    # the table itself lies within the visible part of the verdict's scroll area and of the window
    scroll = win.verdict_scroll.viewport()
    top_left = table.mapTo(scroll, table.rect().topLeft())
    bottom = table.mapTo(scroll, table.rect().bottomRight())
    assert top_left.y() >= 0 and bottom.y() <= scroll.height() and bottom.x() <= scroll.width()
    assert win.curves.height() >= 150  # the curves keep room below
    win.grab().save(str(tmp_path / f"transfer_{size[0]}.png"))


def test_another_folder_is_the_source_of_the_check(qtbot, project, tmp_path, monkeypatch):
    from tl_desktop.core.insight import transfer

    other = write_digits_folder(tmp_path / "other", classes=(3, 4), per_class=8, size=16)
    seen = []

    def fake_check(source, **kwargs):
        seen.append((source, kwargs["out_dir"]))
        return FakeReport(source.data)

    monkeypatch.setattr(transfer, "transfer_check", fake_check)
    win = _window(qtbot, project)
    win.show()
    assert win.data.uses_project() and win.verdict.report is not None  # the project's stored check
    win.data.choose(other)
    qtbot.waitUntil(lambda: not win.data.is_scanning() and not win.data.uses_project(), timeout=60_000)
    assert win.verdict.report is None  # the project's check is not shown for other images
    assert "usable images, 2 classes" in win.data.note.text()
    with qtbot.waitSignal(win.task_ended, timeout=60_000):
        win.start_button.click()
    (source, out), = seen
    assert Path(source.data) == other and source.csv is None
    assert Path(out).parent.parent == other.parent / CHECKS_FOLDER
    assert win.verdict.report is not None and str(other.parent) in win.verdict.folder.text.text()


def test_an_unusable_folder_is_refused_in_one_plain_line(qtbot, project, tmp_path):
    empty = tmp_path / "nothing here"
    (empty / "only-one-class").mkdir(parents=True)
    win = _window(qtbot, project)
    win.data.choose(empty)
    qtbot.waitUntil(lambda: not win.data.is_scanning() and "cannot be used" in win.data.note.text(),
                    timeout=60_000)
    text = win.data.note.text()
    assert text.startswith("nothing here cannot be used: ") and "\n" not in text and "Traceback" not in text
    assert win.data.uses_project() and win.data.other is None  # the project stays the source
