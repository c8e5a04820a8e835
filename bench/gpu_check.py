"""GPU check: the engine's training speed against a plain timm loop, the out-of-memory retry, and ONNX parity.

For a machine with one NVIDIA GPU, bounded by ``--deadline`` (default 420 s; each part checks it). Prints, and
writes to ``--json``: the environment (GPU, memory, versions, onnxruntime providers, CPUs); a plain timm loop's
images/s (Lite0, 224 px, AMP bf16 else fp16, channels-last, AdamW, random tensors on the GPU); the engine's
images/s in epoch 2 of ``training.run.train`` on synthetic JPEGs it writes, the ratio engine/plain (goal >= 0.9)
and the loader's share of step time (estimated as 1 - that ratio); softmax parity of onnxruntime's CUDA and CPU
providers with PyTorch on the run exported by ``export.policy.export_run`` (goal max |dp| <= 1e-3); and a real
out-of-memory retry (a ballast tensor leaves too little memory for batch 256; the engine halves the batch until
it fits and trains to the end). A part that cannot run says why; one that fails prints its error.
docs/benchmarks.md ("GPU check") describes each figure.

``--quick`` runs every part on the CPU in well under a minute (32 px, 40 images); the GPU-only parts then say
why they are skipped. tests/test_gpu_check.py runs it so that the script cannot rot.

    python bench/gpu_check.py [--json out.json] [--images 8000] [--batch 128] [--workers N] [--deadline 420]
    python bench/gpu_check.py --quick --json out.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODEL = "tf_efficientnet_lite0"
GOAL_RATIO = 0.9
GOAL_PARITY = 1e-3
OOM_BATCH = 256                 # the batch size the out-of-memory run starts from
OOM_FREE_SHARE = 0.4            # of that batch's activations left free: OOM_BATCH and half of it cannot fit
OOM_RESERVE = 512 * 2**20       # also left free: weights, optimiser, cuDNN workspaces, the evaluation
MIN_LEFT_S = {"engine": 60.0, "onnx": 20.0, "oom": 45.0}  # seconds a full-mode part needs to be started
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class Settings:
    quick: bool
    device: str          # "cuda" or "cpu"
    size: int            # network input, px
    side: int            # the synthetic images' side, px
    images: int
    batch: int
    epochs: int
    workers: int | None  # None: the engine's own default
    plain_seconds: float
    warmup_steps: int


class Deadline:
    """The whole script's time limit, which every part checks before it starts (and training while it runs)."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    @property
    def passed(self) -> bool:
        return self.left() <= 0


def skipped(reason: str, **figures: Any) -> dict[str, Any]:
    return {"status": "skipped", "reason": reason, **figures}


def say(part: str, line: str) -> None:
    print(f"[{part}] {line}", flush=True)


# --- 1. environment ----------------------------------------------------------------------------------------

def environment() -> dict[str, Any]:
    """Versions, GPU model and memory, onnxruntime's providers and the CPU count."""
    import timm
    import torch

    info: dict[str, Any] = {"status": "ok", "python": platform.python_version(), "torch": torch.__version__,
                            "timm": timm.__version__, "cuda": torch.version.cuda,
                            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "gpu": None}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    compute_capability=f"{props.major}.{props.minor}", bf16=torch.cuda.is_bf16_supported())
    try:
        import onnxruntime as ort

        info.update(onnxruntime=ort.__version__, ort_providers=list(ort.get_available_providers()))
    except ImportError:
        info.update(onnxruntime="not installed", ort_providers=[])
    gpu = f"{info['gpu']}, {info['gpu_memory_gib']} GiB" if info["gpu"] else "none (CUDA not available)"
    say("env", f"GPU: {gpu}; CUDA {info['cuda']}, cuDNN {info['cudnn']}")
    say("env", f"torch {info['torch']}, timm {info['timm']}, onnxruntime {info['onnxruntime']} "
               f"(providers: {', '.join(info['ort_providers']) or 'none'}); {info['cpu_count']} CPUs")
    return info


# --- 2. data -----------------------------------------------------------------------------------------------

