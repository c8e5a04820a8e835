"""``tl-desktop audit``: the same picture twice (and across parts: leakage), shared DICOM identifiers, and images
whose label the data contradict. A readable summary by default, one JSON document with ``--json``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tl_desktop.commands import UsageError

_LIST_LIMIT = 50  # lines per section in the text summary; --json always has everything


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    from tl_desktop.core.insight.audit import NEAR_THRESHOLD

    parser.add_argument("data", help="folder with one sub-folder per class (or the CSV's folder with --csv)")
    parser.add_argument("--csv", help="CSV with path,label[,group] rows, paths relative to the CSV")
    parser.add_argument("--group-by", help="split as training would, keeping groups together: csv | "
                        "dicom:PatientID | regex:PATTERN")
    parser.add_argument("--seed", type=int, default=0, help="split seed, as for training (default 0)")
    parser.add_argument("--threshold", type=float, default=NEAR_THRESHOLD,
                        help=f"cosine similarity from which two files count as one picture (default {NEAR_THRESHOLD})")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")


def _section(title: str, lines: list[str]) -> None:
    print(f"\n{title} ({len(lines)}):")
    if not lines:
        print("  none")
    for line in lines[:_LIST_LIMIT]:
        print(f"  {line}")
    if len(lines) > _LIST_LIMIT:
        print(f"  ... and {len(lines) - _LIST_LIMIT} more (use --json for the full list)")


def _pair_line(pair: Any) -> str:
    parts = f" [{pair.subset_a} / {pair.subset_b}]" if pair.subset_a or pair.subset_b else ""
    mark = "LEAK " if pair.crosses_splits else ""
    how = "identical" if pair.kind == "exact" else f"{pair.similarity:.3f}" + (" mirrored" if pair.flipped else "")
    return f"{mark}{pair.a} ~ {pair.b}  ({how}){parts}"


def print_summary(report: Any) -> None:
    """Near-duplicate pairs, shared identifiers and likely label errors, in plain text."""
    print(f"Audited {report.source}: {report.images} images; parts: {report.split_rule}")
    print(f"Same picture: identical files or pixels, or embedding similarity >= {report.threshold} "
          f"({report.model}, {report.image_size} px, mirror images compared too)")
    _section("Duplicate pairs (LEAK: the two are in different parts)", [_pair_line(p) for p in report.near_duplicates])
    if report.shared_identifiers:
        _section("DICOM identifiers in more than one part (LEAK; values shown as keyed hashes)",
                 [f"LEAK {s.kind} {s.key}: {len(s.paths)} files in {' and '.join(s.subsets)}: "
                  f"{', '.join(s.paths[:3])}{', ...' if len(s.paths) > 3 else ''}" for s in report.shared_identifiers])
    _section("Likely label errors (score: label quality, lower is more suspicious)",
             [f"{i.path}: labelled '{i.given}', looks like '{i.suggested}' (score {i.score:.3f})"
              for i in report.label_issues])
    print(f"\nLabel check: {report.label_method}")


def _cancellable(fn):
    """Ctrl+C sets the cancel token (the audit stops between batches; exit 130)."""
    import signal

    from tl_desktop.core.events import Cancelled, CancelToken

    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        return fn(cancel)
    except Cancelled as exc:
        raise KeyboardInterrupt from exc
    finally:
        signal.signal(signal.SIGINT, previous)


def run_audit(args: argparse.Namespace) -> int:
    from tl_desktop.core.config import DataSource, SplitOptions, check_options
    from tl_desktop.core.errors import UserFacingError
    from tl_desktop.core.insight.audit import audit

    if not 0 < args.threshold <= 1:
        raise UsageError("--threshold must be above 0 and at most 1 (cosine similarity)")
    try:
        check_options(SplitOptions(seed=args.seed))
    except UserFacingError as exc:
        raise UsageError(str(exc)) from exc
    source = DataSource(data=args.data, csv=args.csv, group_by=args.group_by, seed=args.seed)
    report = _cancellable(lambda cancel: audit(source, cancel=cancel, threshold=args.threshold))
    if args.json:
        json.dump(report.to_dict(), sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print_summary(report)
    return 0
