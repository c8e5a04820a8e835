"""``tl-desktop models``: the backbone catalog and whether each works offline."""

from __future__ import annotations

import argparse
import json
import sys


def add_models_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the catalog as one JSON document")


def run_models(args: argparse.Namespace) -> int:
    from tl_desktop.core.models.catalog import catalog

    models = catalog()
    if args.json:
        json.dump([m.to_dict() for m in models], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    rows = [(m.name, f"{m.params_m:.1f}", str(m.input_size), f"{m.imagenet_top1:.1f}",
             "yes" if m.offline else "no") for m in models]
    header = ("name", "params M", "input px", "ImageNet top-1", "offline")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for i, row in enumerate([header, *rows]):
        cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]
        print("  ".join(cells).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return 0