def _image(index: int, side: int) -> tuple[str, Any]:
    """A distinct photo-like image: a circle (class 'circles') or a square ('squares') on smooth colour noise."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(index)
    label = ("circles", "squares")[index % 2]
    smooth = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((side, side), Image.BICUBIC)
    grain = rng.integers(0, 32, (side, side, 3), dtype=np.uint8)
    image = Image.fromarray(np.maximum(np.asarray(smooth), 32) - grain)
    r = int(rng.integers(side // 8, side // 3))
    cx, cy = (int(v) for v in rng.integers(r, side - r, 2))
    draw = ImageDraw.Draw(image)
    shape = draw.ellipse if label == "circles" else draw.rectangle
    shape([cx - r, cy - r, cx + r, cy + r], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return label, image


def make_dataset(root: Path, n: int, side: int) -> Path:
    """``n`` synthetic JPEGs in two class folders under ``root`` (written by a thread pool)."""
    for label in ("circles", "squares"):
        (root / label).mkdir(parents=True, exist_ok=True)

    def write(index: int) -> None:
        label, image = _image(index, side)
        image.save(root / label / f"{index:06d}.jpg", quality=90)

    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        list(pool.map(write, range(n)))
    return root


# --- 3. the plain timm loop --------------------------------------------------------------------------------

def _amp(device) -> Any:
    import torch

    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _plain_step(s: Settings, device) -> Callable[[], None]:
    """One training step of the loop a PyTorch user writes: timm model, AdamW, autocast, channels-last."""
    import timm
    import torch

    model = timm.create_model(MODEL, pretrained=False, num_classes=2)
    model = model.to(device, memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
    amp = _amp(device)
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    x = torch.randn(s.batch, 3, s.size, s.size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (s.batch,), device=device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = loss_fn(model(x).float(), y)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    return step


def plain_loop(s: Settings) -> dict[str, Any]:
    """images/s of the plain loop on random tensors already on the device, after warm-up; on CUDA also the
    peak activation memory per image (what the out-of-memory part plans with)."""
    import torch

    device = torch.device(s.device)
    step = _plain_step(s, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(s.warmup_steps):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    steps, start = 0, time.perf_counter()
    while steps < 3 or time.perf_counter() - start < s.plain_seconds:
        step()
        steps += 1
    sync()
    rate = steps * s.batch / (time.perf_counter() - start)
    amp = _amp(device)
    out = {"status": "ok", "images_per_s": rate, "steps": steps, "batch": s.batch, "size": s.size,
           "amp": str(amp).removeprefix("torch.") if amp else "off (fp32)", "channels_last": True,
           "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}
    if device.type == "cuda":
        peak, static = torch.cuda.max_memory_allocated(), torch.cuda.memory_allocated()
        out.update(peak_memory_bytes=peak, per_image_bytes=max(1, (peak - static) // s.batch))
    say("plain", f"timm loop, {MODEL}, {s.size} px, batch {s.batch}, AMP {out['amp']}, channels-last: "
                 f"{rate:.1f} images/s ({steps} timed steps after {s.warmup_steps} warm-up)")
    return out


# --- 4. the engine -----------------------------------------------------------------------------------------

def _strategy() -> str:
    """``full`` from the bundled ImageNet weights; ``scratch`` (the same compute, random weights) without them."""
    from tl_desktop.core.models.catalog import offline_weights_available

    return "full" if offline_weights_available(MODEL) else "scratch"


def engine_run(data: Path, out: Path, s: Settings, deadline: Deadline, *, batch: int | None = None,
               epochs: int | None = None) -> dict[str, Any]:
    """Train through ``training.run.train`` and read the figures back from the run folder.

    Training is cancelled (status ``cancelled``) when the deadline passes.
    """
    from tl_desktop.core import runs
    from tl_desktop.core.config import TrainConfig
    from tl_desktop.core.events import CancelToken, Notice
    from tl_desktop.core.fsutil import read_json
    from tl_desktop.core.training.run import train

    notices: list[str] = []
    cancel = CancelToken()

    def callback(event: Any) -> None:
        if isinstance(event, Notice):
            notices.append(event.message)
        if deadline.passed:
            cancel.cancel()

    config = TrainConfig(data=str(data), out=str(out), model=MODEL, strategy=_strategy(), epochs=epochs or s.epochs,
                         image_size=s.size, batch_size=batch or s.batch, device=s.device, patience=0,
                         workers=s.workers)
    start = time.perf_counter()
    result = train(config, callback, cancel)
    history = runs.read_history(out)
    last = out / "checkpoints" / "last.json"  # the loop's state: its batch size after any out-of-memory halving
    final = read_json(last)["loop"]["batch_size"] if last.is_file() else None
    rates = [row["images_per_s"] for row in history]
    return {"status": "cancelled" if result.cancelled else "ok", "strategy": config.strategy,
            "state": runs.read_status(out)["state"], "epochs_run": len(history), "epoch_images_per_s": rates,
            "images_per_s": rates[1] if len(rates) > 1 else (rates[0] if rates else None),
            "final_batch_size": final, "wall_s": time.perf_counter() - start, "notices": notices}


def engine_speed(data: Path, out: Path, s: Settings, deadline: Deadline) -> dict[str, Any]:
    run = engine_run(data, out, s, deadline)
    if run["status"] != "ok":
        raise RuntimeError(f"training was cancelled at the deadline after {run['epochs_run']} epoch(s)")
    shown = ", ".join(f"{r:.1f}" for r in run["epoch_images_per_s"])
    say("engine", f"train(strategy={run['strategy']}, {s.size} px, batch {s.batch}, device {s.device}): "
                  f"{run['images_per_s']:.1f} images/s in epoch 2 (per epoch: {shown}); wall {run['wall_s']:.1f} s")
    return run


def comparison(engine: dict[str, Any], plain: dict[str, Any], loader: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ratio engine/plain, and the loader's share of step time: the time the loader alone needs per image
    (``bench/loader_rate.py``: the engine's own pipeline from the prepared cache, no model) over the plain loop's
    step time per image. It runs in parallel workers, so under 100 % it never makes the network wait."""
    ratio = engine["images_per_s"] / plain["images_per_s"]
    say("ratio", f"engine/plain: {ratio:.2f} (goal >= {GOAL_RATIO}){'' if ratio >= GOAL_RATIO else '  NOT MET'}")
    out = {"status": "ok", "ratio": ratio, "goal": GOAL_RATIO, "met": ratio >= GOAL_RATIO}
    if loader:
        share = plain["images_per_s"] / loader["normalised"]
        say("loader", f"alone: {loader['normalised']:.0f} images/s with {loader['workers']} workers (uint8 batches: "
                      f"{loader['uint8']:.0f}/s); it needs {share:.0%} of the plain loop's step time")
        out.update(loader_share=share, loader_images_per_s=loader["normalised"],
                   loader_uint8_images_per_s=loader["uint8"], loader_workers=loader["workers"],
                   loader_share_method="loader alone (bench/loader_rate.py) against the plain loop, per image")
    return out


