"""``tl-desktop predict``: classify files and folders with an exported ONNX model.

Images unlike the model's training images (its ``unfamiliarity`` above the file's threshold) are marked
``unfamiliar`` on each line, in ``--json`` rows (``unfamiliar``, ``unfamiliarity``; null for a model exported
before the reference existed) and in the CSV.

A multi-label model prints each image's findings at or above their thresholds, most probable first
(``zero 0.934, seven 0.712``, or ``no finding``); ``--json`` rows carry ``findings`` and every finding's
probability; the CSV has ``findings`` (``a;b``) and one ``p_<finding>`` column per finding (``multilabel_csv_text``).
The thresholds are named once on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys

from tl_desktop.commands import UsageError


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="an .onnx file exported by tl-desktop")
    parser.add_argument("paths", nargs="+", help="image files and folders (searched recursively)")
    parser.add_argument("--top-k", type=int, default=3, help="how many labels to report per image")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--csv", help="also write the results to this CSV file")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image")


UNFAMILIAR_MARK = "unfamiliar: unlike the training images"


def csv_text(predictions, top_k: int) -> str:
    """path, decision, top1, p_top1, ..., topK, p_topK, unfamiliar, unfamiliarity, error.

    ``decision`` is the model's answer after its stored decision/abstain rule ("not sure" when it abstains);
    without such a rule it is top1. ``unfamiliar`` ("yes"/"no", empty for an unreadable file) and
    ``unfamiliarity`` are there when the model has the reference (not for files exported before it). Text cells that a spreadsheet would run as a formula start with an apostrophe.
    """
    from tl_desktop.core.fsutil import csv_text as table_text

    header = ["path", "decision"]
    for i in range(1, top_k + 1):
        header += [f"top{i}", f"p_top{i}"]
    scored = any(getattr(p, "unfamiliar", None) is not None for p in predictions)
    rows = [[*header, *(["unfamiliar", "unfamiliarity"] if scored else []), "error"]]
    for p in predictions:
        row = [p.path, "" if p.error else (p.label or "")]
        for i in range(top_k):
            label, prob = p.top[i] if i < len(p.top) else ("", None)
            row += [label, "" if prob is None else f"{prob:.6f}"]
        if scored:
            row += ["" if p.unfamiliar is None else ("yes" if p.unfamiliar else "no"),
                    "" if p.unfamiliarity is None else f"{p.unfamiliarity:.4f}"]
        rows.append([*row, p.error or ""])
    return table_text(rows)


def multilabel_csv_text(predictions, class_names: list[str]) -> str:
    """path, decision, findings, p_<finding> for each finding, unfamiliar, unfamiliarity, error.

    ``findings`` is ``a;b`` (in name order, like a manifest label; empty for no finding); ``decision`` the same,
    ``no finding``, or "not sure" when the model abstains on an unfamiliar image. Text cells that a spreadsheet
    would run as a formula start with an apostrophe.
    """
    from tl_desktop.core.fsutil import csv_text as table_text

    scored = any(getattr(p, "unfamiliar", None) is not None for p in predictions)
    rows = [["path", "decision", "findings", *(f"p_{name}" for name in class_names),
             *(["unfamiliar", "unfamiliarity"] if scored else []), "error"]]
    for p in predictions:
        probs = [f"{v:.6f}" for v in p.probabilities] if not p.error else [""] * len(class_names)
        row = [p.path, "" if p.error else (p.label or ""), "" if p.error else (p.findings_text or ""), *probs]
        if scored:
            row += ["" if p.unfamiliar is None else ("yes" if p.unfamiliar else "no"),
                    "" if p.unfamiliarity is None else f"{p.unfamiliarity:.4f}"]
        rows.append([*row, p.error or ""])
    return table_text(rows)


def _answer(prediction) -> str:
    """The tab-separated answer of one image: its findings (multi-label) or its top-k classes."""
    if prediction.findings is not None:
        return ", ".join(f"{label} {p:.3f}" for label, p in prediction.findings) or "no finding"
    return ", ".join(f"{label} {p:.3f}" for label, p in prediction.top)


def _print(prediction, as_json: bool, class_names: list[str] | None = None) -> None:
    if as_json:
        data = prediction.to_dict()
        probs = data.pop("probabilities")
        if prediction.findings is not None and class_names:  # independent probabilities: every one matters
            data["probabilities"] = dict(zip(class_names, probs, strict=True)) if probs else {}
        print(json.dumps(data, ensure_ascii=False), flush=True)
    elif prediction.error:
        print(f"{prediction.path}\terror: {prediction.error}", flush=True)
    else:
        tops = _answer(prediction)
        decided = f"{prediction.decision} | " if prediction.decision is not None else ""
        mark = f"\t{UNFAMILIAR_MARK} (score {prediction.unfamiliarity:.2f})" if prediction.unfamiliar else ""
        print(f"{prediction.path}\t{decided}{tops}{mark}", flush=True)


def run_predict(args: argparse.Namespace) -> int:
    from tl_desktop.core.export.predictor import OnnxPredictor
    from tl_desktop.core.fsutil import atomic_write_text

    if args.top_k < 1 or args.batch_size < 1:
        raise UsageError("--top-k and --batch-size must be at least 1")
    predictor = OnnxPredictor(args.model)
    top_k = min(args.top_k, len(predictor.class_names))
    if predictor.thresholds is not None:
        from tl_desktop.core.export.multilabel import thresholds_text

        print(f"multi-label model: findings at or above their thresholds ({thresholds_text(predictor.thresholds)})",
              file=sys.stderr, flush=True)
    results = []
    for prediction in predictor.iter_predict(args.paths, top_k=top_k, batch_size=args.batch_size):
        _print(prediction, args.json, predictor.class_names)
        results.append(prediction)
    if not results:
        raise UsageError("no image files found in the given paths")
    if args.csv:
        atomic_write_text(args.csv, multilabel_csv_text(results, predictor.class_names)
                          if predictor.thresholds is not None else csv_text(results, top_k))
    failed = sum(1 for p in results if p.error)
    if failed == len(results):
        raise UsageError(f"none of the {failed} files could be read (first: {results[0].error})")
    if failed:
        print(f"{failed} of {len(results)} files could not be read", file=sys.stderr)
    unlike = sum(1 for p in results if p.unfamiliar)
    if unlike:
        rule = predictor.unfamiliar_rule
        print(f"{unlike} of {len(results)} images are unlike the model's training images (unfamiliarity above "
              f"{rule.threshold:.2f}); {_action_words(rule.action)}", file=sys.stderr)
    return 0


def _action_words(action: str) -> str:
    if action == "not sure":
        return "the model answers \"not sure\" for them"
    return "their answers are marked unfamiliar: check them yourself"
