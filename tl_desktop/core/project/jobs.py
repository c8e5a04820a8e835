"""Job bundles: a project's training as a self-contained folder that runs on a GPU server with ``torchrun``.

``create_job`` writes ``job.json`` (the full training config, the stored split and a manifest of every file
with its SHA-256), ``run.sh`` (torchrun with the chosen GPU count) and ``slurm.sbatch`` (an example).
On the server ``run_job`` checks every image against the manifest before training, so a different or
changed data set is an error, never a silent retrain. ``import_job`` brings the finished run back into
the project, after checking it was trained on exactly the manifest's files.
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from tl_desktop import __version__
from tl_desktop.core import runs
from tl_desktop.core.errors import DamagedFileError, JobError
from tl_desktop.core.fsutil import atomic_write_json, atomic_write_text, read_json
from tl_desktop.core.runlock import LOCK_NAME

JOB_SCHEMA = 1
RUN_FOLDER = "run"


def create_job(project_path: str | Path, out: str | Path, *, gpus: int = 1, nodes: int = 1,
               epochs: int | None = None) -> Path:
    """Write a job bundle for the project's data, split and training settings.

    Raises:
        JobError: no data chosen, unusable data, or a non-empty output folder.
    """
    from tl_desktop.core.data.split import split_source
    from tl_desktop.core.errors import DataError
    from tl_desktop.core.project import project_file as projects

    project = projects.load(project_path)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise JobError(f"{out} is not empty; choose a new folder for the job")
    request = project.train_config(out / RUN_FOLDER)
    try:  # the project's review decisions applied, as the server's training applies them again
        report, reviewed = split_source(request)
    except DataError as exc:
        raise JobError(str(exc)) from exc
    split = reviewed.to_dict()
    files = [{"path": s.path, "label": s.label, "sha256": s.sha256, "subset": split["assignment"][s.path]}
             for s in report.samples if s.path in split["assignment"]]
    request = replace(request, csv=Path(request.csv).name if request.csv else None,
                      epochs=epochs or request.epochs, device="auto")
    if request.weights_file:  # an imported weights file travels inside the bundle, by relative name
        source = Path(request.weights_file)
        if not source.is_file():
            raise JobError(f"the project's weights file {source.name} is missing")
        (out / "weights").mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, out / "weights" / source.name)
        request = replace(request, weights_file=f"weights/{source.name}")
    config = {k: v for k, v in request.to_dict().items() if k not in ("data", "out", "split", "init_from")}
    job = {"schema": JOB_SCHEMA, "app_version": __version__, "project": project.name, "created": time.time(),
           "gpus": gpus, "nodes": nodes, "config": config, "split": split, "files": files,
           "manifest_sha256": runs.files_digest(files)}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "job.json", job)
    _write_scripts(out, gpus, nodes)
    return out


def _write_scripts(out: Path, gpus: int, nodes: int) -> None:
    run_sh = f"""#!/usr/bin/env bash
# Train this tl-desktop job with PyTorch's torchrun. Usage: ./run.sh /path/to/images
#   GPUS=4 ./run.sh DATA      processes per node (default {gpus}; CPU-only machines: processes on the CPU)
#   NNODES, TORCHRUN_ARGS     extra torchrun settings for several nodes (see slurm.sbatch)
set -euo pipefail
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
DATA="${{1:-${{TL_DATA:-}}}}"
[ -n "$DATA" ] || {{ echo "usage: $0 /path/to/images (the folder the job's file list is relative to)" >&2; exit 2; }}
PYTHON="${{PYTHON:-python3}}"
exec "$PYTHON" -m torch.distributed.run --nproc-per-node "${{GPUS:-{gpus}}}" --nnodes "${{NNODES:-{nodes}}}" \\
    ${{TORCHRUN_ARGS:-}} -m tl_desktop job run "$HERE" --data "$DATA"
"""
    sbatch = f"""#!/usr/bin/env bash
# Example Slurm submission for this job: adapt partition, time and the environment to your cluster.
#SBATCH --job-name=tl-desktop
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:{gpus}
#SBATCH --cpus-per-task={max(4, 4 * gpus)}
#SBATCH --time=04:00:00
set -euo pipefail
DATA=${{DATA:?export DATA=/path/to/images before sbatch}}
HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
srun python3 -m torch.distributed.run --nproc-per-node {gpus} --nnodes "$SLURM_NNODES" \\
    --rdzv-backend c10d --rdzv-endpoint "$HEAD:29500" --rdzv-id "$SLURM_JOB_ID" \\
    -m tl_desktop job run "$SLURM_SUBMIT_DIR" --data "$DATA"