def loader_alone(data: Path, s: Settings) -> dict[str, Any]:
    """The engine's loader over the run's (already prepared) images, at the run's size and batch, on its device."""
    import torch

    from bench.loader_rate import loader_rate
    from tl_desktop.core.data.datasets import default_workers

    files = sorted(p for p in data.rglob("*") if p.is_file())
    workers = s.workers if s.workers is not None else default_workers(torch.device(s.device), len(files))
    return loader_rate(files, image_size=s.size, workers=workers, batch=s.batch, device=s.device,
                       seconds=1.0 if s.quick else 5.0)


# --- 5. ONNX parity ----------------------------------------------------------------------------------------

def _export(run_dir: Path, path: Path, provider: str) -> dict[str, Any]:
    """``export_run`` verifying on ``provider``; when that refuses the file (or the provider fails), again
    verifying on the CPU, so that parity can still be measured."""
    from tl_desktop.core.export.policy import export_run

    try:
        result = export_run(run_dir, path, providers=[provider])
        return {"verified_on": result.verification["providers"],
                "export_max_abs_diff": result.verification["max_abs_diff"]}
    except Exception as exc:  # noqa: BLE001 - a refused export or a failing provider: verified on the CPU
        if provider == CPU:
            raise
        say("onnx", f"export refused when verified on {provider}: {exc}")
        result = export_run(run_dir, path, providers=[CPU])
        return {"refused_on": provider, "refusal": str(exc), "verified_on": result.verification["providers"],
                "export_max_abs_diff": result.verification["max_abs_diff"]}


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def parity(path: Path, run_dir: Path, provider: str, limit: int = 32) -> dict[str, Any]:
    """max |p_onnxruntime - p_torch| of softmax(logits) on up to ``limit`` validation images of the run."""
    import torch

    from tl_desktop.core.export.predictor import open_session
    from tl_desktop.core.export.verify import readable
    from tl_desktop.core.models.catalog import eval_transform
    from tl_desktop.core.models.run_model import load_run

    run = load_run(run_dir)
    transform = eval_transform(run.data_config)
    batch = torch.stack([transform(image) for image, _ in readable(run.files("val") + run.files("test"), limit)])
    with torch.inference_mode():
        reference = torch.softmax(run.model.float()(batch), 1).numpy()
    try:
        session = open_session(path, [provider])
    except Exception as exc:  # noqa: BLE001 - a provider whose libraries are missing fails in many ways
        return skipped(f"onnxruntime could not start {provider}: {exc}".splitlines()[0])
    used = list(session.get_providers())
    if used[0] != provider:
        return skipped(f"onnxruntime fell back to {used[0]} when asked for {provider}")
    got = _softmax(session.run(["logits"], {"input": batch.numpy()})[0])
    diff = float(np.abs(got - reference).max())
    say("onnx", f"{provider}: max |dp| {diff:.2e} over {len(batch)} images vs PyTorch fp32 on the CPU "
                f"(goal <= {GOAL_PARITY:g}){'' if diff <= GOAL_PARITY else '  NOT MET'}")
    return {"status": "ok", "max_abs_dp": diff, "n_images": len(batch), "goal": GOAL_PARITY,
            "met": diff <= GOAL_PARITY, "providers": used}


