"""Clinical-size images: 16-bit 1024 px DICOM radiographs against the same images as 256 px PNG, in one run.

Makes its own data (``tl_desktop.sample.write_radiographs``: synthetic 12-bit-in-16 DICOM chest-like fields, two
classes) and 256 px PNG copies of the same pixels, then trains both (strategy ``full``, 160 px, 2 epochs) in
separate child processes with cold caches, and prints:

- epoch-1 and epoch-2 images/s of the DICOM run over the PNG run (goals >= 0.7 and >= 0.95); epoch 1 counts the
  time to prepare the images (each file decoded once into the prepared cache), since that is when it is paid;
- peak memory (VmHWM) of both runs (goals: within 20 % of each other, under 3 GB for 600 images);
- the prepared cache's size on disk and how fast 1024 px DICOMs are prepared;
- the loader alone (no model) at 224 px from the prepared cache: uint8 batches, and batches normalised on the
  CPU (goal >= 1,500 images/s on a 2-core machine).

    .venv/bin/python bench/clinical_size.py [--images 600] [--epochs 2] [--size 160] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _vmhwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(args: argparse.Namespace) -> None:
    """One training run; prints a JSON line of its figures."""
    from tl_desktop.core import runs
    from tl_desktop.core.data.prepared import PreparedCache
    from tl_desktop.core.events import FitStarted, Progress
    from tl_desktop.core.training.run import TrainConfig, train

    marks: dict[str, float] = {}

    def watch(event):  # the preparation before the first epoch (the run's evaluation prepares again: all hits)
        if isinstance(event, FitStarted):
            marks.setdefault("fit_started", time.perf_counter())
        elif isinstance(event, Progress) and event.phase == "preparing images" and "fit_started" not in marks:
            marks.setdefault("prep_start", time.perf_counter())
            marks["prep_end"] = time.perf_counter()

    start = time.perf_counter()
    train(TrainConfig(data=args.data, out=args.out, strategy="full", epochs=args.epochs, image_size=args.size,
                      batch_size=32, workers=args.workers, patience=0, val_fraction=0.15, test_fraction=0.15,
                      augmentation="light"), watch)
    history = runs.read_history(Path(args.out))
    n_train = sum(1 for f in runs.load_manifest(Path(args.out))["files"] if f["subset"] == "train")
    prep = marks.get("prep_end", 0.0) - marks.get("prep_start", 0.0)
    print(json.dumps({"seconds": [r["seconds"] for r in history], "n_train": n_train, "prepare_s": prep,
                      "total_s": time.perf_counter() - start, "peak_mb": _vmhwm_mb(),
                      "cache_bytes": PreparedCache().size_bytes(), "cache_files": len(PreparedCache().usage())}))


def _make_data(folder: Path, n: int) -> tuple[Path, Path]:
    from tl_desktop.core.data.decode import load_image
    from tl_desktop.core.data.prepared import resize
    from tl_desktop.sample import write_radiographs

    dicom, png = folder / "dicom", folder / "png"
    files = write_radiographs(dicom, per_class=n // 2, side=1024, seed=0)
    for path in files:
        target = png / path.parent.name / f"{path.stem}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        resize(load_image(path), 256, "center", "bicubic").save(target)
    return dicom, png


def _run(data: Path, out: Path, args: argparse.Namespace) -> dict:
    home = tempfile.mkdtemp(prefix="tl-bench-home-")
    env = {**os.environ, "TL_DESKTOP_HOME": home}
    cmd = [sys.executable, __file__, "--child", "--data", str(data), "--out", str(out), "--epochs",
           str(args.epochs), "--size", str(args.size), "--workers", str(args.workers)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit(f"training on {data.name} failed:\n{proc.stderr[-3000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    figures["home"] = home
    return figures


def _loader_rate(home: str, data: Path, workers: int) -> dict:
    os.environ["TL_DESKTOP_HOME"] = home  # the DICOM run's cache: its scan results are warm
    from bench.loader_rate import loader_rate

    return loader_rate(sorted(data.rglob("*.dcm")), image_size=224, workers=workers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--workers", type=int, default=2, help="loader processes for the loader-only figure")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.workers = None  # the engine's default
        _child(args)
        return 0
    work = Path(tempfile.mkdtemp(prefix="tl-bench-clinical-"))
    load = os.getloadavg()
    started = time.perf_counter()
    dicom, png = _make_data(work, args.images)
    print(f"{args.images} synthetic 1024 px 16-bit DICOMs and their 256 px PNG copies made in "
          f"{time.perf_counter() - started:.0f} s; training strategy full, {args.size} px, {args.epochs} epochs")
    result = {name: _run(data, work / f"run-{name}", args) for name, data in (("dicom", dicom), ("png", png))}
    d, p = result["dicom"], result["png"]
    first = [(r["n_train"] / (r["seconds"][0] + r["prepare_s"])) for r in (d, p)]
    print(f"epoch 1 (preparing included): DICOM {first[0]:.1f} img/s, PNG {first[1]:.1f} img/s, "
          f"ratio {first[0] / first[1]:.2f} (goal >= 0.7); preparing took {d['prepare_s']:.1f} s against "
          f"{p['prepare_s']:.1f} s")
    if args.epochs >= 2:
        second = [r["n_train"] / r["seconds"][1] for r in (d, p)]
        print(f"epoch 2: DICOM {second[0]:.1f} img/s, PNG {second[1]:.1f} img/s, ratio {second[0] / second[1]:.2f} "
              "(goal >= 0.95)")
    print(f"peak memory: DICOM {d['peak_mb']:.0f} MB, PNG {p['peak_mb']:.0f} MB, ratio "
          f"{d['peak_mb'] / p['peak_mb']:.2f} (goal within 20 %, under 3 GB)")
    print(f"prepared cache after the DICOM run: {d['cache_files']} files, {d['cache_bytes'] / 1e6:.0f} MB "
          f"(sources: {sum(f.stat().st_size for f in dicom.rglob('*.dcm')) / 1e6:.0f} MB)")
    rates = _loader_rate(d["home"], dicom, args.workers)
    print(f"preparing 1024 px DICOMs for 224 px: {rates['prepare_per_s']:.0f} images/s")
    print(f"loader alone at 224 px, {args.workers} workers, batch 64: {rates['uint8']:.0f} images/s of uint8 "
          f"batches, {rates['normalised']:.0f} images/s flipped and normalised on the CPU (goal >= 1,500)")
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end; "
          f"{time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
