"""Linear-probe feature extraction: the engine against a bare onnxruntime session, fp32 and int8, one run.

Prints the CPU's VNNI flags, the bare fp32 session's images/s on ready tensors, the engine's extraction
images/s (decode + preprocess + session; goal >= 0.9 of the bare session), the int8 backbone's images/s
(goal >= 1.8x fp32 on a CPU with VNNI), the int8 features' cosine to fp32 and the probe gate's figures.
Each rate is the best of ``--repeats`` alternating passes, so load from other jobs hits both sides alike.

    .venv/bin/python bench/probe_speed.py [--images 320] [--repeats 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_images(root: Path, n: int) -> tuple[list[Path], np.ndarray]:
    """Real pictures, six classes: crops of scikit-image photos (2 classes) and upscaled digits 0-3 (JPEG)."""
    from sklearn.datasets import load_digits

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from train_throughput import make_photos

    make_photos(root, n // 2, side=320)
    digits = load_digits()
    for cls in range(4):
        (root / f"digit_{cls}").mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(digits.images[digits.target == cls][: n // 8]):
            arr = (img / 16.0 * 255).astype(np.uint8)
            Image.fromarray(arr).convert("RGB").resize((320, 320), Image.BILINEAR).save(
                root / f"digit_{cls}" / f"{i:04d}.jpg", quality=90)
    paths = sorted(root.rglob("*.jpg"))
    names = sorted({p.parent.name for p in paths})
    return paths, np.array([names.index(p.parent.name) for p in paths])


def session_rate(session, ready: np.ndarray, batch: int = 32) -> float:
    start = time.perf_counter()
    for s in range(0, len(ready), batch):
        session.run(None, {"input": ready[s:s + batch]})
    return len(ready) / (time.perf_counter() - start)


def engine_rate(model, cfg, paths, shas, tmp: Path, n: int, int8=None) -> float:
    """images/s of ``extract`` with a fresh embedding cache (the session already built and reused)."""
    from tl_desktop.core.models.embeddings import EmbeddingCache, extract

    _, info = extract(model, cfg, paths, shas, cache=EmbeddingCache(tmp / f"cache-{n}-{int8 is not None}.sqlite"),
                      int8=int8)
    return float(info["images_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tl-probe-bench-"))
    os.environ.setdefault("TL_DESKTOP_HOME", str(tmp / "home"))
    try:
        run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, tmp: Path) -> None:
    import torch

    from tl_desktop.core.models import embeddings, quantise
    from tl_desktop.core.models.catalog import create_model, data_config
    from tl_desktop.core.models.embeddings import Calibration, EmbeddingCache, extract
    from tl_desktop.core.models.onnx_tools import cpu_session

    quantise.MIN_SPEEDUP = 0.0  # measure int8 whatever its speed
    paths, labels = make_images(tmp / "images", args.images)
    shas = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    print(f"CPU: {os.cpu_count()} cores, VNNI flags in /proc/cpuinfo: {', '.join(quantise.vnni_flags()) or 'none'}; "
          f"torch threads {torch.get_num_threads()}; {len(paths)} images (6 classes), Lite0 at 224 px, batch 32")
    model = create_model("tf_efficientnet_lite0", 6)
    cfg = data_config(model, 224)
    load = embeddings._loader(cfg)
    ready = np.stack([load(p) for p in paths])
    start = time.perf_counter()
    fp32, info = extract(model, cfg, paths, shas, cache=EmbeddingCache(tmp / "first.sqlite"))
    print(f"first extraction in this process (backbone export + check included): {info['images_per_s']:.0f} img/s "
          f"({time.perf_counter() - start:.1f} s, {info['backend']})")
    runner = next(iter(embeddings._RUNNERS.values()))
    bare = cpu_session(runner.path)
    train, val = np.arange(len(paths)) % 4 != 0, np.arange(len(paths)) % 4 == 0
    calibration = Calibration.sample([p for p, t in zip(paths, train, strict=True) if t],
                                     [s for s, t in zip(shas, train, strict=True) if t], quantise.CALIBRATION_IMAGES)
    start = time.perf_counter()
    int8, _ = extract(model, cfg, paths, shas, cache=EmbeddingCache(tmp / "int8.sqlite"), int8=calibration)
    print(f"int8 quantisation ({len(calibration.paths)} calibration images) + first int8 extraction: "
          f"{time.perf_counter() - start:.1f} s")
    quantised = cpu_session(next(runner.path.parent.glob("*-int8.onnx")), quiet=True)
    rates: dict[str, list[float]] = {"bare fp32": [], "engine fp32": [], "bare int8": [], "engine int8": []}
    session_rate(bare, ready[:32])
    session_rate(quantised, ready[:32])
    for n in range(args.repeats):
        rates["bare fp32"].append(session_rate(bare, ready))
        rates["engine fp32"].append(engine_rate(model, cfg, paths, shas, tmp, n))
        rates["bare int8"].append(session_rate(quantised, ready))
        rates["engine int8"].append(engine_rate(model, cfg, paths, shas, tmp, n, calibration))
    best = {k: max(v) for k, v in rates.items()}
    for k, v in rates.items():
        print(f"{k:12s}: best {best[k]:.0f} img/s (passes: {', '.join(f'{r:.0f}' for r in v)})")
    print(f"engine / bare fp32: {best['engine fp32'] / best['bare fp32']:.2f} (goal >= 0.9)")
    print(f"int8 / fp32: bare {best['bare int8'] / best['bare fp32']:.2f}x, engine "
          f"{best['engine int8'] / best['engine fp32']:.2f}x (goal >= 1.8x with VNNI)")
    cos = np.sum(fp32 * int8, 1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(int8, axis=1)
    print(f"feature cosine int8 vs fp32: mean {cos.mean():.3f}, min {cos.min():.3f}")
    gate = quantise.int8_gate(int8[train], labels[train], fp32[val], int8[val], labels[val], 6)
    print(f"engine's gate -> {'int8' if gate.use_int8 else 'fp32'}: {gate.sentence()}")
    from sklearn.metrics import balanced_accuracy_score

    on_fp32 = quantise.fit_probe(fp32[train], labels[train], 6)(fp32[val])
    on_int8 = quantise.fit_probe(int8[train], labels[train], 6)(fp32[val])
    print(f"reference (needs fp32 training features, which the engine avoids): heads trained on fp32 vs int8 "
          f"features agree on {100 * np.mean(on_fp32 == on_int8):.1f} % of fp32 validation features, balanced "
          f"accuracy {balanced_accuracy_score(labels[val], on_fp32):.3f} vs "
          f"{balanced_accuracy_score(labels[val], on_int8):.3f}")


if __name__ == "__main__":
    main()
