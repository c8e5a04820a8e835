"""The Export step's chooser for images unlike the training images reaches the exported file's metadata, with
the core's own values (``model_checks.UNFAMILIAR_ACTIONS``, those ``export --unfamiliar`` takes)."""

from __future__ import annotations

import os

from tl_desktop.core.export.model_checks import UNFAMILIAR_ACTIONS


def _metadata(path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_the_choices_are_the_cores_actions():
    from tl_desktop.ui.export_view import UNFAMILIAR_CHOICES

    assert tuple(value for value, _, _ in UNFAMILIAR_CHOICES) == UNFAMILIAR_ACTIONS


def test_not_sure_chosen_in_the_window_is_what_the_exported_model_does(qtbot, finished_project, tmp_path):
    from tl_desktop.ui.export_view import ExportView
    from tl_desktop.ui.session import Session

    session = Session()
    view = ExportView(session)
    qtbot.addWidget(view)
    view.resize(1100, 700)
    view.show()
    session.open_path(finished_project)
    assert session.run_dir is not None and view.unfamiliar.currentData() == "flagged"  # the CLI's default too
    view.unfamiliar.setCurrentIndex(view.unfamiliar.findData("not sure"))
    view.out.setText(str(tmp_path / "out" / "digits.onnx"))
    with qtbot.waitSignal(view.worker.finished if view.worker else view.button.clicked, timeout=5_000):
        view.button.click()
    qtbot.waitUntil(lambda: view.result is not None, timeout=240_000)
    qtbot.waitUntil(lambda: not view.worker.is_running(), timeout=10_000)
    meta = _metadata(tmp_path / "out" / "digits.onnx")
    assert meta["unfamiliar_action"] == "not sure"
    assert view.result.verification["metadata"]["unfamiliar_action"] == "not sure"
    assert "Images unlike the training images: answer “not sure”." in view.where.text()
    if folder := os.environ.get("TL_SCREENSHOTS"):
        qtbot.wait(100)
        view.grab().save(os.path.join(folder, "export-unfamiliar.png"))
    view.shutdown()
