"""Entry point of the desktop app (and of the frozen build): ``python main.py`` opens the window;
``python main.py <subcommand> ...`` runs the command line instead."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    if len(sys.argv) > 1 and not sys.argv[1].startswith("--offscreen"):
        from tl_desktop.cli import main as cli_main

        sys.exit(cli_main(sys.argv[1:]))
    from tl_desktop.app import main

    sys.exit(main())
