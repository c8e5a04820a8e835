"""The layers hold: core never loads Qt, the GUI starts without torch, no import cycle, and the contracts bite.

``make test`` runs ``lint-imports`` over the contracts in pyproject.toml; the tests here check that those
contracts would fail on a violation (a copy of the package with one planted import), compute the import graph
themselves to find cycles, and import the real window modules to see what gets loaded.
"""

from __future__ import annotations

import json
import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QT = {"PySide6", "pyqtgraph", "PyQt5", "PyQt6", "shiboken6"}


def _loaded_after(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {name.split(".")[0] for name in json.loads(proc.stdout.strip().splitlines()[-1])}


def test_core_and_all_its_submodules_never_import_qt():
    code = (
        "import pkgutil, importlib, tl_desktop.core as core\n"
        "names = [i.name for i in pkgutil.walk_packages(core.__path__, 'tl_desktop.core.')]\n"
        "assert len(names) > 30, names\n"
        "for name in names:\n"
        "    importlib.import_module(name)"
    )
    assert not _loaded_after(code) & QT


def test_cli_scan_and_models_never_import_qt_or_torch():
    loaded = _loaded_after("import tl_desktop.commands.scan, tl_desktop.commands.models, tl_desktop.core.data.scan")
    assert not loaded & QT
    assert not loaded & {"torch", "onnxruntime", "timm"}  # scanning a folder must start instantly


def _gui_modules() -> list[str]:
    import tl_desktop.ui as ui

    return sorted(i.name for i in pkgutil.walk_packages(ui.__path__, "tl_desktop.ui.")) + ["tl_desktop.app"]


def test_every_gui_module_starts_without_torch_or_onnxruntime():
    modules = _gui_modules()
    assert "tl_desktop.ui.main_window" in modules and len(modules) > 25
    loaded = _loaded_after(f"import importlib\nfor m in {modules!r}:\n    importlib.import_module(m)")
    assert "PySide6" in loaded  # the widgets really were imported
    assert not loaded & {"torch", "onnxruntime", "timm"}


def _import_graph(package_dir: Path) -> dict[str, list[str]]:
    """Every module of the ``tl_desktop`` found in ``package_dir`` and what it imports (grimp, in a subprocess)."""
    code = ("import grimp, json\n"
            "g = grimp.build_graph('tl_desktop', cache_dir=None)\n"
            "print(json.dumps({m: sorted(g.find_modules_directly_imported_by(m)) for m in g.modules}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=package_dir, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(package_dir), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    graph = json.loads(proc.stdout)
    assert str(package_dir) in subprocess.run(
        [sys.executable, "-c", "import tl_desktop; print(tl_desktop.__file__)"], cwd=package_dir,
        capture_output=True, text=True, env={"PYTHONPATH": str(package_dir)}).stdout
    return graph


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_anywhere_in_tl_desktop():
    graph = _import_graph(REPO)
    assert len(graph) > 80 and "tl_desktop.core.training.fit" in graph
    assert _cycles(graph) == []


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """A copy of the package with a Qt import in core, an upward import in data and a two-module cycle."""
    root = tmp_path_factory.mktemp("planted")
    shutil.copytree(REPO / "tl_desktop", root / "tl_desktop", ignore=shutil.ignore_patterns("__pycache__"))
    events = root / "tl_desktop/core/events.py"
    events.write_text(events.read_text() + "\n\ndef _qt():\n    import PySide6  # noqa\n")
    scan = root / "tl_desktop/core/data/scan.py"
    scan.write_text(scan.read_text() + "\n\ndef _up():\n    from tl_desktop.core.insight import transfer  # noqa\n")
    decode = root / "tl_desktop/core/data/decode.py"
    decode.write_text(decode.read_text() + "\n\ndef _back():\n    from tl_desktop.core.data import scan  # noqa\n")
    return root


def test_a_planted_cycle_is_found(planted):
    cycles = _cycles(_import_graph(planted))
    assert any({"tl_desktop.core.data.scan", "tl_desktop.core.data.decode"} <= set(c) for c in cycles), cycles


def test_the_import_contracts_break_on_planted_violations(planted):
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    names = [c["name"] for c in config["contracts"]]
    assert len(names) >= 3
    lint = Path(sys.executable).with_name("lint-imports")
    shutil.copy(REPO / "pyproject.toml", planted / "pyproject.toml")
    proc = subprocess.run([str(lint), "--no-cache", "--config", str(planted / "pyproject.toml")], cwd=planted,
                          capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(planted),
                                                                          "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert "core never imports Qt or pyqtgraph BROKEN" in out
    assert "core subpackages are layered BROKEN" in out
    assert "tl_desktop.core.data.scan -> tl_desktop.core.insight.transfer" in out
    real = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert real.returncode == 0, real.stdout[-3000:]
