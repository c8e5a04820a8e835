"""``tl-desktop transfer-check``, ``compare-models`` and ``label-budget``: did transfer help, which backbone,
and would more labels pay off. Readable tables by default, one JSON document with ``--json``."""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path
from typing import Any

from tl_desktop.commands import UsageError


def _common(parser: argparse.ArgumentParser, *, out_required: bool) -> None:
    parser.add_argument("data", help="folder with one sub-folder per class (or the CSV's folder with --csv)")
    parser.add_argument("--csv", help="CSV with path,label[,group] rows, paths relative to the CSV")
    parser.add_argument("--label-columns", metavar="A,B",
                        help="multi-label: the CSV's 0/1 columns, one per finding (comma-separated)")
    parser.add_argument("--group-by", help="keep groups together: csv | dicom:PatientID | regex:PATTERN")
    parser.add_argument("--image-size", type=int, help="input size in px (default: the model's own)")
    parser.add_argument("--seed", type=int, default=0, help="split and training seed")
    parser.add_argument("--out", required=out_required, help="new or empty folder for the runs and the results")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")


def _training(parser: argparse.ArgumentParser, default_budget: int) -> None:
    parser.add_argument("--budget", type=int, default=default_budget, help="epochs per model (the same for all)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--workers", type=int, help="data loader processes (default: automatic)")


def add_transfer_check_arguments(parser: argparse.ArgumentParser) -> None:
    from tl_desktop.core.models.catalog import DEFAULT_MODEL

    _common(parser, out_required=False)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="backbone name (see 'tl-desktop models')")
    _training(parser, 10)
    parser.add_argument("--probe-lr", type=float, help="learning rate of the linear probe (default: the engine's)")


def add_compare_models_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser, out_required=False)
    parser.add_argument("--models", help="comma-separated backbone names (default: every offline model)")
    parser.add_argument("--strategy", default="linear-probe", choices=["linear-probe", "fine-tune"],
                        help="linear-probe is fast; fine-tune is slower and often more accurate")
    _training(parser, 5)
    parser.add_argument("--lr", type=float, help="learning rate (default depends on the strategy)")


def add_label_budget_arguments(parser: argparse.ArgumentParser) -> None:
    from tl_desktop.core.models.catalog import DEFAULT_MODEL

    _common(parser, out_required=False)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="backbone name (see 'tl-desktop models')")
    parser.add_argument("--shots", default="1,2,5,10,20,all", help="images per class to try; 'all' = every one")
    parser.add_argument("--repeats", type=int, default=3, help="random draws per shot count")


def _source(args: argparse.Namespace):
    """The data source of the common flags (DATA, --csv, --label-columns, --group-by, --seed); default split
    fractions."""
    from tl_desktop.commands.train import label_columns
    from tl_desktop.core.config import DataSource

    return DataSource(data=args.data, csv=args.csv, group_by=args.group_by, seed=args.seed,
                      label_columns=label_columns(args))


def _out(args: argparse.Namespace, stem: str) -> Path:
    if args.out:
        return Path(args.out)
    base = Path.cwd() / f"{stem}-{Path(args.data).resolve().name}"
    out, n = base, 2
    while out.exists():
        out, n = Path(f"{base}-{n}"), n + 1
    return out


def _checked(args: argparse.Namespace, out: Path | None, **options: Any) -> None:
    """Refuse (one line, exit 2) option values outside their range and an output folder inside the image
    folder, before any folder is made; the same checks as training (``core.config``)."""
    from tl_desktop.core.config import SplitOptions, TrainOptions, check_options, check_output_folder
    from tl_desktop.core.errors import UserFacingError

    try:
        check_options(TrainOptions(image_size=args.image_size, **options))
        check_options(SplitOptions(seed=args.seed))
        if out is not None:
            check_output_folder(out, _source(args))
    except UserFacingError as exc:
        raise UsageError(str(exc)) from exc


def _guarded(fn):
    """Ctrl+C cancels between batches (exit 130); failures reach ``cli.main`` as in ``train._guarded``."""
    from tl_desktop.commands.train import _guarded as train_guarded
    from tl_desktop.core.events import Cancelled, CancelToken

    cancel = CancelToken()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        return train_guarded(lambda: fn(cancel))
    except Cancelled as exc:
        raise KeyboardInterrupt from exc
    finally:
        signal.signal(signal.SIGINT, previous)


def _progress(as_json: bool):
    def callback(event: Any) -> None:
        inner = getattr(event, "event", event)
        if as_json or type(inner).__name__ != "EpochEnded":
            return
        arm = getattr(event, "arm", "")
        print(f"  {arm}: epoch {inner.epoch} val acc {inner.val_acc:.3f} ({inner.seconds:.1f} s)", flush=True)
    return callback


def _ci(score: dict[str, float]) -> str:
    return f"{100 * score['value']:5.1f}  [{100 * score['low']:5.1f}, {100 * score['high']:5.1f}]"


def _auc_ci(score: dict[str, float] | None) -> str:
    if score is None:
        return "-"
    return f"{score['value']:5.3f}  [{score['low']:5.3f}, {score['high']:5.3f}]"


