"""Train on a server from the GUI: the job dialog writes the bundle and shows the commands; a finished job
(trained here in-process with ``jobs.run_job``, as ``run.sh`` would on the server) is imported and behaves
like a local run: history plot, evaluation, a verified export."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from tl_desktop.core.project import jobs
from tl_desktop.core.project import project_file as proj
from tl_desktop.ui.main_window import MainWindow


@pytest.fixture
def window(qtbot, tmp_path, digits_dir):
    project = proj.create(tmp_path / "p", "Digits")
    project.set_source(digits_dir)
    s = project.settings
    s.epochs, s.strategy, s.image_size, s.batch_size, s.augmentation = 1, "linear-probe", 32, 16, "none"
    proj.save(project)
    win = MainWindow(warm_up=False)
    qtbot.addWidget(win)
    win.show()
    win.open_path(str(project.folder))
    qtbot.waitUntil(lambda: win.session.split is not None, timeout=30_000)
    yield win
    win.close()


def test_job_dialog_writes_the_bundle_and_shows_the_commands(window, qtbot, tmp_path):
    assert window.server_action.isEnabled()
    dialog = window.views["train"].server.create_job()
    qtbot.addWidget(dialog)
    dialog.gpus.setValue(4)
    dialog.nodes.setValue(2)
    dialog.epochs.setValue(3)
    dialog.out.setText(str(tmp_path / "job"))
    with qtbot.waitSignal(dialog.created, timeout=30_000):
        dialog.create_button.click()
    text = dialog.text.toPlainText()
    assert str(tmp_path / "job") in text and "./run.sh" in text and "sbatch slurm.sbatch" in text
    assert "--nproc-per-node 4 --nnodes 2" in text
    job = jobs.load_job(tmp_path / "job")
    assert (job["gpus"], job["nodes"], job["config"]["epochs"]) == (4, 2, 3)
    assert job["split"]["assignment"] == window.session.split.to_dict()["assignment"]  # the project's split
    assert 'GPUS:-4' in (tmp_path / "job" / "run.sh").read_text()
    # the summary in words: images per part, GPUs per server, what the fingerprint is for
    counts = {part: sum(f["subset"] == part for f in job["files"]) for part in ("train", "val", "test")}
    assert (f"{len(job['files'])} images ({counts['train']} training, {counts['val']} validation, "
            f"{counts['test']} test)") in text
    assert "4 GPUs per server" in text and "checks each image against the fingerprint" in text
    assert "manifest" not in text.split("./run.sh")[0]
    dialog.close()


def test_a_job_that_fails_to_write_gives_a_readable_dialog(window, qtbot, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file.txt").write_text("x")
    dialog = window.views["train"].server.create_job()
    qtbot.addWidget(dialog)
    dialog.out.setText(str(tmp_path / "busy"))
    dialog.create_button.click()
    qtbot.waitUntil(lambda: bool(dialog.findChildren(QMessageBox, "errorDialog")), timeout=5000)
    assert "not empty" in dialog.findChildren(QMessageBox, "errorDialog")[-1].text()
    dialog.close()


def test_imported_server_run_works_like_a_local_one(window, qtbot, tmp_path, digits_dir):
    job_dir = jobs.create_job(window.session.project.folder, tmp_path / "job", gpus=2, epochs=1)
    jobs.run_job(job_dir, digits_dir)  # what run.sh does on the server, here in-process on the CPU
    window.session.project.settings.epochs = 4  # an unsaved change must survive the import
    train = window.views["train"]
    train.server.import_job(str(job_dir))
    qtbot.waitUntil(lambda: len(window.session.project.runs) == 1, timeout=30_000)
    assert window.session.project.settings.epochs == 4
    assert train.history.count() == 1 and "server" in train.history.item(0).data(0x0100)
    assert train.history.currentRow() == 0
    assert train.plots.point_count() > 0  # the history plot of the server run

    evaluate = window.views["evaluate"]
    window.show_step("evaluate")
    qtbot.waitUntil(lambda: evaluate.metrics is not None and evaluate.clinical is not None, timeout=60_000)
    assert evaluate.table.rowCount() == 3 and evaluate.figures["accuracy"].text().endswith("%")

    export = window.views["export"]
    window.show_step("export")
    export.out.setText(str(tmp_path / "server.onnx"))
    export.button.click()
    qtbot.waitUntil(lambda: export.result is not None, timeout=120_000)
    assert export.result.verification["passed"] and Path(tmp_path / "server.onnx").is_file()
    assert proj.load(window.session.project.folder).runs[0].onnx == str(tmp_path / "server.onnx")
