"""Train on a server: write a job bundle of the project (``jobs.create_job``) and bring a finished server run
back into the project (``jobs.import_job``), both in workers. The dialog says where the bundle went and the
exact commands to run on the server."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.ui.session import Session
from tl_desktop.ui.widgets.common import hint
from tl_desktop.ui.widgets.errors import task_failed
from tl_desktop.workers import Worker, tasks


def server_commands(folder: str, data_hint: str, gpus: int, nodes: int) -> str:
    """What to type on the server, for the job written to ``folder`` (copied there under the same name)."""
    job = shlex.quote(Path(folder).name)
    data = shlex.quote(data_hint)
    lines = [
        f"1. Copy this job folder ({Path(folder).name}) and the images, unchanged, to the server.",
        "2. On the server, with tl-desktop installed (pip install tl-desktop, or this app's Python), start the "
        "training:",
        f"     cd {job}",
        f"     ./run.sh {data}",
        f"   (run.sh starts one training process per GPU with PyTorch's launcher, torchrun: "
        f"python3 -m torch.distributed.run --nproc-per-node {gpus} --nnodes {nodes} "
        f"-m tl_desktop job run . --data {data})",
        "   On a shared cluster whose jobs wait in a queue (Slurm), submit it to the queue instead:",
        f"     cd {job} && DATA={data} sbatch slurm.sbatch",
        "3. Before training starts, every image is checked to be exactly the one listed here, by its digital "
        "fingerprint (SHA-256): a changed or missing image stops the job.",
        "4. Copy the folder back and choose File ▸ Import server run… (or the button in step 3).",
    ]
    return "\n".join(lines)


class ServerJobDialog(QDialog):
    """GPUs per node, nodes, epochs and an output folder; writes the bundle in a worker."""

    created = Signal(str)  # the job folder

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.worker: Worker | None = None
        self.result: dict[str, Any] | None = None
        self.setWindowTitle("Train on a server")
        project = session.project
        self.gpus = QSpinBox(minimum=1, maximum=64, value=1, toolTip="Graphics cards (GPUs) to use on each server: one training process per card")
        self.nodes = QSpinBox(minimum=1, maximum=256, value=1, toolTip="How many servers (nodes) train together on this job")
        self.epochs = QSpinBox(minimum=1, maximum=500, value=project.settings.epochs if project else 10,
                               toolTip="Epochs to train on the server (the project's other settings are kept)")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        default = project.folder / "jobs" / f"job-{stamp}" if project else Path.home() / f"tl-job-{stamp}"
        self.out = QLineEdit(str(default), toolTip="A new or empty folder for the job bundle")
        browse = QPushButton("Choose…", toolTip="Choose the folder for the job")
        browse.clicked.connect(self._browse)
        self.text = QPlainTextEdit(readOnly=True, objectName="jobText",
                                   toolTip="Where the job went and what to run on the server")
        self.text.setMinimumSize(640, 200)
        self.text.setPlaceholderText("The commands to run on the server appear here once the job is written.")
        self.buttons = QDialogButtonBox()
        self.create_button = self.buttons.addButton("Write job", QDialogButtonBox.ButtonRole.AcceptRole)
        self.create_button.setToolTip("Write the job folder: the list of images with their fingerprints, the split, "
                                      "the settings and the start scripts (run.sh, slurm.sbatch)")
        self.copy_button = self.buttons.addButton("Copy commands", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.setToolTip("Copy the commands to the clipboard")
        self.copy_button.setEnabled(False)
        close = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.setToolTip("Close this window")
        self.create_button.clicked.connect(self.create)
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.text.toPlainText()))
        close.clicked.connect(self.reject)
        self._arrange(browse)

    def _arrange(self, browse: QPushButton) -> None:
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.out, 1)
        folder_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("GPUs per server:", self.gpus)
        form.addRow("Servers (nodes):", self.nodes)
        form.addRow("Epochs:", self.epochs)
        form.addRow("Job folder:", folder_row)
        box = QVBoxLayout(self)
        box.addWidget(hint("The job folder holds everything the server needs except the images: the list of "
                           "image files, each with a digital fingerprint (SHA-256) so the server can check it has "
                           "exactly the same images; the split; the settings; and a start script (run.sh, which "
                           "uses PyTorch's launcher, torchrun), plus one for clusters with a job queue "
                           "(slurm.sbatch, for Slurm). The finished run comes back with “Import server run…”."))
        box.addLayout(form)
        box.addWidget(self.text, 1)
        box.addWidget(self.buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the job", str(Path(self.out.text()).parent))
        if folder:
            self.out.setText(folder)

    def create(self) -> None:
        project = self.session.project
        if project is None or (self.worker is not None and self.worker.is_running()):
            return
        self.session.save()  # the job is made from project.json on disk
        self.worker = Worker(tasks.create_job_task, str(project.folder), self.out.text(), gpus=self.gpus.value(),
                             nodes=self.nodes.value(), epochs=self.epochs.value(), name="job")
        self.worker.finished.connect(self._on_created)
        self.worker.errored.connect(lambda failure: task_failed(self, "job", failure))
        self.worker.ended.connect(lambda: self.create_button.setEnabled(True))
        self.create_button.setEnabled(False)
        self.text.setPlainText("Writing the job (taking the fingerprint of every image)…")
        self.worker.start()

    def _on_created(self, result: dict[str, Any]) -> None:
        self.result = result
        source = self.session.project.source_path() if self.session.project else None
        data = f"/path/on/server/{source.name}" if source else "/path/to/images"
        self.text.setPlainText(f"Job written to {result['folder']}\n{result['summary']}\n\n"
                               + server_commands(result["folder"], data, self.gpus.value(), self.nodes.value()))
        self.copy_button.setEnabled(True)
        self.session.message.emit(f"Server job written to {result['folder']}")
        self.created.emit(result["folder"])

    def done(self, code: int) -> None:  # noqa: D401 - Qt API: closing never leaves the worker running
        if self.worker is not None and self.worker.is_running():
            self.worker.stop()
            self.worker.wait()
        super().done(code)


class ServerJobs(QObject):
    """The two actions, shared by the File menu and the Train step."""

    imported = Signal(str)  # the new run folder in the project

    def __init__(self, session: Session, parent: QWidget) -> None:
        super().__init__(parent)
        self.session = session
        self.parent_widget = parent
        self.dialog: ServerJobDialog | None = None
        self.worker: Worker | None = None

    def create_job(self) -> ServerJobDialog | None:
        if self.session.project is None:
            return None
        self.dialog = ServerJobDialog(self.session, self.parent_widget)
        self.dialog.open()
        return self.dialog

    def choose_job(self) -> None:
        if self.session.project is None:
            return
        folder = QFileDialog.getExistingDirectory(self.parent_widget, "The finished job folder (with job.json)",
                                                  str(self.session.project.folder / "jobs"))
        if folder:
            self.import_job(folder)

    def import_job(self, job_dir: str) -> None:
        project = self.session.project
        if project is None or (self.worker is not None and self.worker.is_running()):
            return
        self.session.save()  # import_job adds the run to project.json on disk
        self.worker = Worker(tasks.import_job_task, job_dir, str(project.folder), name="job")
        self.worker.finished.connect(self._on_imported)
        self.worker.errored.connect(lambda failure: task_failed(self.parent_widget, "job", failure))
        self.session.message.emit(f"Importing the server run from {job_dir}…")
        self.worker.start()

    def _on_imported(self, run_dir: str) -> None:
        self.session.reload_runs()
        self.session.select_run(run_dir)
        self.session.message.emit(f"Imported the server run as {Path(run_dir).name}")
        self.imported.emit(run_dir)

    def shutdown(self) -> None:
        for worker in (self.worker, self.dialog.worker if self.dialog else None):
            if worker is not None and worker.is_running():
                worker.stop()
                worker.wait()
