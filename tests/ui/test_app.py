"""Start-up: the display check that replaces Qt's cryptic xcb abort, stream guards, logging."""

from __future__ import annotations

import subprocess
import sys

from tl_desktop import app


def test_no_problem_off_linux_or_with_platform_set():
    assert app.display_problem({}, "win32") is None
    assert app.display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None


def test_no_display_is_said_plainly():
    message = app.display_problem({}, "linux", can_load=lambda _lib: True)
    assert "no graphical display" in message and "--offscreen" in message


def test_missing_xcb_libraries_name_the_debian_packages():
    missing = {"libxcb-cursor.so.0", "libxkbcommon-x11.so.0"}
    message = app.display_problem({"DISPLAY": ":0"}, "linux", can_load=lambda lib: lib not in missing)
    assert "sudo apt-get install libxcb-cursor0 libxkbcommon-x11-0" in message
    assert "libxcb-icccm4" not in message


def test_all_libraries_present_or_wayland_only():
    assert app.display_problem({"DISPLAY": ":0"}, "linux", can_load=lambda _lib: True) is None
    assert app.display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux", can_load=lambda _lib: False) is None


def test_main_exits_3_with_the_message(monkeypatch, capsys):
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setattr(app, "display_problem", lambda: "tl-desktop cannot open its window: test")
    assert app.main(["tl-desktop"]) == app.EXIT_NO_DISPLAY
    assert "cannot open its window" in capsys.readouterr().err


def test_guard_std_streams(monkeypatch):
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)
    app.guard_std_streams()
    print("no crash")
    assert sys.stdout is not None and sys.stderr is not None


def test_logging_goes_to_the_user_log_dir(_isolated_home):
    root = app.logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        file = app.setup_logging()
        assert file.parent == _isolated_home / "log"
        app.log.info("hello from the test")
        for handler in root.handlers:
            handler.flush()
        assert "hello from the test" in file.read_text()
    finally:
        for handler in set(root.handlers) - set(before):
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


def test_window_opens_before_torch_is_imported(tmp_path):
    """A real process: the window is shown and torch is still not loaded."""
    env = {**__import__("os").environ, "TL_DESKTOP_STARTUP_PROBE": "1", "TL_DESKTOP_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "main.py", "--offscreen"], capture_output=True, text=True, env=env,
                         timeout=60, cwd=__import__("pathlib").Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert "window shown; torch loaded: False" in out.stdout
