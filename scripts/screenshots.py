"""Render every step of the app to PNG, offscreen, with real content: the sample project is built, scanned,
split, trained, evaluated, exported and used for prediction, exactly as a user would click through it.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py docs/screenshots [--dark]

At 1366 x 768, a common laptop screen. ``--dark`` renders the dark theme, into ``NAME-dark.png`` files.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SIZE = (1366, 768)
SUFFIX = ""  # "-dark" with --dark


def wait_until(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Run the event loop until ``predicate()`` holds (a script helper; the app itself never waits)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop, deadline = QEventLoop(), time.monotonic() + seconds
    timer = QTimer(interval=50)

    def check() -> None:
        if predicate() or time.monotonic() > deadline:
            loop.quit()

    timer.timeout.connect(check)
    timer.start()
    loop.exec()
    timer.stop()
    if not predicate():
        raise TimeoutError(f"screenshots: {what} did not happen within {seconds:.0f} s")


def settle(ms: int = 600) -> None:
    """Let thumbnails load and plots redraw before grabbing."""
    deadline = time.monotonic() + ms / 1000
    wait_until(lambda: time.monotonic() > deadline, ms / 1000 + 1, "settling")


def grab(window, out: Path, name: str) -> Path:
    settle()
    path = out / f"{name}{SUFFIX}.png"
    window.grab().save(str(path))
    print(f"wrote {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    global SUFFIX
    argv = sys.argv[1:] if argv is None else argv
    dark = "--dark" in argv
    argv = [a for a in argv if a != "--dark"]
    SUFFIX = "-dark" if dark else ""
    out = Path(argv[0] if argv else "docs/screenshots").absolute()
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="tl-screens-"))
    os.environ["TL_DESKTOP_HOME"] = str(home)  # never the user's own projects or settings

    from tl_desktop.app import create_application
    from tl_desktop.sample import build_sample_project
    from tl_desktop.ui.main_window import MainWindow

    app = create_application([sys.argv[0]])
    from tl_desktop.ui.theme import apply_theme

    apply_theme("dark" if dark else "light")
    window = MainWindow(warm_up=False)
    window.resize(*SIZE)
    window.show()
    grab(window, out, "0-start")

    folder = build_sample_project(home / "projects" / "sample-digits", size=64, per_class=60)
    window.open_path(str(folder))
    wait_until(lambda: window.session.split is not None, 120, "scan and split")
    grab(window, out, "1-data")
    window.show_step("model")
    grab(window, out, "2-model")

    _train(window)
    window.show_step("train")
    grab(window, out, "3-train")
    evaluate = window.views["evaluate"]
    window.show_step("evaluate")
    wait_until(lambda: evaluate.metrics is not None and evaluate.clinical is not None, 300, "evaluation")
    grab(window, out, "4-evaluate")
    _evaluate_tabs(window, out)

    export = window.views["export"]
    window.show_step("export")
    export.out.setText(str(home / "exports" / "digits.onnx"))
    export.button.click()
    wait_until(lambda: export.result is not None, 300, "export")
    grab(window, out, "5-export")

    predict = window.views["predict"]
    window.show_step("predict")
    predict.model_path.setText(str(export.result.path))
    predict.predict([str(folder / "images" / "digit_7"), str(folder / "images" / "digit_1")])
    wait_until(lambda: predict.results.rowCount() > 0, 120, "prediction")
    unsure = next((i for i, p in enumerate(predict.results.rows) if p.label == "not sure"), 0)
    predict.table.selectRow(unsure)
    predict.table.clicked.emit(predict.results.index(unsure, 0))  # its heatmap, from the project's run
    wait_until(lambda: predict.heatmaps.current() is not None, 120, "predict heatmap")
    grab(window, out, "6-predict")
    _server_job(window, out, home)
    _help_and_settings(window, out)
    _label(window, out, folder / "images", home)
    window.close()
    app.quit()
    return 0


def _evaluate_tabs(window, out: Path) -> None:
    """The threshold and curves, calibration and "not sure", and a mistake with its heatmap."""
    evaluate = window.views["evaluate"]
    evaluate.tabs.setCurrentWidget(evaluate.threshold)
    if evaluate.threshold.positive.findData("") >= 0:  # more than two classes: no class until one is chosen
        evaluate.threshold.positive.setCurrentIndex(evaluate.threshold.positive.count() - 1)
    evaluate.threshold.youden.click()
    grab(window, out, "4b-evaluate-threshold")
    evaluate.tabs.setCurrentWidget(evaluate.calibration)
    evaluate.calibration.enabled.setChecked(True)
    evaluate.calibration.value.setValue(0.8)
    evaluate.threshold.export_button.click()  # the export (and Predict) then say "not sure" below 0.8
    wait_until(lambda: "0.8000" in evaluate.threshold.stored.text(), 60, "storing the decision")
    grab(window, out, "4c-evaluate-calibration")
    mistakes = evaluate.clinical.images(None, mistakes_only=True)
    if mistakes:
        evaluate.show_cell(mistakes[0].true, mistakes[0].predicted, thresholded=False)
    else:
        evaluate.show_cell(evaluate.clinical.names[0], evaluate.clinical.names[0], thresholded=False)
    grid = evaluate.images.gallery
    grid.view.setCurrentIndex(grid.model.index(0))
    wait_until(lambda: evaluate.images.heatmap.current() is not None, 120, "heatmap")
    grab(window, out, "4d-evaluate-heatmaps")
    evaluate.tabs.setCurrentIndex(0)


def _server_job(window, out: Path, home: Path) -> None:
    window.show_step("train")
    dialog = window.views["train"].server.create_job()
    dialog.gpus.setValue(4)
    dialog.out.setText(str(home / "jobs" / "digits-on-the-gpu-server"))
    dialog.resize(760, 520)
    done: list[str] = []
    dialog.created.connect(done.append)
    dialog.create_button.click()
    wait_until(lambda: bool(done), 120, "server job")
    grab(dialog, out, "7-server-job")
    dialog.close()


def _help_and_settings(window, out: Path) -> None:
    from tl_desktop.ui.glossary import show_glossary
    from tl_desktop.ui.preferences import open_settings

    glossary = show_glossary("sensitivity", window)
    glossary.resize(900, 600)
    settle()
    grab(glossary, out, "8-glossary")
    glossary.close()
    dialog = open_settings(window)
    settle()
    grab(dialog, out, "9-settings")
    dialog.close()


def _label(window, out: Path, images: Path, home: Path) -> None:
    """A new project on 30 unsorted digits (0, 1, 2 in one folder), labelled in the app: six labels given with
    the keys, then one image and the grid."""
    import shutil

    from PySide6.QtTest import QTest

    from tl_desktop.ui.label.start import begin

    flat = home / "unsorted digits"
    flat.mkdir()
    for digit in (0, 1, 2):
        for file in sorted((images / f"digit_{digit}").glob("*.png"))[:10]:
            shutil.copy(file, flat / file.name)
    window.session.create(home / "projects" / "Labelling digits", "Labelling digits")
    begin(window.session, "images", flat, ["zero", "one", "two"])
    window.show_step("label")
    view = window.views["label"]
    wait_until(lambda: view.current is not None and view.picture.shown is not None, 60, "labelling")
    for _ in range(6):
        QTest.keyClick(view.picture.canvas, str(int(Path(view.current).name[0]) + 1))
        settle(200)
    wait_until(lambda: view.loop.vectors is not None, 120, "labelling features")
    settle()
    grab(window, out, "label-1-image")
    view.grid_button.setChecked(True)
    settle()
    grab(window, out, "label-2-grid")
    view.grid_button.setChecked(False)
    view.shutdown()


def _train(window) -> None:
    settings = window.session.project.settings
    settings.epochs, settings.strategy, settings.image_size = 8, "linear-probe", 64
    settings.augmentation, settings.device = "none", "cpu"
    train = window.views["train"]
    train.form.load(settings)
    window.show_step("train")
    ended: list[bool] = []
    train.run_ended.connect(lambda: ended.append(True))
    train.start_button.click()
    wait_until(lambda: bool(ended), 600, "training")


if __name__ == "__main__":
    sys.exit(main())
