"""Subcommands of the ``tl-desktop`` CLI; each command NAME has ``add_NAME_arguments(parser)`` and
``run_NAME(args) -> int`` in its module (see ``tl_desktop.cli.COMMANDS``); raise ``UsageError`` for
unusable input.

Commands call ``tl_desktop.core`` only, never the GUI.
"""


class UsageError(Exception):
    """Unusable input or options: the CLI prints it as one line and exits with code 2."""