"""
    atomic_write_text(out / "run.sh", run_sh)
    atomic_write_text(out / "slurm.sbatch", sbatch)
    for name in ("run.sh", "slurm.sbatch"):
        os.chmod(out / name, 0o755)


def load_job(job_dir: str | Path) -> dict[str, Any]:
    """The bundle's ``job.json``, checked: its schema, its keys' types and its manifest hash.

    Raises:
        JobError: no job.json, or a damaged, edited or foreign one (one line naming it).
    """
    path = Path(job_dir) / "job.json"
    if not path.is_file():
        raise JobError(f"{job_dir} is not a job bundle (no job.json)")
    try:
        job = read_json(path)
    except DamagedFileError as exc:
        raise JobError(str(exc)) from exc
    problem = _job_problem(job)
    if problem:
        raise JobError(f"{path} is damaged ({problem}); create the job again")
    if job.get("schema") != JOB_SCHEMA:
        raise JobError(f"job.json has schema {job.get('schema')}; this app reads schema {JOB_SCHEMA}")
    if runs.files_digest(job["files"]) != job["manifest_sha256"]:
        raise JobError("job.json was edited: its file list does not match its manifest hash")
    return job


def _job_problem(job: Any) -> str | None:
    """What is wrong with a job.json document's keys and types, or None."""
    if not isinstance(job, dict):
        return "not a JSON object"
    kinds = {"config": dict, "split": dict, "files": list, "manifest_sha256": str, "gpus": int, "nodes": int}
    wrong = next((k for k, t in kinds.items() if not isinstance(job.get(k), t)), None)
    if wrong:
        return f"'{wrong}' is missing or of the wrong type"
    keys = ("path", "label", "sha256", "subset")
    if not all(isinstance(f, dict) and all(isinstance(f.get(k), str) for k in keys) for f in job["files"]):
        return "an entry of 'files' lacks a path, label, sha256 or subset"
    return None


def _sha256(path: Path) -> str | None:
    from tl_desktop.core.data.decode import file_sha256

    try:
        return file_sha256(path)
    except OSError:
        return None


def verify_data(job: dict[str, Any], root: Path) -> list[str]:
    """Problems (missing or changed files) of the data folder against the job's manifest; [] when equal."""
    files = job["files"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        hashes = list(pool.map(lambda f: _sha256(root / f["path"]), files))
    problems = []
    for f, found in zip(files, hashes, strict=True):
        if found is None:
            problems.append(f"{f['path']}: missing")
        elif found != f["sha256"]:
            problems.append(f"{f['path']}: content differs from the job's manifest")
    return problems


def run_job(job_dir: str | Path, data: str | Path, callback=None, cancel=None):
    """Check the data against the manifest, then train into ``JOB_DIR/run`` (also under torchrun)."""
    from tl_desktop.core.config import TrainConfig
    from tl_desktop.core.training.run import train

    job_dir, root = Path(job_dir), Path(data)
    job = load_job(job_dir)
    if not root.is_dir():
        raise JobError(f"{root} is not a folder")
    if int(os.environ.get("RANK", "0")) == 0:
        problems = verify_data(job, root)
        if problems:
            raise JobError(f"{len(problems)} of {len(job['files'])} files do not match the job "
                           f"(first: {problems[0]}); copy the project's images unchanged")
    stored = TrainConfig.from_dict({**job["config"], "data": str(root), "out": str(job_dir / RUN_FOLDER)})
    config = replace(stored, csv=str(root / stored.csv) if stored.csv else None, split=job["split"],
                     weights_file=str(job_dir / stored.weights_file) if stored.weights_file else None)
    return train(config, callback, cancel)


def import_job(job_dir: str | Path, project_path: str | Path) -> Path:
    """Copy a finished job's run into the project's runs; returns the new run folder.

    Raises:
        JobError: the run is missing or unfinished, or was not trained on the job's exact files.
    """
    from tl_desktop.core.project import project_file as projects

    job_dir = Path(job_dir)
    job = load_job(job_dir)
    run = job_dir / RUN_FOLDER
    if runs.read_status(run)["state"] != "finished":
        raise JobError(f"the job's run has not finished (state: {runs.read_status(run)['state']})")
    manifest = runs.load_manifest(run)
    if runs.files_digest(manifest["files"]) != job["manifest_sha256"]:
        raise JobError("the run was trained on other files than the job's manifest lists; not imported")
    project = projects.load(project_path)
    source = project.source_path()
    if source is None:
        raise JobError("the project has no data folder to attach the run to")
    target = project.new_run_dir("server")
    partial = target.with_name(f".{target.name}.partial")  # a failed copy never looks like a run
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(run, partial, ignore=shutil.ignore_patterns(LOCK_NAME))
    manifest["root"] = str(source.parent if project.source.kind == "csv" else source)
    atomic_write_json(partial / "manifest.json", manifest)
    os.replace(partial, target)
    metrics = read_json(target / "metrics.json") if (target / "metrics.json").is_file() else {}
    config = runs.load_config(target)
    project.add_run(target, model=config.model, strategy=config.strategy,
                    best_epoch=metrics.get("best_epoch"),
                    metrics={k: metrics[k] for k in ("accuracy", "balanced_accuracy") if metrics.get(k) is not None})
    projects.save(project)
    return target


_PART_WORDS = {"train": "training", "val": "validation", "test": "test"}


def summary(job: dict[str, Any]) -> str:
    """The job in plain words (the window's server-job dialog and ``tl-desktop job`` print it)."""
    counts: dict[str, int] = {}
    for f in job["files"]:
        counts[f["subset"]] = counts.get(f["subset"], 0) + 1
    order = [k for k in _PART_WORDS if k in counts] + sorted(k for k in counts if k not in _PART_WORDS)
    parts = ", ".join(f"{counts[k]} {_PART_WORDS.get(k, k)}" for k in order)
    gpus = int(job["gpus"])
    return (f"Job for project '{job['project']}': {len(job['files'])} images ({parts}), model "
            f"{job['config']['model']}, {job['config']['epochs']} epochs, {gpus} GPU{'s' if gpus != 1 else ''} "
            f"per server. The server checks each image against the fingerprint taken here "
            f"({job['manifest_sha256'][:12]}) before it trains.")


__all__ = ["create_job", "load_job", "verify_data", "run_job", "import_job", "summary"]
