"""The ``tl-desktop`` command line: every subcommand drives the same core as the GUI.

Exit codes: 0 success, 1 internal error (one line on stderr, the traceback in the log file), 2 unusable input
or options, a damaged run or project file, a full, read-only or missing drive (one line naming the file and
what to do), 130 cancelled with Ctrl+C. No command prints a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tl_desktop import __version__
from tl_desktop.commands import UsageError

# name -> (module in tl_desktop.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("scan", "check a folder or CSV of labelled images and report every file"),
    "audit": ("audit", "near-duplicates across splits (leakage) and likely label errors in a data set"),
    "models": ("models", "list the pretrained backbones and whether they work offline"),
    "train": ("train", "train a model on a folder of labelled images"),
    "resume": ("train", "continue an interrupted or cancelled run"),
    "evaluate": ("train", "evaluate a run on its test split or on another data set"),
    "export": ("export", "export a run to a verified ONNX file"),
    "predict": ("predict", "classify images with an exported ONNX model"),
    "report": ("report", "write the PDF/HTML report and audit folder of a finished run"),
    "job": ("job", "train a project on a GPU server or cluster (torchrun job bundles)"),
    "transfer-check": ("transfer", "did transfer help? linear probe vs fine-tune vs scratch on one split"),
    "compare-models": ("transfer", "compare backbones on one split: accuracy with CI, time and size"),
    "label-budget": ("transfer", "test score versus images per class: would more labels pay off?"),
    "cache": ("cache", "show, limit or clear the prepared-image cache"),
    "labels": ("labelling", "a project's labels given in the app: counts, or a path,label CSV of them"),
    "simulate-labelling": ("labelling", "replay labelling with the labels hidden: accuracy per labels spent, "
                                        "uncertainty vs random order"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tl-desktop", description="Transfer learning on your own images, offline.")
    parser.add_argument("--version", action="version", version=f"tl-desktop {__version__}")
    parser.add_argument("--self-test", action="store_true", help="train, export and predict on a small sample; print PASS")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"tl_desktop.commands.{module_name}")
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        ident = name.replace("-", "_")
        getattr(module, f"add_{ident}_arguments")(cmd)
        cmd.set_defaults(_run=getattr(module, f"run_{ident}"))
    return parser


def _printable_streams() -> None:
    """A file name that is not valid UTF-8 prints with a replacement character instead of crashing the command."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")


def main(argv: list[str] | None = None) -> int:
    _printable_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.self_test:
        from tl_desktop.selftest import run_self_test

        return run_self_test()
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"tl-desktop {args.command}: cancelled", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure ends as one line (and a logged traceback)
        return _failed(args, exc)


def _failed(args: argparse.Namespace, exc: BaseException) -> int:
    """One line on stderr: exit 2 for unusable input (``UsageError``, a ``UserFacingError`` of the engine, a
    disk or permission error), else exit 1 with the traceback written to the log file."""
    import errno

    from tl_desktop.core.errors import user_line

    command = args.command
    if isinstance(exc, BrokenPipeError) or getattr(exc, "errno", None) == errno.EPIPE:
        return 1  # the output went to a pager or ``head`` that closed: nothing to say
    if isinstance(exc, OSError) and exc.filename is None:  # a write() that failed names no file: the output
        exc.filename = getattr(args, "csv", None) or getattr(args, "out", None) or getattr(args, "run_dir", None)
    line = str(exc) if isinstance(exc, UsageError) else user_line(exc)
    if line is not None:
        print(f"tl-desktop {command}: {line}", file=sys.stderr)
        return 2
    where = _log_traceback(command, exc)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    print(f"tl-desktop {command}: internal error: {type(exc).__name__}: {first}; details in {where}",
          file=sys.stderr)
    return 1


def _log_traceback(command: str, exc: BaseException) -> str:
    """Append the traceback to the app's log file (the one the window writes, ``app.setup_logging``);
    returns its path, or a note where it could not be written."""
    import logging
    import logging.handlers
    import traceback

    from tl_desktop import paths

    try:
        file = paths.log_dir() / "tl-desktop.log"
        handler = logging.handlers.RotatingFileHandler(file, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    except OSError as err:
        return f"no log file ({err.strerror or err})"
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("tl_desktop.cli.failure")
    log.propagate = False  # the file only: a handler on stderr would print the traceback after all
    log.addHandler(handler)
    try:
        log.error("tl-desktop %s %s failed\n%s", __version__, command,
                  "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    finally:
        log.removeHandler(handler)
        handler.close()
    return str(file)


if __name__ == "__main__":
    sys.exit(main())
