# Runs in the frozen app before main.py - and in every multiprocessing worker it spawns (DataLoader workers on
# Windows/macOS), which never reach the GUI's own guard (tl_desktop.app.guard_std_streams).
#
# The windowed Windows executable (console=False) starts, like pythonw.exe, with sys.stdout and sys.stderr
# set to None: any print(), a library's progress bar or a logging.StreamHandler would raise
# AttributeError on the first write. Point them at the null device instead; the app's own log goes to the
# user log folder (tl_desktop.app.setup_logging) and the self-test also writes <log dir>/self-test.log.
# In the console executable (tl-desktop-cli) and from a terminal the streams exist and are left alone.
import os
import sys

for _name in ("stdout", "stderr"):
    if getattr(sys, _name) is None:
        setattr(sys, _name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - lives as long as the app
