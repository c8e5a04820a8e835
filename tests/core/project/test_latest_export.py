"""``latest_verified_export``: the model Predict starts from is the project's newest file that passed its
verification under today's limits, never a variant, a file outside the limits or one without figures."""

from __future__ import annotations

import json
import os

from tl_desktop.core.export.verify import TOLERANCES
from tl_desktop.core.project import project_file as proj


def _export(folder, name: str, mtime: float, *, diff: float = 0.0, precision: str = "fp32",
            figures: bool = True):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"onnx")
    if figures:
        report = path.with_name(f"{path.stem}.verification.json")
        report.write_text(json.dumps({"precision": precision, "max_abs_diff": diff, "top1_agreement": 1.0}))
    os.utime(path, (mtime, mtime))
    return path


def test_the_newest_verified_full_precision_export_with_its_run(tmp_path):
    project = proj.create(tmp_path / "p", "P")
    exports = project.folder / proj.EXPORTS_FOLDER
    assert proj.latest_verified_export(project) is None
    old = _export(exports, "p-run1.onnx", 1_000)
    project.add_run(project.runs_dir / "run1", onnx=str(old))
    assert proj.latest_verified_export(project) == (old, project.runs[0])
    # newer, but: outside today's fp32 limit / a variant / no figures / a damaged figures file
    _export(exports, "p-run2.onnx", 2_000, diff=10 * TOLERANCES["fp32"]["max_abs_diff"])
    _export(exports, "p-run1.int8.onnx", 3_000, precision="int8")
    _export(exports, "p-run3.onnx", 4_000, figures=False)
    _export(exports, "p-run4.onnx", 5_000).with_name("p-run4.verification.json").write_text("{ broken")
    assert proj.latest_verified_export(project) == (old, project.runs[0])
    elsewhere = _export(tmp_path / "shared", "model.onnx", 6_000)  # recorded by a run, outside the project
    project.add_run(project.runs_dir / "run5", onnx=str(elsewhere))
    assert proj.latest_verified_export(project) == (elsewhere, project.runs[1])
    cli = _export(exports, "from-the-cli.onnx", 7_000)  # in the exports folder, no run recorded
    assert proj.latest_verified_export(project) == (cli, None)
    elsewhere.unlink()
    cli.unlink()
    assert proj.latest_verified_export(project) == (old, project.runs[0])
