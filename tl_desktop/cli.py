"""The ``tl-desktop`` command line: every subcommand drives the same core as the GUI.

Exit codes: 0 success, 1 unexpected failure, 2 unusable input or options (one-line reason on stderr),
130 cancelled with Ctrl+C.
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
    except UsageError as exc:
        print(f"tl-desktop {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tl-desktop {args.command}: cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
