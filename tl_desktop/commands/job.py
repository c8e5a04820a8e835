"""``tl-desktop job create|run|import``: train a project on a GPU server or cluster with torchrun."""

from __future__ import annotations

import argparse
import os

from tl_desktop.commands import UsageError


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="job_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="write a self-contained job folder from a project")
    create.add_argument("project", help="project folder (or its project.json)")
    create.add_argument("--out", required=True, help="new or empty folder for the job")
    create.add_argument("--gpus", type=int, default=1, help="processes (GPUs) per node for torchrun")
    create.add_argument("--nodes", type=int, default=1, help="number of nodes")
    create.add_argument("--epochs", type=int, help="override the project's epoch count")
    run = sub.add_parser("run", help="check the data against the job's manifest and train (run.sh calls this)")
    run.add_argument("job_dir")
    run.add_argument("--data", required=True, help="the images folder the job's file list is relative to")
    imp = sub.add_parser("import", help="bring a finished job's run back into its project")
    imp.add_argument("job_dir")
    imp.add_argument("--project", required=True, help="project folder (or its project.json)")


def run_job(args: argparse.Namespace) -> int:
    from tl_desktop.core.project import jobs

    if args.job_command == "create":
        if args.gpus < 1 or args.nodes < 1 or (args.epochs is not None and args.epochs < 1):
            raise UsageError("--gpus, --nodes and --epochs must be at least 1")
        out = jobs.create_job(args.project, args.out, gpus=args.gpus, nodes=args.nodes, epochs=args.epochs)
        print(jobs.summary(jobs.load_job(out)))
        print(f"written to {out}: copy it and the images to the server, then run: {out.name}/run.sh IMAGES")
        return 0
    if args.job_command == "run":
        from tl_desktop.commands.train import _run

        return _run(lambda cb, cancel: jobs.run_job(args.job_dir, args.data, cb, cancel), False)
    target = jobs.import_job(args.job_dir, args.project)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"imported as {target}")
    return 0
