"""The image viewer (issue 16, item 4): a large view of one file with zoom, pan, DICOM window/level and the
file's plain facts, opened by double-clicking a thumbnail; never a patient tag on screen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QApplication, QComboBox, QLabel, QWidget

from tests.helpers import _photo, dicom_copy
from tl_desktop.core.data.grey_levels import load_grey_levels, window_to_uint8
from tl_desktop.core.evaluation.stored_result import ImageResult
from tl_desktop.sample import write_radiographs
from tl_desktop.ui.widgets.image_viewer import DRAG_STEPS, NO_WINDOW, ImageViewer, KnownFacts, open_viewer

HEADER_WINDOW = (1800.0, 1200.0)


@pytest.fixture
def radiograph(tmp_path) -> Path:
    """A synthetic 12-bit DX radiograph (256 px) with a VOI window in its header."""
    path = write_radiographs(tmp_path / "dx", per_class=1, side=256)[0]
    ds = pydicom.dcmread(path)
    ds.WindowCenter, ds.WindowWidth = HEADER_WINDOW
    ds.save_as(path)
    return path


def _open(qtbot, path, known: KnownFacts | None = None) -> ImageViewer:
    viewer = ImageViewer(str(path), known or KnownFacts())
    qtbot.addWidget(viewer)
    viewer.show()
    with qtbot.waitSignal(viewer.worker.ended, timeout=30_000):
        pass
    if viewer.grey is not None:
        qtbot.waitUntil(lambda: viewer.shown is not None and not viewer._render_timer.isActive())
    return viewer


def _displayed(viewer: ImageViewer) -> np.ndarray:
    """The grey pixels of the pixmap on the canvas."""
    image = viewer.canvas.item.pixmap().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    rows = [np.frombuffer(image.constScanLine(y), np.uint8, image.width()) for y in range(image.height())]
    return np.stack(rows)


def _drag(viewer: ImageViewer, dx: int, dy: int, button=Qt.MouseButton.RightButton,
          modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    port = viewer.canvas.viewport()
    start, end = QPointF(port.width() / 2, port.height() / 2), QPointF(port.width() / 2 + dx, port.height() / 2 + dy)
    for kind, at, buttons in ((QEvent.Type.MouseButtonPress, start, button), (QEvent.Type.MouseMove, end, button),
                              (QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)):
        event = QMouseEvent(kind, at, port.mapToGlobal(at), button if kind != QEvent.Type.MouseMove
                            else Qt.MouseButton.NoButton, buttons, modifiers)
        QApplication.sendEvent(port, event)


def _all_text(root: QWidget) -> str:
    """Every text the dialog shows or offers: labels, buttons, combo items, spin boxes, tooltips, titles."""
    parts = [root.windowTitle()]
    for widget in [root, *root.findChildren(QWidget)]:
        parts += [widget.toolTip(), widget.windowTitle(), getattr(widget, "title", lambda: "")()]
        if isinstance(widget, QLabel | QAbstractButton):
            parts.append(widget.text())
        if isinstance(widget, QComboBox):
            parts += [widget.itemText(i) for i in range(widget.count())] + [widget.placeholderText()]
        if isinstance(widget, QAbstractSpinBox):
            parts.append(widget.text())
    return "\n".join(parts)


def test_a_16_bit_dicom_is_windowed_from_its_own_values_and_a_drag_changes_the_window(qtbot, radiograph):
    viewer = _open(qtbot, radiograph, KnownFacts("normal", "val", "PatientID#0123456789abcdef"))
    values = load_grey_levels(radiograph).values
    assert viewer.window_group.isEnabled()
    assert viewer.window == HEADER_WINDOW  # the file's own window first
    assert np.array_equal(_displayed(viewer), window_to_uint8(values, *HEADER_WINDOW))
    presets = [viewer.presets.itemText(i) for i in range(viewer.presets.count())]
    assert presets[0].startswith("From the file") and any(p.startswith("Full range") for p in presets)
    assert not any(p.startswith(("Lung", "Bone", "Soft tissue")) for p in presets)  # DX values are not HU
    before = _displayed(viewer)

    _drag(viewer, 60, -30)  # right: wider; up: lower centre
    qtbot.waitUntil(lambda: not viewer._render_timer.isActive())
    step = viewer.span / DRAG_STEPS
    centre, width = viewer.window
    assert centre == pytest.approx(HEADER_WINDOW[0] - 30 * step) and width == pytest.approx(HEADER_WINDOW[1] + 60 * step)
    after = _displayed(viewer)
    assert not np.array_equal(after, before)
    assert np.array_equal(after, window_to_uint8(values, centre, width))
    assert viewer.presets.currentIndex() == -1 and viewer.presets.placeholderText() == "Custom"
    assert viewer.centre_spin.value() == pytest.approx(round(centre)) and viewer.width_spin.value() == pytest.approx(round(width))

    _drag(viewer, -40, 0, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier)  # Ctrl + left drag
    qtbot.waitUntil(lambda: not viewer._render_timer.isActive())
    assert viewer.window[1] == pytest.approx(width - 40 * step)

    viewer.presets.setCurrentIndex(0)
    viewer.presets.activated.emit(0)  # the file's own window again
    qtbot.waitUntil(lambda: not viewer._render_timer.isActive())
    assert viewer.window == HEADER_WINDOW and np.array_equal(_displayed(viewer), before)
    _drag(viewer, 100, 100)
    viewer.reset_button.click()
    qtbot.waitUntil(lambda: not viewer._render_timer.isActive())
    assert viewer.window == HEADER_WINDOW and np.array_equal(_displayed(viewer), before)

    shown = _all_text(viewer)
    for fact in ("normal_0000.dcm", "256 × 256 pixels", "12 bits per pixel", "DICOM, modality DX", "validation",
                 "PatientID#0123456789abcdef", "MONOCHROME2"):
        assert fact in shown, fact
    assert load_grey_levels(radiograph).facts.sha256[:16] in shown


def test_zoom_buttons_fit_and_show_one_pixel_per_screen_pixel(qtbot, radiograph):
    viewer = _open(qtbot, radiograph)
    viewer.resize(1200, 900)
    qtbot.waitUntil(lambda: viewer.canvas.zoom() > 1.5)  # fitted: a 256 px image fills the larger window
    viewer.canvas.actual_size()
    assert viewer.canvas.zoom() == pytest.approx(1.0) and viewer.zoom_label.text() == "100 %"
    viewer.canvas.zoom_by(2)
    assert viewer.canvas.zoom() == pytest.approx(2.0) and not viewer.canvas.fitted
    viewer.canvas.fit()
    assert viewer.canvas.fitted and viewer.canvas.zoom() > 1.5


def test_ct_values_in_hounsfield_units_get_the_ct_presets(qtbot, tmp_path):
    ct = dicom_copy("CT_small.dcm", tmp_path / "ct.dcm")
    viewer = _open(qtbot, ct)
    presets = [viewer.presets.itemText(i) for i in range(viewer.presets.count())]
    assert [p.split(" (")[0] for p in presets] == ["Full range", "Lung", "Soft tissue", "Bone"]
    assert "HU" in presets[1] and viewer.grey.facts.units == "HU"
    viewer.presets.setCurrentIndex(1)
    viewer.presets.activated.emit(1)
    assert viewer.window == (-600.0, 1500.0)


def test_an_8_bit_png_is_shown_as_stored_with_window_level_disabled(qtbot, tmp_path):
    path = tmp_path / "camera.png"
    _photo("camera", side=120).save(path)
    viewer = _open(qtbot, path)
    assert not viewer.window_group.isEnabled() and viewer.window_group.toolTip() == NO_WINDOW
    assert viewer.window_hint.text() == NO_WINDOW  # the reason is on screen, not only in a tooltip
    expected = np.asarray(_photo("camera", side=120).convert("L"))
    assert np.array_equal(_displayed(viewer), expected)
    _drag(viewer, 80, 80)
    assert viewer.window is None and np.array_equal(_displayed(viewer), expected)
    assert "8 bits per channel" in _all_text(viewer) and "PNG" in _all_text(viewer)


def test_no_patient_tag_is_ever_shown(qtbot, tmp_path):
    secrets = {"PatientName": "Doeinsky^Janette", "PatientID": "PX-938172", "PatientBirthDate": "19610423",
               "InstitutionName": "Saint Elsewhere Clinic", "AccessionNumber": "ACC7781234"}
    path = dicom_copy("MR_small.dcm", tmp_path / "mr.dcm", **secrets)
    viewer = _open(qtbot, path)
    assert viewer.grey is not None and viewer.window == (600.0, 1600.0)
    viewer.canvas.hovered.emit(10, 12)  # the value under the mouse is shown too
    shown = _all_text(viewer)
    assert "Under the mouse: column 10, row 12" in shown and "mr.dcm" in shown  # the walk reads the labels
    for value in [*secrets.values(), "Doeinsky", "Janette"]:
        assert value not in shown, value


@pytest.mark.parametrize(("content", "reason"), [
    (b"this is not an image", "not an image (unrecognised or corrupt file)"),
    (b"", "empty file (0 bytes)"),
])
def test_a_broken_file_shows_its_one_line_reason(qtbot, tmp_path, content, reason):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    viewer = _open(qtbot, path)
    assert viewer.grey is None and viewer.stack.currentWidget() is viewer.message
    assert viewer.message.text() == f"This file cannot be shown: {reason}"


def test_a_multi_frame_dicom_is_refused_with_the_decoders_reason(qtbot, tmp_path):
    path = dicom_copy("rtdose.dcm", tmp_path / "dose.dcm")
    viewer = _open(qtbot, path)
    assert "multi-frame DICOM" in viewer.message.text() and "\n" not in viewer.message.text()


def _viewers(widget: QWidget) -> list[ImageViewer]:
    return widget.window().findChildren(ImageViewer)


def _wait_closed(qtbot, viewers: list[ImageViewer]) -> None:
    for viewer in viewers:
        with qtbot.waitSignal(viewer.worker.ended, timeout=30_000, raising=False):
            pass
        viewer.close()


def test_double_click_in_the_data_step_opens_the_viewer_with_the_scan_facts(qtbot, tmp_path):
    from tl_desktop.ui.data.view import DataView
    from tl_desktop.ui.session import Session

    write_radiographs(tmp_path / "images", per_class=4, side=64)
    session = Session()
    data = DataView(session)
    qtbot.addWidget(data)
    data.resize(1000, 700)
    data.show()
    session.create(tmp_path / "p", "Viewer")
    data.set_source(tmp_path / "images", "folder")
    qtbot.waitUntil(lambda: session.split is not None, timeout=30_000)
    view = data.grid.view
    index = data.grid.model.index(0)
    qtbot.waitUntil(lambda: view.visualRect(index).isValid())
    tile = data.grid.model.tile(0)
    centre = view.visualRect(index).center()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=centre)  # a real double-click's first press
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    viewers = _viewers(data)
    assert len(viewers) == 1 and viewers[0].path == tile.path
    sample = next(s for s in session.report.samples if tile.path.endswith(Path(s.path).name))
    assert viewers[0].known.label == sample.label
    assert viewers[0].known.split == session.split.assignment[sample.path]
    _wait_closed(qtbot, viewers)
    data.shutdown()


def test_evaluate_and_predict_open_the_viewer_on_double_click(qtbot, tmp_path, radiograph):
    from tl_desktop.ui.evaluate.images import ImagesPane

    pane = ImagesPane()
    qtbot.addWidget(pane)
    pane.set_run(None, radiograph.parent.parent, ["normal", "opacity"])
    rel = radiograph.relative_to(radiograph.parent.parent).as_posix()
    pane.show_images([ImageResult(rel, "normal", "opacity", {"normal": 0.2, "opacity": 0.8})], "")
    pane.gallery.activated_path.emit(str(radiograph))
    viewers = _viewers(pane)
    assert [v.known for v in viewers] == [KnownFacts("normal", "test", None, "opacity (80 %)")]
    _wait_closed(qtbot, viewers)
    pane.shutdown()

    from tl_desktop.ui.predict_view import PredictView
    from tl_desktop.ui.session import Session

    predict = PredictView(Session())
    qtbot.addWidget(predict)
    from tl_desktop.core.export.predictor import Prediction

    row = Prediction(path=str(radiograph), top=[("opacity", 0.8)], probabilities=[0.2, 0.8], decision="opacity")
    predict.results.set_rows([row])
    predict.table.doubleClicked.emit(predict.results.index(0, 1))
    viewers = _viewers(predict)
    assert [v.path for v in viewers] == [str(radiograph)]
    _wait_closed(qtbot, viewers)
    predict.shutdown()


def test_open_viewer_is_non_modal_and_deleted_when_closed(qtbot, radiograph):
    parent = QWidget()
    qtbot.addWidget(parent)
    viewer = open_viewer(parent, radiograph)
    assert not viewer.isModal() and viewer.parent() is parent
    assert viewer.testAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    _wait_closed(qtbot, [viewer])
    qtbot.waitUntil(lambda: not parent.findChildren(ImageViewer))
