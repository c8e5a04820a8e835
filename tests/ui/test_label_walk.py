"""What a first-time user met in the Label step, walked in a real X window at 1366x768 (issue 17):

- typing a class name and pressing Enter also pressed "Start labelling": the dialog closed after the second name;
- the window could not be shorter than 803 px once the Data step showed its labelling line, so at 1366x768 the
  status bar (where "Saved 35 labels to …" appears) and the Label step's bottom bar were off the screen;
- "Reset window" stayed on screen for PNG images, which have no window; nothing said how to change the window,
  and at 1024 px wide the window line cut the file's caption;
- the Data step counted the "not sure" images as still to label, one more than the Label step said.
"""

from __future__ import annotations

from types import SimpleNamespace

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from tests.helpers import dicom_copy


def test_enter_in_the_class_name_adds_the_class_and_keeps_the_dialog_open(qtbot, tmp_path):
    from tl_desktop.ui.label.start import StartDialog

    dialog = StartDialog(tmp_path, "folder", [])
    qtbot.addWidget(dialog)
    dialog.show()
    for name in ("zero", "one", "two"):
        dialog.editor.name.setFocus()
        qtbot.keyClicks(dialog.editor.name, name)
        qtbot.keyClick(dialog.editor.name, Qt.Key.Key_Return)
        assert dialog.isVisible() and dialog.result() == 0, f"Enter after '{name}' closed the dialog"
    assert dialog.editor.labels.classes == ["zero", "one", "two"]
    assert not dialog.editor.problem.text() and not dialog.editor.name.text()
    qtbot.keyClick(dialog.editor.name, Qt.Key.Key_Enter)  # the field empty: Enter is the dialog's (Start)
    assert dialog.result() == QDialog.DialogCode.Accepted


def test_the_window_fits_a_1366x768_screen_with_the_labelling_line_shown(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("TL_DESKTOP_HOME", str(tmp_path / "home"))
    from tl_desktop.ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.session.create(tmp_path / "project", "Walk")
    data = window.views["data"]
    data.label_entry.show_scan(None)  # "No labels yet? … label them in the app" with its button
    window.show_step("data")
    window.show()
    assert data.label_entry.isVisible()
    assert window.minimumSizeHint().height() <= 768 - 30  # a title bar or panel still fits
    window.resize(1366, 738)
    qtbot.waitUntil(lambda: window.height() == 738)
    assert window.statusBar().isVisible() and window.statusBar().geometry().bottom() < window.height()


def test_reset_window_only_for_images_with_a_window_and_the_drag_is_named(qtbot, tmp_path):
    from PIL import Image

    from tl_desktop.ui.label.picture import LabelPicture

    dcm = str(dicom_copy("CT_small.dcm", tmp_path / "ct.dcm"))
    png = tmp_path / "plain.png"
    Image.new("L", (32, 32), 128).save(png)
    picture = LabelPicture()
    qtbot.addWidget(picture)
    picture.resize(600, 500)
    picture.show()
    picture.show_path(dcm, "chest/xray_01.dcm  ·  2,048 × 2,048 px")
    qtbot.waitUntil(lambda: picture.shown == dcm, timeout=10_000)
    assert "right-drag" in picture.window_text.text() and picture.reset.isHidden()
    picture.canvas.window_dragged.emit(20.0, -10.0)  # what a right-drag on the picture sends
    assert picture.window is not None and picture.reset.isVisible()
    picture.resize(520, 500)  # the picture's width in a 1024 px wide window: nothing of the lines is cut
    qtbot.waitUntil(lambda: picture.width() == 520)
    for text in (picture.window_text, picture.caption):
        assert text.width() >= text.sizeHint().width(), f"'{text.text()}' is cut"
    picture.show_path(str(png))
    qtbot.waitUntil(lambda: picture.shown == str(png), timeout=10_000)
    assert picture.reset.isHidden() and picture.window_text.isHidden()
    assert picture.window is not None  # kept for the next DICOM
    picture.show_path(dcm)
    assert picture.shown == dcm and picture.reset.isVisible()
    picture.shutdown()


def test_the_data_step_counts_not_sure_images_apart_as_the_label_step_does(qtbot, tmp_path):
    from tl_desktop.core.data.labels import Labels
    from tl_desktop.ui.label.start import LabelEntry
    from tl_desktop.ui.session import Session

    session = Session()
    session.create(tmp_path / "project", "Walk")
    session.project.labels = Labels("images", ["zero", "one"], {"a.png": "zero"}, ["b.png"])
    entry = LabelEntry(session)
    qtbot.addWidget(entry)
    report = SimpleNamespace(unlabelled=[SimpleNamespace(path=p) for p in ("b.png", "c.png", "d.png")])
    entry.show_scan(report)
    assert entry.text.text() == "Labelling in the app: 1 labelled, 2 still to label, 1 not sure."



def test_reopened_project_says_the_model_is_learning_not_label_more(qtbot):
    """Reopened with 35 labels, the first refit takes a moment: the panel must not ask for 2 labels per class."""
    import numpy as np

    from tl_desktop.core.data.labels import Labels
    from tl_desktop.core.insight.active import LabellingLoop
    from tl_desktop.ui.label.view import LabelView
    from tl_desktop.ui.session import Session

    paths = [f"scan_{i:03d}.png" for i in range(8)]
    view = LabelView(Session())
    qtbot.addWidget(view)
    labels = Labels("images", ["zero", "one"], {p: ("zero", "one")[i % 2] for i, p in enumerate(paths[:4])})
    view.loop = LabellingLoop(paths, labels, order="sequential")
    view.current = paths[5]
    view._refresh_panel()
    assert "reading the images" in view.panel.proposal.text()
    view.loop.vectors = np.zeros((len(paths), 4), dtype=np.float32)  # features read; no fit delivered yet
    view._refresh_panel()
    assert "learning from your labels" in view.panel.proposal.text()
    labels.assigned = {paths[0]: "zero", paths[1]: "one"}  # one label per class: too few
    view._refresh_panel()
    assert "label at least 2 images of two classes" in view.panel.proposal.text()
    view.loop = None
