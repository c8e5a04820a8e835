"""Render the "Did transfer help?" window to PNG, offscreen, after a real (small) check, model comparison and
label-budget curve on the sample digits, clicked through as a user would.

    python scripts/transfer_screenshot.py docs/screenshots

Separate from ``screenshots.py`` (the whole app flow) so that these pictures can be remade in a minute or two.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SIZE = (1280, 820)
BUDGET = 3


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "docs/screenshots").absolute()
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="tl-screens-"))
    os.environ["TL_DESKTOP_HOME"] = str(home)  # never the user's own projects or settings

    from screenshots import grab, wait_until

    from tl_desktop.app import create_application
    from tl_desktop.core.project import project_file as proj
    from tl_desktop.sample import build_sample_project
    from tl_desktop.ui.transfer.window import TransferWindow

    app = create_application([sys.argv[0]])
    folder = build_sample_project(home / "projects" / "sample-digits", size=32, per_class=30)
    project = proj.load(folder)
    project.settings.device, project.settings.batch_size = "cpu", 32
    window = TransferWindow(project)
    window.resize(*SIZE)
    window.show()
    window.budget.setValue(BUDGET)
    ended: list[str] = []
    window.task_ended.connect(lambda kind, outcome: ended.append(outcome))
    for button, tab, name in ((window.budget_button, 2, "transfer-3-labels"),
                              (window.compare_button, 1, "transfer-2-models"),
                              (window.start_button, 0, "transfer-1-check")):
        ended.clear()
        button.click()
        wait_until(lambda: bool(ended), 900, name)
        if ended != ["finished"]:
            raise RuntimeError(f"screenshots: {name} ended {ended[0]}: {window.status.text()}")
        window.tabs.setCurrentIndex(tab)
        grab(window, out, name)
    window.close()
    app.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
