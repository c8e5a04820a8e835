"""The Label step, as a user drives it with the keyboard, on real digit images in one folder without class
folders: keys 1-3 label, undo takes decisions back, a proposal appears after a few labels per class and Enter
accepts it, N marks not sure, S skips; the labels are in project.json, the Data step's scan shows them as
classes and a model trains on them. The grid labels many images with one key press."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.helpers import write_digits_folder
from tl_desktop.core.errors import DataError
from tl_desktop.core.fsutil import read_json
from tl_desktop.core.project import project_file as proj

CLASSES = ["zero", "one", "two"]


def truth(path: str) -> int:
    """The oracle: the digit is the first character of the file name (0_003.png)."""
    return int(Path(path).name[0])


@pytest.fixture
def unsorted(tmp_path) -> Path:
    """30 real digit images (10 each of 0, 1, 2), 32 px, all in one folder: nobody has sorted them yet."""
    sorted_dir = write_digits_folder(tmp_path / "sorted", classes=(0, 1, 2), per_class=10, size=32)
    flat = tmp_path / "unsorted"
    flat.mkdir()
    for file in sorted(sorted_dir.rglob("*.png")):
        shutil.copy(file, flat / file.name)
    return flat


@pytest.fixture
def steps(qtbot, tmp_path, unsorted):
    """The Data and Label steps of one session, labelling set up as the Data step's "Start labelling" does."""
    from tl_desktop.ui.data.view import DataView
    from tl_desktop.ui.label.start import begin
    from tl_desktop.ui.label.view import LabelView
    from tl_desktop.ui.session import Session

    session = Session()
    data, view = DataView(session), LabelView(session)
    for widget in (data, view):
        qtbot.addWidget(widget)
        widget.resize(1100, 700)
    data.show()
    project = session.create(tmp_path / "project", "Labelling")
    project.settings.image_size = 32  # small features: fast
    begin(session, "images", unsorted, CLASSES)
    qtbot.waitUntil(lambda: session.report is not None and len(session.report.unlabelled) == 30, timeout=30_000)
    data.hide()
    view.show()
    view.picture.canvas.setFocus()
    qtbot.waitUntil(lambda: view.current is not None and view.picture.shown is not None, timeout=30_000)
    yield session, data, view
    view.shutdown()
    data.shutdown()
    from tl_desktop.workers import Worker

    qtbot.waitUntil(lambda: not any(w.is_running() for w in Worker.live), timeout=30_000)  # their ends delivered


