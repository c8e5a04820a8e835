"""``tl-desktop train``, ``resume`` and ``evaluate``: progress lines (or JSON lines) and the test metrics."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any

from tl_desktop.commands import UsageError


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    from tl_desktop.core.models.catalog import AUGMENTATIONS, DEFAULT_MODEL

    strategies = ["auto", "linear-probe", "fine-tune", "full", "scratch"]
    parser.add_argument("data", help="folder with one sub-folder per class (or the CSV's folder with --csv)")
    parser.add_argument("--csv", help="CSV with path,label[,group] rows, paths relative to the CSV (a label "
                        "column of a;b values is a multi-label task: several findings per image, empty = none)")
    parser.add_argument("--label-columns", metavar="A,B", help="multi-label: the CSV's 0/1 columns, one per finding")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="backbone name (see 'tl-desktop models')")
    parser.add_argument("--strategy", default="auto", choices=strategies)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", required=True, help="new or empty folder for the run")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--image-size", type=int, help="input size in px (default: the model's own)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, help="peak learning rate (default depends on the strategy)")
    parser.add_argument("--val-split", type=float, default=0.15)
    parser.add_argument("--test-split", type=float, default=0.15)
    parser.add_argument("--group-by", help="keep groups together: csv | dicom:PatientID | regex:PATTERN")
    parser.add_argument("--augmentation", default="light", choices=list(AUGMENTATIONS))
    parser.add_argument("--allow-flip", action="store_true", help="medical preset: allow flips")
    parser.add_argument("--allow-rotate", action="store_true", help="medical preset: allow small rotations")
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--balance", default="auto", choices=["auto", "weighted-loss", "sampler", "off"])
    parser.add_argument("--patience", type=int, default=5, help="early stopping patience in epochs (0: off)")
    parser.add_argument("--workers", type=int, help="data loader processes (default: automatic)")
    parser.add_argument("--weights-file", help=".safetensors or .pth weights to start from")
    parser.add_argument("--init-from", metavar="RUN_DIR",
                        help="continue from an earlier run's model with new images and/or new classes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object per event")


def add_resume_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="the folder of an interrupted or cancelled run")
    parser.add_argument("--json", action="store_true", help="print one JSON object per event")


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a finished run folder")
    parser.add_argument("data", nargs="?", help="another labelled folder to evaluate on (default: the test split)")
    parser.add_argument("--allow-changed", action="store_true",
                        help="evaluate on the images as they are now even where they changed since training")
    parser.add_argument("--subgroups", metavar="A,B", help=(
        "break the test figures down by CSV columns and/or non-identifying DICOM tags (PatientSex, PatientAge, "
        "Manufacturer, ManufacturerModelName, BodyPartExamined, ViewPosition), e.g. PatientSex,PatientAge,site"))
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON document")


class _Printer:
    """Turns engine events into terminal lines (one per epoch, plus notices) or JSON lines."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self._last_progress = 0.0

    def __call__(self, event: Any) -> None:
        from tl_desktop.core.events import event_to_dict

        name = type(event).__name__
        if self.as_json:
            if name != "BatchEnded" or event.step % 10 == 0:
                print(json.dumps(event_to_dict(event)), flush=True)
            return
        if name == "FitStarted":
            print(f"training {event.strategy} on {event.device}: {event.epochs} epochs, "
                  f"{event.steps_per_epoch} steps of {event.batch_size}", flush=True)
        elif name == "EpochEnded":
            best = " *best" if event.is_best else ""
            print(f"epoch {event.epoch}: train loss {event.train_loss:.4f} acc {event.train_acc:.3f} | "
                  f"val loss {event.val_loss:.4f} acc {event.val_acc:.3f} | {event.images_per_s:.0f} img/s, "
                  f"ETA {event.eta_s:.0f} s{best}", flush=True)
        elif name == "Notice":
            print(f"note: {event.message}", flush=True)
        elif name == "Progress" and event.phase == "preparing images" and event.total:
            self._progress(event)

    def _progress(self, event: Any) -> None:
        """A line at most every 5 s while images are prepared, and one when done."""
        import time

        now = time.monotonic()
        if event.done < event.total and (now - self._last_progress < 5 or event.eta_s is None):
            return
        self._last_progress = now
        eta = f", about {event.eta_s:.0f} s left" if event.eta_s and event.done < event.total else ""
        print(f"preparing images: {event.done} of {event.total}{eta}", flush=True)


def _config_from(args: argparse.Namespace):
    from tl_desktop.core.training.run import TrainConfig

    return TrainConfig(
        data=args.data, out=args.out, model=args.model, strategy=args.strategy, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, image_size=args.image_size, augmentation=args.augmentation,
        allow_flip=args.allow_flip, allow_rotate=args.allow_rotate, label_smoothing=args.label_smoothing,
        balance=args.balance, patience=args.patience, device=args.device, workers=args.workers, seed=args.seed,
        val_fraction=args.val_split, test_fraction=args.test_split, group_by=args.group_by, csv=args.csv,
        weights_file=args.weights_file, init_from=args.init_from, label_columns=label_columns(args))


