# Runs in the frozen app before main.py.
#
# The windowed executable (console=False, on Windows and in the macOS .app) starts with sys.stdout and
# sys.stderr set to None: any print(), a library's progress bar or a logging.StreamHandler would raise
# AttributeError on the first write. Point them at the null device instead; the app's own log goes to the
# user log folder (tl_desktop.app.setup_logging) and the self-test also writes <log dir>/self-test.log.
# In the console executable (tl-desktop-cli) and from a terminal the streams exist and are left alone.
import os
import sys

for _name in ("stdout", "stderr"):
    if getattr(sys, _name) is None:
        setattr(sys, _name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - lives as long as the app