def press(qtbot, view, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    target = view.grid.view if view.grid_button.isChecked() else view.picture.canvas
    qtbot.keyClick(target, key, modifier)


def answer(qtbot, view) -> str:
    """Press the right class key for the image on screen; returns its path."""
    path = view.current
    press(qtbot, view, str(truth(path) + 1))
    return path


def idle(qtbot, view) -> None:
    """Wait for the probe and the order workers (the user would keep labelling meanwhile)."""
    qtbot.waitUntil(lambda: not any(w is not None and w.is_running()
                                    for w in (view.fit_worker, view.order_worker)), timeout=30_000)


def test_label_with_keys_undo_accept_not_sure_skip_then_reopen_and_train(steps, qtbot, tmp_path):
    session, data, view = steps
    labels = session.project.labels
    first = [answer(qtbot, view) for _ in range(3)]
    assert {p: labels.assigned[p] for p in first} == {p: CLASSES[truth(p)] for p in first}

    press(qtbot, view, "z", Qt.KeyboardModifier.ControlModifier)
    press(qtbot, view, Qt.Key.Key_Backspace)  # two steps back
    assert list(labels.assigned) == first[:1] and view.current == first[1]
    assert view.panel.class_buttons[0].text().startswith("1") and "zero" in view.panel.class_buttons[0].text()

    qtbot.waitUntil(lambda: view.loop.vectors is not None, timeout=60_000)  # the features, in a worker
    for _ in range(15):  # until the probe proposes a label for the image on screen
        idle(qtbot, view)
        if view.loop.suggestion(view.current) is not None:
            break
        answer(qtbot, view)
    proposal = view.loop.suggestion(view.current)
    assert proposal is not None, "no proposal after 15 labels"
    assert view.panel.proposal.text().startswith(f"Proposed: {proposal[0]}") and "%" in view.panel.proposal.text()
    assert view.panel.estimate.text().startswith("Estimated accuracy")
    accepted = view.current
    press(qtbot, view, Qt.Key.Key_Return)
    assert labels.assigned[accepted] == proposal[0]

    unsure = view.current
    press(qtbot, view, "n")
    assert unsure in labels.not_sure and unsure not in labels.assigned
    skipped = view.current
    press(qtbot, view, "s")
    assert view.current != skipped and labels.state_of(skipped) == ("open", None)

    # the next image is decoded ahead: a key press puts it on screen at once
    following = next(p for p in view.loop.queue(3) if p != view.current)
    qtbot.waitUntil(lambda: view.picture.preloader.get(view.abspath(following)) is not None, timeout=10_000)
    start = time.perf_counter()
    answer(qtbot, view)
    elapsed = time.perf_counter() - start
    assert view.picture.shown == view.abspath(following) and view.current == following
    assert elapsed < 0.1, f"{1000 * elapsed:.0f} ms to show the next image"

    while view.current is not None:  # label the rest (the skipped image comes back last)
        answer(qtbot, view)
    view.flush()
    assert view.panel.progress_text.text().count("<b>0</b> to go") == 1

    stored = proj.load(session.project.folder).labels
    assert stored.assigned == labels.assigned and stored.not_sure == [unsure] and stored.classes == CLASSES

    view.hide()
    data.show()  # the Data step scans again with the labels: they are its classes now
    qtbot.waitUntil(lambda: session.report is not None and session.report.classes == sorted(CLASSES)
                    and len(session.report.samples) == 29, timeout=30_000)
    qtbot.waitUntil(lambda: data.split_worker is None or not data.split_worker.is_running(), timeout=30_000)

    from tl_desktop.core.training.run import train

    project = proj.load(session.project.folder)
    s = project.settings
    s.epochs, s.strategy, s.image_size, s.batch_size, s.augmentation, s.device = 1, "linear-probe", 32, 16, "none", "cpu"
    run_dir = project.new_run_dir("labelled")
    train(project.train_config(run_dir))
    assert sorted(read_json(run_dir / "manifest.json")["classes"]) == sorted(CLASSES)


def test_grid_labels_the_selected_images_with_one_key_and_undoes_them_together(steps, qtbot, tmp_path):
    session, _data, view = steps
    labels = session.project.labels
    press(qtbot, view, "g")
    assert view.grid_button.isChecked() and view.stack.currentWidget() is view.grid
    assert "image shown" not in view.page_hint.text() and "saved in the project" in view.page_hint.text()
    qtbot.waitUntil(lambda: len(view.grid.paths) == 20, timeout=10_000)
    ones = [p for p in view.grid.paths if truth(p) == 1][:5]
    assert len(ones) >= 2
    press(qtbot, view, "2")  # nothing selected: nothing labelled
    assert not labels.assigned
    view.grid.select(ones)
    press(qtbot, view, "2")
    assert labels.assigned == dict.fromkeys(ones, "one")
    assert not set(ones) & set(view.grid.paths)  # the grid moved on to open images
    press(qtbot, view, "z", Qt.KeyboardModifier.ControlModifier)  # one step: the whole group back
    assert not labels.assigned
    view.grid.select(ones)
    press(qtbot, view, "2")
    twos = [p for p in view.grid.paths if truth(p) == 2][:3]
    view.grid.select(twos)
    press(qtbot, view, "3")
    assert labels.assigned == {**dict.fromkeys(ones, "one"), **dict.fromkeys(twos, "two")}
    out = tmp_path / "labels.csv"
    with qtbot.waitSignal(view.session.message, timeout=30_000):
        view.export_csv(str(out))
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[0] == "path,label" and len(rows) == 1 + len(ones) + len(twos)
    assert {r.split(",")[0].rsplit("/", 1)[-1]: r.split(",")[1] for r in rows[1:]} == {
        Path(p).name: ("one" if truth(p) == 1 else "two") for p in ones + twos}
    qtbot.waitUntil(lambda: not view.export_worker.is_running(), timeout=10_000)
    idle(qtbot, view)


def test_start_dialog_names_the_classes_with_one_line_errors(qtbot, unsorted):
    from tl_desktop.ui.label.start import StartDialog

    dialog = StartDialog(unsorted, "folder", [])
    qtbot.addWidget(dialog)
    editor = dialog.editor
    assert dialog.every.isChecked() and dialog.layout_choice() == "images" and str(unsorted) in dialog.where.text()
    for name in ("normal", "normal", "effusion"):
        editor.name.setText(name)
        editor.add()
    assert editor.labels.classes == ["normal", "effusion"]
    editor.name.setText("normal")
    editor.add()
    assert "already" in editor.problem.text() and "\n" not in editor.problem.text()
    editor.list.setCurrentRow(1)
    editor.name.setText("pleural effusion")
    editor.rename()
    assert editor.labels.classes == ["normal", "pleural effusion"] and not editor.problem.text()
    editor.list.setCurrentRow(0)
    editor.remove()
    assert not editor.check() and "at least 2" in editor.problem.text()
    with pytest.raises(DataError):
        editor.labels.add_class("")
