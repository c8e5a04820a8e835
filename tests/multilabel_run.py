"""One tiny real multi-label run (digits composed into one image: a 0 on the left, a 7 on the right), trained
by the engine once per test session and shared by the multi-label tests of evaluation, export and the window."""

from __future__ import annotations

from pathlib import Path

TINY = dict(strategy="linear-probe", epochs=3, lr=2e-2, image_size=32, batch_size=16, seed=3, patience=0, workers=0,
            group_by="csv")


def findings_csv(tmp_path_factory) -> Path:
    """The session's multi-label CSV (``helpers.write_findings_csv``: 80 images, 40 patients)."""
    from tests.helpers import write_findings_csv

    root = tmp_path_factory.getbasetemp() / "findings-shared"
    csv = root / "findings.csv"
    if not csv.is_file():
        write_findings_csv(root, n=80)
    return csv


def trained_run(tmp_path_factory) -> Path:
    """The multi-label run (linear probe, 32 px, 3 epochs: a few seconds on a CPU), trained once."""
    from tl_desktop.core.training.run import TrainConfig, train

    csv = findings_csv(tmp_path_factory)
    run = csv.parent / "run"
    if not (run / "metrics.json").is_file():
        train(TrainConfig(data=str(csv), out=str(run), **TINY))
    return run
