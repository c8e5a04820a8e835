"""torchrun on this CPU machine: 2 gloo processes train like one, and job bundles round-trip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tl_desktop.core import runs
from tl_desktop.core.training.run import TrainConfig, train

ARGS = ["--strategy", "linear-probe", "--epochs", "4", "--image-size", "32", "--batch-size", "16", "--seed", "5",
        "--lr", "0.02", "--patience", "0"]


def _run(cmd: list[str], env: dict, timeout: int) -> subprocess.CompletedProcess:
    """Like subprocess.run, but a timeout sends SIGTERM first: torchrun then stops its worker processes
    (which run in sessions of their own) instead of leaving them behind."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _torchrun(args: list[str], env_home: Path, extra_env: dict | None = None, timeout: int = 240):
    env = {**os.environ, "TL_DESKTOP_HOME": str(env_home), "OMP_NUM_THREADS": "1", **(extra_env or {})}
    return _run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
                 "-m", "tl_desktop", *args], env, timeout)


def test_two_gloo_processes_match_one_process(digits_dir, tmp_path, _isolated_home):
    single = train(TrainConfig(data=str(digits_dir), out=str(tmp_path / "one"), strategy="linear-probe", epochs=4,
                               image_size=32, batch_size=16, seed=5, lr=0.02, patience=0, workers=0))
    done = _torchrun(["train", str(digits_dir), "--out", str(tmp_path / "two"), *ARGS], _isolated_home)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("test: accuracy") == 1  # rank 0 alone reports
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert abs(two["accuracy"] - single.test_metrics["accuracy"]) <= 0.05
    assert len(runs.read_history(tmp_path / "two")) == 4
    assert runs.read_status(tmp_path / "two")["state"] == "finished"
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    h1, h2 = runs.read_history(tmp_path / "one"), runs.read_history(tmp_path / "two")
    assert h2[-1]["val_loss"] == pytest.approx(h1[-1]["val_loss"], abs=1e-3)  # same global batches, same steps


@pytest.fixture()
def project_with_data(digits_dir, tmp_path):
    from tl_desktop.core.project import project_file as projects

    project = projects.create(tmp_path / "proj", name="Digits")
    project.set_source(digits_dir)
    project.settings.epochs = 3
    project.settings.image_size = 32
    project.settings.batch_size = 16
    project.settings.strategy = "linear-probe"
    projects.save(project)
    return project


def test_job_bundle_round_trip_with_two_processes(project_with_data, digits_dir, tmp_path, _isolated_home):
    from tl_desktop.cli import main
    from tl_desktop.core.export.onnx_export import export_onnx
    from tl_desktop.core.project import project_file as projects

    job = tmp_path / "job"
    assert main(["job", "create", str(project_with_data.folder), "--out", str(job), "--gpus", "2"]) == 0
    assert {"job.json", "run.sh", "slurm.sbatch"} <= {p.name for p in job.iterdir()}
    assert "--nproc-per-node \"${GPUS:-2}\"" in (job / "run.sh").read_text()
    server_data = shutil.copytree(digits_dir, tmp_path / "server-images")
    env = {**os.environ, "PYTHON": sys.executable, "TL_DESKTOP_HOME": str(_isolated_home), "OMP_NUM_THREADS": "1",
           "TORCHRUN_ARGS": "--standalone"}
    done = _run(["bash", str(job / "run.sh"), str(server_data)], env, 240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert runs.read_status(job / "run")["state"] == "finished"
    assert main(["job", "import", str(job), "--project", str(project_with_data.folder)]) == 0
    project = projects.load(project_with_data.folder)
    assert len(project.runs) == 1 and project.runs[0].metrics["accuracy"] > 0.5
    imported = project.run_path(project.runs[0])
    assert Path(runs.read_json(imported / "manifest.json")["root"]) == Path(digits_dir)
    result = export_onnx(imported, tmp_path / "server.onnx")  # verification reads the local images
    assert result is not None and (tmp_path / "server.onnx").is_file()
    # one content hash of the training files: the job's, the server run's, the imported run's and the ONNX file's
    job_hash = json.loads((job / "job.json").read_text())["manifest_sha256"]
    assert job_hash == runs.manifest_hash(job / "run") == runs.manifest_hash(imported)
    assert result.verification and job_hash in (tmp_path / "server.onnx").read_bytes().decode("latin-1")


def test_job_refuses_changed_data(project_with_data, digits_dir, tmp_path, _isolated_home):
    from tl_desktop.cli import main

    job = tmp_path / "job"
    assert main(["job", "create", str(project_with_data.folder), "--out", str(job)]) == 0
    server_data = shutil.copytree(digits_dir, tmp_path / "server-images")
    victim = sorted((server_data / "digit_1").iterdir())[3]
    victim.write_bytes(sorted((server_data / "digit_2").iterdir())[0].read_bytes())
    env = {**os.environ, "TL_DESKTOP_HOME": str(_isolated_home)}
    done = subprocess.run([sys.executable, "-m", "tl_desktop", "job", "run", str(job), "--data", str(server_data)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert "do not match the job" in done.stderr and victim.name in done.stderr
    assert not (job / "run").exists()
    assert main(["job", "import", str(job), "--project", str(project_with_data.folder)]) == 2


def test_two_processes_fine_tune_images_through_ddp(digits_dir, tmp_path, _isolated_home):
    """The network path: each rank loads its slice of every global batch; validation is gathered."""
    done = _torchrun(["train", str(digits_dir), "--out", str(tmp_path / "ft"), "--strategy", "fine-tune",
                      "--epochs", "2", "--image-size", "32", "--batch-size", "16", "--patience", "0", "--json"],
                     _isolated_home)
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    started = next(e for e in events if e["event"] == "FitStarted")
    files = json.loads((tmp_path / "ft" / "manifest.json").read_text())["files"]
    n_train, n_test = (sum(f["subset"] == s for f in files) for s in ("train", "test"))
    assert started["steps_per_epoch"] == n_train // 16 and started["batch_size"] == 16  # global batches
    assert [e["epoch"] for e in events if e["event"] == "EpochEnded"] == [1, 2]
    history = runs.read_history(tmp_path / "ft")
    assert len(history) == 2 and all(0 <= row["val_acc"] <= 1 for row in history)
    metrics = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert metrics["n"] == n_test and sum(map(sum, metrics["confusion_matrix"])) == n_test


def test_shards_cover_each_global_batch_and_never_leave_a_rank_empty(monkeypatch):
    import torch

    from tl_desktop.core.training import distributed

    order = torch.randperm(65, generator=torch.Generator().manual_seed(0))
    per_rank = []
    for rank in (0, 1):
        monkeypatch.setattr(distributed, "current", lambda r=rank: distributed.Dist(r, 2, r))
        per_rank.append(distributed.shard(order, 32, drop_last=False))
    assert [len(p) for p in per_rank[0]] == [16, 16] and [len(p) for p in per_rank[1]] == [16, 16]
    for step in range(2):  # rank 0 then rank 1 is exactly the global batch a single process would take
        assert torch.equal(torch.cat([per_rank[0][step], per_rank[1][step]]), order[step * 32:(step + 1) * 32])
