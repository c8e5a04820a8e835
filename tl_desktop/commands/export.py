"""``tl-desktop export``: a run folder to a verified ONNX file; prints the verification figures.

The run is evaluated clinically first when it has no current evaluation (``policy.export_run``, as in the
window), so the file carries the fitted temperature; a decision rule only when the user chose or accepted one in
Evaluate (or with ``report --positive``). The output says which rule, if any, is inside. A multi-label run's
file carries its per-finding thresholds instead; the output names them, and its figures are the agreement of
the findings with PyTorch and the exact-match accuracy (``verify``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a finished run folder")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--fp16", action="store_true", help="also write FILE.fp16.onnx (for GPUs), re-verified")
    parser.add_argument("--int8", action="store_true", help="also write FILE.int8.onnx (smaller), re-verified")
    parser.add_argument("--checkpoint", default="best", choices=["best", "last"])
    parser.add_argument("--json", action="store_true", help="print the verification figures as JSON")
    parser.add_argument("--unfamiliar", default="flagged", choices=["flagged", "not-sure"],
                        help="images unlike the training images: answered with a mark (flagged, the default) "
                             "or answered \"not sure\"")


def _line(result) -> str:
    """One file's figures against today's limits (``verify.TOLERANCES``) and whether that makes it verified."""
    from tl_desktop.core.export.verify import FINDINGS_AGREEMENT, TOLERANCES, agreement_key, within_tolerance

    v = result.verification
    tol = TOLERANCES.get(v["precision"], {})
    key = agreement_key(v)
    words, limit = (("same findings", FINDINGS_AGREEMENT.get(v["precision"], "-")) if key == "findings_agreement"
                    else ("top-1 agreement", tol.get("top1_agreement", "-")))
    text = (f"{result.path.name}: {v['precision']}, {v['file_size_bytes'] / 1e6:.1f} MB, "
            f"max |p_onnx - p_torch| {v['max_abs_diff']:.2e} (limit {tol.get('max_abs_diff', '-')}), "
            f"{words} {v[key]:.3f} (limit {limit}) on "
            f"{v['n_images']} {v['images_from']} images: {'verified' if within_tolerance(v) else 'NOT verified'}")
    acc = v.get("test_accuracy")
    if acc and acc[v["precision"]]["accuracy"] is not None:
        kind = "exact-match accuracy" if acc.get("task") == "multi-label" else "accuracy"
        text += f"; {acc['subset']} {kind} {acc[v['precision']]['accuracy']:.3f} (n={acc['n_images']})"
        per = acc[v["precision"]].get("per_finding") or {}
        if per:
            text += " (right per finding: " + ", ".join(f"{n} {a:.3f}" for n, a in per.items() if a is not None) + ")"
        if v.get("test_accuracy_change") is not None:
            text += f", change vs fp32 {v['test_accuracy_change']:+.3f}"
    return text


def _note(event: Any) -> None:
    """Notices (no test split, evaluation warnings) go to stderr, so ``--json`` output stays parseable."""
    if type(event).__name__ == "Notice":
        print(f"note: {event.message}", file=sys.stderr, flush=True)


def _rule(meta: dict[str, str]) -> str:
    """Which decision the file carries, in words: a multi-label file's thresholds, else the single-label rule."""
    from tl_desktop.core.evaluation.decision import rule_sentence
    from tl_desktop.core.export import multilabel

    return multilabel.rule_sentence(meta) if meta.get("task") == "multi-label" else rule_sentence(meta)


def run_export(args: argparse.Namespace) -> int:
    from tl_desktop.core.export.policy import export_run

    result = export_run(args.run_dir, args.out, fp16=args.fp16, int8=args.int8, which=args.checkpoint,
                        callback=_note, unfamiliar_action=args.unfamiliar.replace("-", " "))
    results = [result, *result.variants.values()]
    if args.json:
        print(json.dumps({r.path.name: {**{k: v for k, v in r.verification.items() if k != "metadata"},
                                        "decision": _rule(r.verification.get("metadata") or {})}
                          for r in results}, indent=2))
    else:
        for r in results:
            print(_line(r))
            print(f"  figures: {r.verification_path}")
        print(_rule(result.verification.get("metadata") or {}))
        print(_unfamiliar_sentence(result.verification.get("metadata") or {}))
    return 0


def _unfamiliar_sentence(meta: dict[str, str]) -> str:
    info = json.loads(meta.get("unfamiliar_reference") or "{}")
    action = 'answered "not sure"' if meta["unfamiliar_action"] == "not sure" else "marked unfamiliar"
    return (f"Images unlike the training images (unfamiliarity above {float(meta['unfamiliar_threshold']):.2f}, "
            f"set on {info['n_threshold']} {info['threshold_from']} images so that about {info['quantile']:.0%} "
            "stay under) "
            f"are {action}.")
