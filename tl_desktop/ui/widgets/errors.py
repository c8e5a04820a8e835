"""Readable error dialogs: what failed, what to do, technical details behind "Show Details..."."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

if TYPE_CHECKING:
    from tl_desktop.workers import Failure

log = logging.getLogger(__name__)

# Advice by task, shown under the one-line reason of the failure.
ADVICE = {
    "scan": "Check that the folder holds one sub-folder of images per class, or that the CSV has a file and a "
            "label column.",
    "split": "Check the group-by setting: a regular expression needs one group in brackets, e.g. (P\\d+)_.",
    "train": "Your project and earlier runs are unchanged. Try a smaller batch size or image size, or the CPU.",
    "evaluate": "Check that the run finished and that the images it was trained on are still in place.",
    "export": "The trained model is unchanged; you can try exporting again without FP16/INT8.",
    "predict": "Check that the file is an .onnx model exported by tl-desktop and that the images can be opened.",
    "report": "The run is unchanged. Check that it finished training and that its images are still in place.",
    "decision": "The run and its earlier export settings are unchanged; try again.",
    "job": "Your project is unchanged. Choose an empty folder for the job, or check the job folder you picked.",
}


def show_error(parent: QWidget | None, title: str, what: str, advice: str = "", details: str = "") -> QMessageBox:
    """Open a non-blocking error dialog and log it; returns the box (tests look at it)."""
    log.error("%s: %s\n%s", title, what, details)
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(f"<b>{title}</b><br>{_escape(what)}")
    box.setTextFormat(Qt.TextFormat.RichText)
    if advice:
        box.setInformativeText(advice)
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setObjectName("errorDialog")
    box.open()
    return box


def task_failed(parent: QWidget | None, task: str, failure: Failure) -> QMessageBox:
    """The dialog for a worker's ``errored`` signal: the failure's one line, advice for the task, the traceback."""
    titles = {"scan": "Scanning the images failed", "split": "Making the split failed",
              "train": "Training stopped with an error", "evaluate": "Evaluation failed",
              "export": "Export failed", "predict": "Prediction failed", "report": "Writing the report failed",
              "decision": "Storing the threshold failed", "job": "The server job failed"}
    from tl_desktop.core.errors import RunIntegrityError

    title = titles.get(task, f"{task} failed")
    error = failure.error
    if not isinstance(error, RunIntegrityError):
        return show_error(parent, title, failure.message, ADVICE.get(task, ""), failure.details)
    advice = INTEGRITY_ADVICE if error.problems else CHECKPOINT_ADVICE
    box = show_error(parent, title, failure.message, advice, failure.details)  # the line without CLI advice
    if error.problems:
        _offer_rescan(box, parent)
    return box


INTEGRITY_ADVICE = ("The run was trained and tested on other versions of these images, so its figures would not "
                    "describe the files as they are now. Put the original files back, or scan the images again "
                    "and train a new run.")
CHECKPOINT_ADVICE = "The trained model's file was changed after training, so it is not the model that was tested. " \
                    "Train the run again."


def _offer_rescan(box: QMessageBox, parent: QWidget | None) -> None:
    """A "Scan the images again" button that opens the Data step and starts its scan (in the main window)."""
    window = parent.window() if parent is not None else None
    views = getattr(window, "views", None)
    if not isinstance(views, dict) or not hasattr(views.get("data"), "scan") or not hasattr(window, "show_step"):
        return
    button = box.addButton("Scan the images again", QMessageBox.ButtonRole.ActionRole)
    button.clicked.connect(lambda: (window.show_step("data"), views["data"].scan()))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
