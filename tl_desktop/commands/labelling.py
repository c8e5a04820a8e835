"""``tl-desktop simulate-labelling`` (replay the labelling loop with the labels hidden) and ``tl-desktop
labels`` (a project's labels given in the app: counts, or a ``path,label`` CSV of every labelled image)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tl_desktop.commands import UsageError

MAX_SEEDS = 50


def add_simulate_labelling_arguments(parser: argparse.ArgumentParser) -> None:
    from tl_desktop.core.insight.active import ORDERS
    from tl_desktop.core.insight.labelling_simulation import DEFAULT_BUDGETS, DEFAULT_TEST_FRACTION
    from tl_desktop.core.models.catalog import DEFAULT_MODEL

    parser.add_argument("data", help="a fully labelled folder with one sub-folder per class (or the CSV's folder "
                        "with --csv); the labels are hidden and revealed one by one when the loop asks")
    parser.add_argument("--csv", help="CSV with path,label[,group] rows, paths relative to the CSV")
    parser.add_argument("--order", default="uncertainty", choices=ORDERS,
                        help="which image is labelled next: uncertainty (with diversity), random, or sequential")
    parser.add_argument("--budgets", default=",".join(map(str, DEFAULT_BUDGETS)),
                        help="labels spent at which the test accuracy is measured, comma-separated")
    parser.add_argument("--seeds", type=int, default=3, help="repeats with different seeds (default 3)")
    parser.add_argument("--test-fraction", type=float, default=DEFAULT_TEST_FRACTION,
                        help=f"held-out test part, the same for every order and seed (default {DEFAULT_TEST_FRACTION})")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the held-out test part")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="backbone for the embeddings")
    parser.add_argument("--image-size", type=int, help="input size in px (default: the model's own)")
    parser.add_argument("--json", action="store_true",
                        help='print a JSON list of {"labels": n, "accuracy": a, "seed": s}')


def _budgets(text: str) -> list[int]:
    try:
        budgets = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--budgets must be whole numbers separated by commas (got '{text}')") from None
    if not budgets or any(b < 1 or b > 1_000_000 for b in budgets):
        raise UsageError(f"--budgets must be whole numbers from 1 to 1,000,000 (got '{text}')")
    return sorted(set(budgets))


def _check(args: argparse.Namespace) -> list[int]:
    from tl_desktop.core.config import TrainOptions, check_options
    from tl_desktop.core.errors import UserFacingError

    budgets = _budgets(args.budgets)
    if not 1 <= args.seeds <= MAX_SEEDS:
        raise UsageError(f"--seeds must be a whole number from 1 to {MAX_SEEDS} (got {args.seeds})")
    if not 0.05 <= args.test_fraction <= 0.8:
        raise UsageError(f"--test-fraction must be from 0.05 to 0.8 (got {args.test_fraction})")
    try:
        check_options(TrainOptions(image_size=args.image_size))
    except UserFacingError as exc:
        raise UsageError(str(exc)) from exc
    return budgets


def run_simulate_labelling(args: argparse.Namespace) -> int:
    from tl_desktop.commands.transfer import _guarded
    from tl_desktop.core.config import DataSource
    from tl_desktop.core.insight.labelling_simulation import simulate_source

    budgets = _check(args)
    source = DataSource(data=args.data, csv=args.csv, seed=args.split_seed)
    result = _guarded(lambda cancel: simulate_source(
        source, args.order, budgets, args.seeds, model=args.model, image_size=args.image_size,
        test_fraction=args.test_fraction, cancel=cancel))
    if args.json:
        json.dump([p.to_dict() for p in result.points], sys.stdout)
        sys.stdout.write("\n")
        return 0
    print(f"Order: {args.order}; {result.pool} images to label, {result.test} held out for testing "
          f"({len(result.classes)} classes); {args.seeds} seed{'s' if args.seeds != 1 else ''}")
    print(f"{'labels':>8}  {'test accuracy %':>15}  {'min-max over seeds':>19}")
    for budget in budgets:
        scores = [100 * p.accuracy for p in result.points if p.labels == budget]
        print(f"{budget:>8}  {sum(scores) / len(scores):>15.1f}  {min(scores):>9.1f}-{max(scores):<9.1f}")
    print(f"every image labelled ({result.pool}): {100 * result.full_accuracy:.1f}%")
    return 0


def add_labels_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", help="a project folder (or its project.json)")
    parser.add_argument("--csv", help="write every labelled image as a path,label CSV to this file")
    parser.add_argument("--json", action="store_true", help="print the counts as one JSON document")


def run_labels(args: argparse.Namespace) -> int:
    from tl_desktop.core.data.labels import write_csv
    from tl_desktop.core.data.scan import scan
    from tl_desktop.core.project import project_file

    project = project_file.load(args.project)
    source = project.data_source()
    report = scan(source.data, csv=source.csv, labels=source.labels)
    summary = {"labelled": len(report.samples), "unlabelled": len(report.unlabelled), "counts": report.counts,
               "not_sure": len(project.labels.not_sure) if project.labels else 0,
               "given_in_app": len(project.labels.assigned) if project.labels else 0}
    if args.csv:
        if not report.samples:
            raise UsageError(f"{project.name}: no image is labelled yet; nothing to write")
        summary["csv"] = str(Path(args.csv).expanduser().absolute())
        summary["rows"] = write_csv(report, args.csv)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{project.name}: {summary['labelled']} labelled ({summary['given_in_app']} in the app), "
          f"{summary['unlabelled']} still to label, {summary['not_sure']} marked not sure")
    for name, n in report.counts.items():
        print(f"  {name}: {n}")
    if args.csv:
        print(f"saved: {summary['csv']} ({summary['rows']} rows)")
    return 0
