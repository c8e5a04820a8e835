"""Test-wide set-up: offscreen Qt, an isolated user home, and shared real-image data sets."""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt import
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from tests.helpers import write_digits_folder  # noqa: E402
from tl_desktop.paths import CACHE_DIR_ENV  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _session_home(tmp_path_factory):
    """The user folders of session- and module-scoped fixtures, which start before any test's own home: without
    it, their scans and caches went into the real user's ~/.cache/tl-desktop."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TL_DESKTOP_HOME", str(tmp_path_factory.mktemp("session-home")))
        yield


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own user data/cache/log/config folders: never the real user's. They go after the
    test (projects trained in the window live there), so the suite's disk use stays that of the tests running."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("TL_DESKTOP_HOME", str(home))
    os.environ.pop(CACHE_DIR_ENV, None)
    yield home
    os.environ.pop(CACHE_DIR_ENV, None)  # the Settings dialog sets it for the app's lifetime: not the next test's
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory):
    """Three digit classes, 30 real images each, 32 px PNGs in class folders (read-only for tests)."""
    return write_digits_folder(tmp_path_factory.mktemp("digits"), classes=(0, 1, 2), per_class=30, size=32)


@pytest.fixture(scope="session")
def findings_run(tmp_path_factory):
    """A tiny trained multi-label run (``tests/multilabel_run.py``), shared by the session's tests."""
    from tests.multilabel_run import trained_run

    return trained_run(tmp_path_factory)


@pytest.fixture(autouse=True)
def _no_dangling_qthreads(request):
    """A GUI test that leaves a worker thread (or thumbnail loads) running fails (after napari)."""
    yield
    import sys

    if "tl_desktop.workers.worker" not in sys.modules:
        return
    from tl_desktop.workers.worker import Worker

    running = [w.name for w in Worker.live if w.is_running()]
    for worker in list(Worker.live):
        worker.stop()
        worker.wait(30_000)
    Worker.live.clear()
    from PySide6.QtCore import QThreadPool

    QThreadPool.globalInstance().waitForDone(10_000)
    assert not running, f"worker threads still running at the end of the test: {running}"