def label_columns(args: argparse.Namespace) -> list[str] | None:
    """The ``--label-columns`` names (comma-separated), or None.

    Raises:
        UsageError: empty names, repeated names, or no --csv.
    """
    text = getattr(args, "label_columns", None)
    if text is None:
        return None
    names = [n.strip() for n in text.split(",")]
    if not all(names) or len({n.lower() for n in names}) != len(names):
        raise UsageError(f"--label-columns takes distinct column names separated by commas (got '{text}')")
    if not getattr(args, "csv", None) and not str(getattr(args, "data", "")).lower().endswith(".csv"):
        raise UsageError("--label-columns names columns of a CSV: give the CSV with --csv")
    return names


def _summary(metrics: dict[str, Any]) -> str:
    if not metrics or not metrics.get("n"):
        return "test: no test images (test split is empty)"
    if metrics.get("task") == "multi-label":
        from tl_desktop.core.evaluation.multilabel_run import summary_text

        return "\n".join([f"test ({metrics['n']} images, {len(metrics['class_names'])} findings):",
                          *summary_text(metrics)])
    auc = metrics["roc_auc"].get("macro")
    auc_text = f", ROC-AUC {auc:.3f}" if auc is not None else ""
    lines = [f"test: accuracy {metrics['accuracy']:.3f}, balanced accuracy {metrics['balanced_accuracy']:.3f}"
             f"{auc_text} on {metrics['n']} images"]
    for name, row in metrics["per_class"].items():
        lines.append(f"  {name}: precision {row['precision']:.3f} recall {row['recall']:.3f} "
                     f"F1 {row['f1']:.3f} (n={row['support']})")
    old = metrics.get("continued")
    if old and old["old_test_accuracy_before"] is not None:
        lines.append(f"earlier run {old['earlier_run']}'s test images ({old['old_test_images']}): accuracy "
                     f"{old['old_test_accuracy_before']:.3f} before, {old['old_test_accuracy_after']:.3f} after "
                     f"(forgetting {old['forgetting']:+.3f})")
    return "\n".join(lines)


def _run(start, as_json: bool) -> int:
    """Run ``start(callback, cancel)``; Ctrl+C cancels cleanly between batches."""
    from tl_desktop.core.events import CancelToken

    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        result = _guarded(lambda: start(_Printer(as_json), cancel))
    finally:
        signal.signal(signal.SIGINT, previous)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun, rank 0 alone reports
    if result.cancelled:
        print(f"cancelled; continue with: tl-desktop resume {result.run_dir}", file=sys.stderr)
        return 130
    print(json.dumps({"event": "result", "run_dir": result.run_dir, "test_metrics": result.test_metrics})
          if as_json else _summary(result.test_metrics), flush=True)
    return 0


def _subgroups(run_dir: str, names: list[str]) -> dict[str, Any]:
    """The stored evaluation (just made current) broken down by ``names``: ``clinical.json``'s ``subgroups``."""
    from tl_desktop.core.evaluation.current import clinical_lock
    from tl_desktop.core.evaluation.run_evaluation import set_subgroups

    with clinical_lock(run_dir):
        block = set_subgroups(run_dir, names)["subgroups"]
    return {k: v for k, v in block.items() if k != "values"}  # the figures; per-image values stay in the file


def _guarded(fn):
    """A diverged training (NaN loss) becomes UsageError (one line, exit 2); the engine's own errors
    (``UserFacingError``) and disk errors reach ``cli.main``, which prints them the same way."""
    try:
        return fn()
    except FloatingPointError as exc:
        raise UsageError(str(exc)) from exc


def run_train(args: argparse.Namespace) -> int:
    from tl_desktop.core.training.run import train

    config = _config_from(args)
    return _run(lambda cb, cancel: train(config, cb, cancel), args.json)


def run_resume(args: argparse.Namespace) -> int:
    from tl_desktop.core.training.run import resume

    return _run(lambda cb, cancel: resume(args.run_dir, cb, cancel), args.json)


def run_evaluate(args: argparse.Namespace) -> int:
    """The run's evaluation artefact's test figures (or those on another data set), and which checkpoint."""
    from tl_desktop.core.training.run import evaluate_run

    names = [n.strip() for n in (getattr(args, "subgroups", None) or "").split(",") if n.strip()]
    if names and args.data:
        raise UsageError("--subgroups breaks down the run's own test images: leave out the data folder")
    metrics = _guarded(lambda: evaluate_run(args.run_dir, args.data, allow_changed=args.allow_changed))
    if names:
        metrics["subgroups"] = _subgroups(args.run_dir, names)
    print(json.dumps(metrics) if args.json else _summary(metrics))
    if names and not args.json:
        from tl_desktop.core.evaluation.subgroup_tables import table_lines

        print("\n".join(table_lines(metrics["subgroups"])))
    label = (metrics.get("evaluation") or {}).get("label")
    if label and not args.json:
        print(f"evaluation of the {label} (computed {metrics['evaluation'].get('computed_utc')})")
    if metrics.get("changed_files") and not args.json:
        from tl_desktop.core.data.integrity import FileProblem, describe

        changed = [FileProblem(f["path"], f["kind"]) for f in metrics["changed_files"]]
        print(f"note: {describe(changed)}: these figures are of the images as they are now")
    excluded = metrics.get("excluded_seen_in_training") or []
    if excluded and not args.json:
        print(f"note: {len(excluded)} images identical to training/validation images were left out "
              f"(first: {excluded[0]})")
    return 0
