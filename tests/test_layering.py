"""The headless core never loads Qt; the GUI's start-up modules never load torch or onnxruntime."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _loaded_after(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {name.split(".")[0] for name in json.loads(proc.stdout.strip().splitlines()[-1])}


def test_core_and_all_its_submodules_never_import_qt():
    code = (
        "import pkgutil, importlib, tl_desktop.core as core\n"
        "for info in pkgutil.walk_packages(core.__path__, 'tl_desktop.core.'):\n"
        "    importlib.import_module(info.name)"
    )
    loaded = _loaded_after(code)
    assert not loaded & {"PySide6", "pyqtgraph", "PyQt5", "PyQt6", "shiboken6"}


def test_cli_scan_and_models_never_import_qt():
    loaded = _loaded_after("import tl_desktop.commands.scan, tl_desktop.commands.models, tl_desktop.core.data")
    assert not loaded & {"PySide6", "pyqtgraph"}
    assert not loaded & {"torch", "onnxruntime", "timm"}  # scanning a folder must start instantly


@pytest.mark.parametrize("module", ["tl_desktop.ui", "tl_desktop.app"])
def test_gui_start_up_does_not_import_heavy_ml_libraries(module):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} does not exist yet")
    loaded = _loaded_after(f"import {module}")
    assert not loaded & {"torch", "onnxruntime"}, f"{module} imports torch/onnxruntime at module level"
