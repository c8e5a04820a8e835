"""``tl-desktop scan``: check a labelled data set and account for every file."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from tl_desktop.commands import UsageError

_LIST_LIMIT = 50  # lines per section in the human summary; --json always has everything


def add_scan_arguments(parser: argparse.ArgumentParser) -> None:
    from tl_desktop.core.data.decode import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIDE

    parser.add_argument("data", help="folder with one sub-folder per class, or a CSV file")
    parser.add_argument("--csv", help="CSV with the header path,label[,group]; paths relative to the CSV")
    parser.add_argument("--label-columns", metavar="A,B",
                        help="multi-label: the CSV's 0/1 columns, one per finding (comma-separated)")
    parser.add_argument("--json", action="store_true", help="print the full report as one JSON document")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help=f"skip images with more pixels, without decoding them (default {DEFAULT_MAX_PIXELS:,})")
    parser.add_argument("--min-side", type=int, default=DEFAULT_MIN_SIDE,
                        help=f"skip images with a side shorter than this (default {DEFAULT_MIN_SIDE} px)")
    parser.add_argument("--no-cache", action="store_true", help="examine every file again")


def _section(out: TextIO, title: str, lines: list[str]) -> None:
    if not lines:
        return
    print(f"\n{title} ({len(lines)}):", file=out)
    for line in lines[:_LIST_LIMIT]:
        print(f"  {line}", file=out)
    if len(lines) > _LIST_LIMIT:
        print(f"  ... and {len(lines) - _LIST_LIMIT} more (use --json for the full list)", file=out)


def print_summary(report, out: TextIO | None = None) -> None:
    """A plain-text summary: classes (a multi-label set: findings and what they say together), skipped files,
    duplicates, conflicts and warnings."""
    out = out or sys.stdout
    print(f"Scanned {report.source}: {report.files_seen} files, {len(report.samples)} usable images, "
          f"{len(report.skipped)} skipped", file=out)
    width = max((len(c) for c in report.classes), default=5)
    print("\nFindings (images per finding):" if report.is_multilabel else "\nClasses:", file=out)
    for label, n in report.counts.items():
        print(f"  {label:<{width}}  {n:>6}", file=out)
    lines = report.multilabel_lines()
    if lines:
        print("", file=out)
        for line in lines:
            print(line, file=out)
    _section(out, "Skipped files", [f"{s.path}: {s.reason}" for s in report.skipped])
    print(f"\n{report.identical_text()}", file=out)
    _section(out, "Identical images within a class (same bytes or same pixels; kept together in one split)",
             [" = ".join(group) for group in report.duplicates])
    _section(out, "Identical images with different labels (skipped)", [" = ".join(g) for g in report.conflicts])
    _section(out, "Warnings", [w.message for w in report.warnings])


def run_scan(args: argparse.Namespace) -> int:
    from tl_desktop.commands.train import label_columns
    from tl_desktop.core.data.scan import scan

    if args.max_pixels <= 0 or args.min_side < 1:
        raise UsageError("--max-pixels and --min-side must be positive")
    report = scan(args.data, csv=args.csv, max_pixels=args.max_pixels, min_side=args.min_side,
                  cache=not args.no_cache, label_columns=label_columns(args))
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print_summary(report)
    if not report.usable:
        raise UsageError(str(report.unusable))
    return 0
