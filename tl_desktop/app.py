"""GUI bootstrap: platform check, logging, exception hook, QApplication, main window.

torch is never imported here or by anything this module imports at start-up: the window appears first and
the engine loads when the user first trains (or when the Train step asks which GPU there is).
"""

from __future__ import annotations

import ctypes
import io
import logging
import logging.handlers
import os
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from tl_desktop import __version__, paths

log = logging.getLogger("tl_desktop")

EXIT_NO_DISPLAY = 3

# Libraries Qt's xcb platform plugin (X11) needs beyond a bare X client, and the Debian/Ubuntu packages.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
}


def _can_load(library: str) -> bool:
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


def display_problem(
    env: Mapping[str, str] | None = None,
    platform: str | None = None,
    can_load: Callable[[str], bool] = _can_load,
) -> str | None:
    """Why the window cannot open on this Linux desktop, in plain words; None when it can (or not Linux).

    Qt aborts with a cryptic "could not load the Qt platform plugin xcb" when system libraries are missing;
    this check runs before QApplication exists, so the user gets the exact command to fix it.
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return None
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return (
            "tl-desktop cannot open its window: no graphical display was found (DISPLAY and WAYLAND_DISPLAY "
            "are not set). Start it from a desktop session, or over SSH with 'ssh -X'. To work without a "
            "screen, use the command line ('python main.py --help') or start with '--offscreen'."
        )
    if env.get("WAYLAND_DISPLAY") and not env.get("DISPLAY"):
        return None  # Qt uses its Wayland plugin; the xcb libraries are not needed
    missing = [pkg for lib, pkg in XCB_LIBRARIES.items() if not can_load(lib)]
    if not missing:
        return None
    return (
        "tl-desktop cannot open its window: this computer lacks system libraries that Qt needs to draw on "
        "an X11 desktop.\nInstall them (Debian/Ubuntu) with:\n\n"
        f"    sudo apt-get install {' '.join(missing)}\n\n"
        "and start again. Without administrator rights, ask IT to install them, or run without a window: "
        "'python main.py --offscreen' (for screenshots and tests) or the command line ('python main.py --help')."
    )


def guard_std_streams() -> None:
    """A frozen windowed app has no console: sys.stdout/stderr are None and any print would crash."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, io.StringIO())


def setup_logging(level: int = logging.INFO) -> Path:
    """Log to ``<log dir>/tl-desktop.log`` (rotated) and to stderr; returns the log file."""
    file = paths.log_dir() / "tl-desktop.log"
    root = logging.getLogger()
    if not any(getattr(h, "_tl_desktop", False) for h in root.handlers):
        handler = logging.handlers.RotatingFileHandler(file, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
        handler._tl_desktop = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.WARNING)
        console._tl_desktop = True  # type: ignore[attr-defined]
        root.addHandler(console)
    root.setLevel(level)
    return file


def _report_exception(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """Log an uncaught exception and show it in a dialog when the GUI is up; never raises."""
    details = "".join(traceback.format_exception(exc_type, exc, tb))
    log.error("uncaught exception\n%s", details)
    try:
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication

        if QApplication.instance() is None:
            return
        from tl_desktop.ui.widgets.errors import show_error

        what = str(exc).strip().splitlines()[0] if str(exc).strip() else exc_type.__name__
        QTimer.singleShot(0, lambda: show_error(
            None, "Something went wrong", what,
            "Your project is saved. If this keeps happening, send the log file to whoever supports you.",
            details))
    except Exception:  # noqa: BLE001 - the hook must never raise
        log.exception("could not show the error dialog")


def install_excepthook() -> None:
    sys.excepthook = _report_exception
    threading.excepthook = lambda args: _report_exception(args.exc_type, args.exc_value, args.exc_traceback)


def create_application(argv: list[str]):
    """The QApplication with the names QSettings uses and the user's theme (Qt 6 is high-DPI aware)."""
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtGui import QGuiApplication, QIcon
    from PySide6.QtWidgets import QApplication

    QCoreApplication.setOrganizationName("tl-desktop")
    QCoreApplication.setApplicationName("tl-desktop")
    QCoreApplication.setApplicationVersion(__version__)
    QGuiApplication.setDesktopFileName("tl-desktop")
    app = QApplication.instance() or QApplication(argv)
    app.setWindowIcon(QIcon(str(paths.resource("icons", "app.svg"))))
    style = paths.resource("style.qss")
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))
    apply_user_settings()
    return app


def apply_user_settings() -> None:
    """What the Settings dialog chose that acts before the window exists: the theme and the cache folder."""
    from tl_desktop.ui import settings
    from tl_desktop.ui.theme import apply_theme

    settings.apply_cache_folder(settings.cache_folder(), keep_environment=True)
    apply_theme(settings.theme())


def main(argv: list[str] | None = None) -> int:
    """Open the main window; returns the process exit code."""
    argv = list(sys.argv if argv is None else argv)
    guard_std_streams()
    if "--offscreen" in argv:
        argv.remove("--offscreen")
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    problem = display_problem()
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_NO_DISPLAY
    log_file = setup_logging()
    install_excepthook()
    log.info("tl-desktop %s starting (Python %s, %s)", __version__, sys.version.split()[0], sys.platform)
    app = create_application(argv)
    from tl_desktop.ui.main_window import MainWindow

    window = MainWindow(log_file=log_file)
    window.show()
    from tl_desktop.ui.tour import show_on_first_start

    question = window.first_start()  # asks where projects go, once; the tour follows the answer
    if question is None:
        show_on_first_start(window)
    else:
        question.finished.connect(lambda _result: show_on_first_start(window))
    if os.environ.get("TL_DESKTOP_STARTUP_PROBE"):
        _probe_and_quit(app)
    return int(app.exec())


def _probe_and_quit(app) -> None:
    """For bench/startup_time.py: report once the window has been shown, then quit."""
    from PySide6.QtCore import QTimer

    def report() -> None:
        print(f"window shown; torch loaded: {'torch' in sys.modules}", flush=True)
        app.quit()

    QTimer.singleShot(0, report)
