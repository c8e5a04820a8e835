"""``tl-desktop report``: the PDF + HTML report and audit folder of a finished run."""

from __future__ import annotations

import argparse

from tl_desktop.commands import UsageError


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a finished run folder")
    parser.add_argument("--out", help="folder for report.pdf, report.html and audit/ (default RUN_DIR/report)")
    parser.add_argument("--onnx", action="append", metavar="FILE",
                        help="exported model to include with its verification (repeatable; default: the .onnx "
                             "files in the run folder)")
    parser.add_argument("--transfer", metavar="FILE",
                        help="a transfer.json from 'tl-desktop transfer-check' (default RUN_DIR/transfer.json)")
    parser.add_argument("--positive", metavar="CLASS",
                        help="the class of interest (the finding to detect): makes --threshold (default youden) "
                             "your decision rule, the one an export then carries; recomputes the evaluation")
    parser.add_argument("--threshold", default=None,
                        help="youden (default), sens>=0.9, spec>=0.95 or a number; recomputes the evaluation")
    parser.add_argument("--abstain", type=float, metavar="P",
                        help="answer 'not sure' below this top probability (recomputes the evaluation)")
    parser.add_argument("--allow-changed", action="store_true",
                        help="report on the images as they are now where they changed since training (the "
                             "report says so)")
    parser.add_argument("--hide-file-names", action="store_true",
                        help="name files by SHA-256 only (when file names may contain patient data)")
    parser.add_argument("--no-heatmaps", action="store_true",
                        help="leave out example images (when images carry burned-in patient text)")
    parser.add_argument("--model-card", metavar="FILE.json",
                        help='the model card\'s intended use: {"intended_use": ..., "intended_users": ..., '
                             '"out_of_scope": ..., "limitations": ...} (default: the project\'s, when the run '
                             "belongs to one)")


def _threshold(text: str | None) -> tuple[str, float | None]:
    if text is None or text == "youden":
        return "youden", None
    for prefix, method in (("sens>=", "sensitivity"), ("spec>=", "specificity")):
        if text.startswith(prefix):
            return method, float(text[len(prefix):])
    return "fixed", float(text)


def run_report(args: argparse.Namespace) -> int:
    from tl_desktop.core.data.integrity import EVALUATED, check_run_images
    from tl_desktop.core.evaluation.run_evaluation import evaluate_clinical
    from tl_desktop.report import require_finished, write_report

    try:
        method, target = _threshold(args.threshold)
    except ValueError as exc:
        raise UsageError(f"--threshold: '{args.threshold}' is not youden, sens>=X, spec>=X or a number") from exc
    try:
        from tl_desktop.core.project.intended_use import load_file

        card = load_file(args.model_card) if args.model_card else None  # refused before any evaluation
        require_finished(args.run_dir)
        check_run_images(args.run_dir, EVALUATED, allow_changed=args.allow_changed)  # before any evaluation
        if args.positive or args.threshold or args.abstain is not None:  # else write_report's current evaluation
            evaluate_clinical(args.run_dir, positive_class=args.positive, target=target,  # the user's choice
                              threshold_method=method if args.positive or args.threshold else None,
                              abstain_threshold=args.abstain)
        result = write_report(args.run_dir, args.out, onnx=args.onnx, hide_file_names=args.hide_file_names,
                              heatmaps=not args.no_heatmaps, transfer=args.transfer,
                              allow_changed=args.allow_changed, model_card=card)
    except ValueError as exc:  # an unusable --threshold/--abstain value; the engine's errors reach cli.main
        raise UsageError(str(exc)) from exc
    print(f"report: {result.pdf}")
    print(f"        {result.html}")
    print(f"audit:  {result.audit} ({len(result.files)} files)")
    for warning in result.warnings:
        print(f"note:   {warning}")
    return 0
