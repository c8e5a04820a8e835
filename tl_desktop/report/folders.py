"""Where the window's reports go: each in a new dated folder, never over an earlier report.

    parent = default_parent(run_dir)             # PROJECT/reports for a run of a project, else RUN_DIR/reports
    out = new_report_folder(parent, run_dir)     # PARENT/2026-12-02 1405 <run>, " (2)" for a second that minute
    write_report(run_dir, out)

``write_report`` itself writes into the folder it is given (the CLI's ``--out``); the dated folder is the
window's rule (``workers.tasks.report_task``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

RUN_REPORTS = "reports"  # RUN_DIR/reports for a run that belongs to no project


def default_parent(run_dir: Path | str) -> Path:
    """The folder that holds a run's reports by default: its project's ``reports/`` when the run lies in a
    project's ``runs/`` folder, else ``RUN_DIR/reports``."""
    from tl_desktop.core.project import project_file as proj

    run_dir = Path(run_dir).absolute()
    project = run_dir.parent.parent
    if run_dir.parent.name == proj.RUNS_FOLDER and (project / proj.PROJECT_FILE).is_file():
        return project / proj.REPORTS_FOLDER
    return run_dir / RUN_REPORTS


def new_report_folder(parent: Path | str, run_dir: Path | str, now: dt.datetime | None = None) -> Path:
    """A not yet existing folder ``PARENT/<YYYY-MM-DD HHMM> <run name>`` for one report; a second report in
    the same minute gets `` (2)``, then `` (3)``... (not created: ``write_report`` makes it when it succeeds)."""
    from tl_desktop.core.project.project_file import safe_folder_name

    stamp = (now or dt.datetime.now()).strftime("%Y-%m-%d %H%M")
    stem = f"{stamp} {safe_folder_name(Path(run_dir).absolute().name)}"
    candidate, n = Path(parent) / stem, 1
    while candidate.exists() or candidate.with_name(f".{candidate.name}.partial").exists():
        n += 1
        candidate = Path(parent) / f"{stem} ({n})"
    return candidate