def onnx_parity(run_dir: Path, tmp: Path, s: Settings) -> dict[str, Any]:
    """Export the engine's run, then parity on the CPU provider and, on a GPU machine, the CUDA provider."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    wants_cuda = s.device == "cuda" and CUDA in available
    path = tmp / "gpu_check.onnx"
    out: dict[str, Any] = {"status": "ok", **_export(run_dir, path, CUDA if wants_cuda else CPU)}
    out["cpu"] = parity(path, run_dir, CPU)
    if s.device != "cuda":
        out["cuda"] = skipped("needs CUDA (quick mode runs on the CPU)")
    elif CUDA not in available:
        out["cuda"] = skipped(f"not available in this onnxruntime build ({', '.join(available)} only)")
    else:
        out["cuda"] = parity(path, run_dir, CUDA)
    if out["cuda"]["status"] != "ok":
        say("onnx", f"{CUDA}: skipped: {out['cuda']['reason']}")
    return out


# --- 6. the out-of-memory retry ----------------------------------------------------------------------------

def oom_plan(per_image_bytes: int, free_bytes: int, batch: int = OOM_BATCH) -> dict[str, Any]:
    """The batch to start from, and a ballast leaving free ``OOM_FREE_SHARE`` of its activations (plus
    ``OOM_RESERVE``): ``batch`` and ``batch // 2`` then run out of memory and ``batch // 4`` fits. ``images``
    gives the training split (70 %) more than ``batch`` images, so the first batch is a full one."""
    leave = int(OOM_FREE_SHARE * batch * per_image_bytes) + OOM_RESERVE
    ballast = max(0, free_bytes - leave)
    return {"batch": batch, "per_image_bytes": int(per_image_bytes), "free_bytes": int(free_bytes),
            "ballast_bytes": ballast - ballast % 2**21, "images": int(batch / 0.7) + 8}


def batch_sizes_tried(first: int, final: int | None) -> list[int]:
    """The batch size asked for, then each half the engine retried with down to the one it ended with
    (``final``: None when no epoch finished)."""
    tried = [first]
    while final is not None and tried[-1] > final:
        tried.append(tried[-1] // 2)
    return tried


def oom_retry(tmp: Path, s: Settings, deadline: Deadline, per_image: int | None) -> dict[str, Any]:
    """Train under a ballast that leaves too little memory for the batch; report the sizes tried and the end."""
    if s.device != "cuda":
        example = oom_plan(30 * 2**20, 8 * 2**30)  # the planning code runs on the CPU too, on made-up figures
        return skipped("needs CUDA", plan_example=example, tried_example=batch_sizes_tried(example["batch"], 64))
    import torch

    if not per_image:
        return skipped("the plain loop measured no memory per image")
    gc.collect()  # the earlier runs' models and optimisers, so that their memory is really free
    torch.cuda.empty_cache()
    plan = oom_plan(per_image, torch.cuda.mem_get_info()[0])
    data = make_dataset(tmp / "oom-data", plan["images"], s.side)
    ballast = torch.empty(plan["ballast_bytes"], dtype=torch.uint8, device="cuda") if plan["ballast_bytes"] else None
    say("oom", f"{plan['ballast_bytes'] / 2**30:.1f} GiB ballast leaves {torch.cuda.mem_get_info()[0] / 2**30:.2f} "
               f"GiB free; batch {plan['batch']} needs about {plan['batch'] * per_image / 2**30:.2f} GiB of "
               "activations")
    try:
        run = engine_run(data, tmp / "oom-run", s, deadline, batch=plan["batch"], epochs=2)
    finally:
        del ballast
        torch.cuda.empty_cache()
    tried = batch_sizes_tried(plan["batch"], run["final_batch_size"])
    continued = run["state"] == "finished" and run["epochs_run"] == 2
    say("oom", f"batch sizes tried: {' -> '.join(map(str, tried))}; out-of-memory retries: {len(tried) - 1}; "
               f"training continued to the end: {'yes' if continued else 'no'} ({run['epochs_run']} epochs, "
               f"state {run['state']})")
    return {"status": "ok", "plan": plan, "batch_sizes_tried": tried, "retries": len(tried) - 1,
            "continued_to_end": continued, "epochs_run": run["epochs_run"], "state": run["state"],
            "notices": [n for n in run["notices"] if "memory" in n], "final_batch_size": run["final_batch_size"]}


# --- driver ------------------------------------------------------------------------------------------------

def run_part(name: str, fn: Callable[[], dict[str, Any]], deadline: Deadline, results: dict[str, Any],
             needs: tuple[str, ...] = (), min_left: float = 0.0) -> dict[str, Any]:
    """Run one part unless too little time is left or a part it needs did not succeed; a failure becomes a
    line and a ``failed`` status, and the script goes on."""
    missing = [n for n in needs if results.get(n, {}).get("status") != "ok"]
    if missing:
        results[name] = skipped(f"needs the {', '.join(missing)} part, which did not succeed")
    elif deadline.left() <= min_left:
        results[name] = skipped(f"the deadline: {max(0.0, deadline.left()):.0f} s left, {min_left:.0f} s needed")
    else:
        try:
            results[name] = fn()
        except Exception as exc:  # noqa: BLE001 - every part reports its failure and the script goes on
            results[name] = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    if results[name]["status"] != "ok":
        say(name, f"{results[name]['status']}: {results[name]['reason']}")
    return results[name]


def settings(args: argparse.Namespace) -> Settings:
    if args.quick:
        return Settings(quick=True, device="cpu", size=32, side=48, images=args.images or 40, batch=args.batch or 8,
                        epochs=2, workers=0, plain_seconds=1.0, warmup_steps=1)
    return Settings(quick=False, device="cuda", size=224, side=256, images=args.images or 8000,
                    batch=args.batch or 128, epochs=2, workers=args.workers, plain_seconds=5.0, warmup_steps=15)


def check(s: Settings, deadline: Deadline, tmp: Path) -> dict[str, Any]:
    """Every part in order, each result (with its status) under its name."""
    import torch

    if s.quick:
        torch.set_num_threads(1)  # a rot check, not a measurement: one thread stays fast on a busy machine
    results: dict[str, Any] = {"mode": "quick" if s.quick else "full", "settings": asdict(s), "model": MODEL}
    run_part("environment", environment, deadline, results)
    if s.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU is usable here (torch.cuda.is_available() is False): run with --quick for the CPU "
              "check", file=sys.stderr)
        raise SystemExit(2)

    def data() -> dict[str, Any]:
        start = time.perf_counter()
        make_dataset(tmp / "data", s.images, s.side)
        seconds = time.perf_counter() - start
        say("data", f"{s.images} synthetic images ({s.side} px JPEG, 2 classes) written in {seconds:.1f} s")
        return {"status": "ok", "images": s.images, "side": s.side, "seconds": seconds}

    least = {name: 0.0 if s.quick else seconds for name, seconds in MIN_LEFT_S.items()}
    run_part("data", data, deadline, results)
    run_part("plain", lambda: plain_loop(s), deadline, results)
    run_part("engine", lambda: engine_speed(tmp / "data", tmp / "run", s, deadline), deadline, results, ("data",),
             least["engine"])
    run_part("loader", lambda: {"status": "ok", **loader_alone(tmp / "data", s)}, deadline, results, ("engine",))
    run_part("comparison", lambda: comparison(results["engine"], results["plain"], results.get("loader")),
             deadline, results, ("engine", "plain"))
    run_part("onnx", lambda: onnx_parity(tmp / "run", tmp, s), deadline, results, ("engine",), least["onnx"])
    run_part("oom", lambda: oom_retry(tmp, s, deadline, results["plain"].get("per_image_bytes")), deadline,
             results, min_left=least["oom"])
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny CPU run of every part (the test suite's)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--deadline", type=float, default=420.0, help="seconds for the whole check (default 420)")
    parser.add_argument("--images", type=int, help="synthetic images (default 8000; quick 40)")
    parser.add_argument("--batch", type=int, help="batch size of both loops (default 128; quick 8)")
    parser.add_argument("--workers", type=int, help="the engine's loader workers (default: its own choice)")
    args = parser.parse_args(argv)
    deadline = Deadline(args.deadline)
    tmp = Path(tempfile.mkdtemp(prefix="tl-gpu-check-"))
    os.environ.setdefault("TL_DESKTOP_HOME", str(tmp / "home"))  # never the user's cache or settings
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    try:
        results = check(settings(args), deadline, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["wall_s"] = time.perf_counter() - started
    print(f"done in {results['wall_s']:.0f} s (deadline {args.deadline:.0f} s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    return 1 if any(isinstance(p, dict) and p.get("status") == "failed" for p in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