def run_transfer_check(args: argparse.Namespace) -> int:
    from tl_desktop.core.insight.transfer import transfer_check

    out = _out(args, "transfer-check")
    _checked(args, out, epochs=args.budget, batch_size=args.batch_size, workers=args.workers, lr=args.probe_lr)
    if not args.json:
        print(f"transfer check of {args.model}: 3 trainings of {args.budget} epochs into {out}", flush=True)
    report = _guarded(lambda cancel: transfer_check(
        _source(args), model=args.model, budget_epochs=args.budget, out_dir=out, image_size=args.image_size,
        batch_size=args.batch_size,
        lr={"linear-probe": args.probe_lr} if args.probe_lr else None, device=args.device, workers=args.workers,
        callback=_progress(args.json), cancel=cancel))
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    multi = report.task == "multi-label"
    score, best = ("test mean AUC [95% CI]", "best val AUC") if multi else ("test bal. acc % [95% CI]", "best val %")
    width = 12 if multi else 10
    print(f"\n{'model':<14} {score:<26} {best:>{width}} {'epochs to target':>17} {'s to target':>12}")
    for name, arm in report.arms.items():
        epochs = "-" if name == "thumbnail" else (str(arm.epochs_to_target) if arm.epochs_to_target else "never")
        secs = f"{arm.seconds_to_target:.1f}" if arm.seconds_to_target is not None else "-"
        test, val = ((_auc_ci(arm.test_macro_auc), f"{arm.selection_score():.3f}") if multi else
                     (_ci(arm.test_balanced_accuracy), f"{100 * arm.best_val_balanced_accuracy:.1f}"))
        print(f"{name:<14} {test:<26} {val:>{width}} {epochs:>17} {secs:>12}")
    if multi:
        print("Multi-label: mean AUC over findings (1 = perfect, 0.5 = chance); the target of 'epochs to target' is "
              "a validation balanced accuracy, the mean over findings with each called present at p >= 0.5.")
    print()
    print(report.summary)
    print(f"\nsaved: {out / 'transfer.json'}")
    return 0


def run_compare_models(args: argparse.Namespace) -> int:
    from tl_desktop.core.insight.results import COMPARE_FILE, compare_sentence
    from tl_desktop.core.insight.transfer import compare_models

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    out = _out(args, "compare-models")
    _checked(args, out, epochs=args.budget, batch_size=args.batch_size, workers=args.workers, lr=args.lr)
    rows = _guarded(lambda cancel: compare_models(
        _source(args), models=models, budget_epochs=args.budget, out_dir=out, strategy=args.strategy,
        image_size=args.image_size, batch_size=args.batch_size, lr=args.lr, device=args.device, workers=args.workers,
        callback=_progress(args.json), cancel=cancel))
    if args.json:
        print(json.dumps({"out_dir": str(out), "rows": rows}))
        return 0
    print(f"\n{'model':<24} {'params (M)':>10} {'test bal. acc % [95% CI]':<26} {'time (s)':>9} {'weights MB':>10}")
    for r in rows:
        print(f"{r['model']:<24} {r['params'] / 1e6:>10.2f} {_ci(r['test_balanced_accuracy']):<26} "
              f"{r['wall_seconds']:>9.1f} {r['weights_mb']:>10.1f}")
    print(f"\n{compare_sentence(rows)}")
    print(f"{args.strategy}, {args.budget} epochs each, same split; saved: {out / COMPARE_FILE}")
    return 0


def _shots(text: str) -> tuple[int | None, ...]:
    shots: list[int | None] = []
    for part in text.split(","):
        part = part.strip().lower()
        if part == "all":
            shots.append(None)
        elif part.isdigit() and int(part) >= 1:
            shots.append(int(part))
        else:
            raise UsageError(f"--shots: '{part}' is not a positive whole number or 'all'")
    return tuple(shots)


def run_label_budget(args: argparse.Namespace) -> int:
    from tl_desktop.core.insight.label_budget import label_budget_curve

    shots = _shots(args.shots)
    if not 1 <= args.repeats <= 100:
        raise UsageError(f"--repeats must be a whole number from 1 to 100 (got {args.repeats})")
    _checked(args, Path(args.out) if args.out else None)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    curve = _guarded(lambda cancel: label_budget_curve(
        _source(args), model=args.model, shots=shots, repeats=args.repeats, image_size=args.image_size,
        out_dir=args.out, cancel=cancel))
    if args.json:
        print(json.dumps(curve.to_dict()))
        return 0
    print(f"{'images per class':>16}  {'test bal. acc %':>15}  {'spread (min-max)':>17}  repeats")
    for p in curve.points:
        label = f"{p.images_per_class:.0f}" + (" (all)" if p.shots is None else "")
        print(f"{label:>16}  {100 * p.mean:>15.1f}  {100 * p.low:>7.1f}-{100 * p.high:<9.1f}  {len(p.scores)}")
    print(f"\nIs labelling more images likely to pay off? {curve.explanation}")
    if args.out:
        print(f"saved: {Path(args.out) / 'label_budget.json'}")
    return 0
