"""Inference speed on CPU: onnxruntime vs PyTorch eager, and end-to-end folder prediction vs the bare session.

Usage: python bench/inference_latency.py [--repeats 20] [--files 200]

1. EfficientNet-Lite0 (ImageNet weights, 3-class head) at 224 px, batch 1 and 32: median latency of
   PyTorch eager (inference_mode) and of the exported onnxruntime session, and their ratio
   (goal: onnxruntime <= 0.5x PyTorch at batch 1).
2. ~200 real photos (scikit-image samples and crops, JPEG) in a folder: images/s of OnnxPredictor.predict
   (decode + preprocess + inference, overlapped) as a ratio of the bare session's images/s on ready tensors
   (goal >= 0.7).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _median_s(fn, repeats: int) -> float:
    fn()  # warm-up (oneDNN primitives, ORT arena)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def export_lite0(folder: Path) -> Path:
    """A real run folder (Lite0, ImageNet weights, 3-class head, 224 px) exported through the app."""
    from tests.helpers import write_digits_folder
    from tl_desktop.core import runs
    from tl_desktop.core.export.onnx_export import export_onnx
    from tl_desktop.core.fsutil import atomic_write_json
    from tl_desktop.core.models import catalog as models

    data = write_digits_folder(folder / "digits", per_class=6, size=64)
    files = [{"path": p.relative_to(data).as_posix(), "label": p.parent.name, "sha256": "-",
              "subset": ("train", "val", "test")[i % 3]} for i, p in enumerate(sorted(data.rglob("*.png")))]
    run = folder / "run"
    model = models.create_model("tf_efficientnet_lite0", 3)
    runs.save_checkpoint(run, "best", model, {"epoch": 0})
    atomic_write_json(run / "manifest.json", {"root": str(data), "files": files})
    atomic_write_json(run / "config.json", {
        "model": "tf_efficientnet_lite0", "class_names": ["digit_0", "digit_1", "digit_2"],
        "data_config": models.data_config(model), "weights_source": models.weights_source("tf_efficientnet_lite0")})
    return export_onnx(run, folder / "lite0.onnx").path


def latency(onnx_path: Path, repeats: int) -> list[dict]:
    import torch

    from tl_desktop.core.export.predictor import open_session
    from tl_desktop.core.models import run_model

    model = run_model.load_run(onnx_path.parent / "run").model
    session = open_session(onnx_path, ["CPUExecutionProvider"])
    rows = []
    for batch in (1, 32):
        x = torch.randn(batch, 3, 224, 224)
        with torch.inference_mode():
            t_torch = _median_s(lambda x=x: model(x), repeats if batch == 1 else max(3, repeats // 4))
        xn = x.numpy()
        t_ort = _median_s(lambda xn=xn: session.run(["probabilities"], {"input": xn}),
                          repeats if batch == 1 else max(3, repeats // 4))
        rows.append({"batch": batch, "torch_ms": 1e3 * t_torch, "ort_ms": 1e3 * t_ort, "ratio": t_ort / t_torch})
    return rows


def end_to_end(onnx_path: Path, folder: Path, n_files: int) -> dict:
    from tests.onnx_run import write_photos
    from tl_desktop.core.export.predictor import OnnxPredictor

    photos = folder / "photos"
    per_copy = len(write_photos(photos / "probe", copies=1))
    write_photos(photos, copies=max(1, (n_files - per_copy) // per_copy))
    predictor = OnnxPredictor(onnx_path, ["CPUExecutionProvider"])
    files = sorted(photos.rglob("*.jpg"))
    ready = np.stack([predictor.load(p) for p in files[:32]])
    predictor.run(ready)
    n_batches = max(1, len(files) // 32)
    start = time.perf_counter()
    for _ in range(n_batches):
        predictor.run(ready)
    bare = 32 * n_batches / (time.perf_counter() - start)
    predictor.predict(files[:32])  # warm-up of the decode pool
    start = time.perf_counter()
    results = predictor.predict([photos], batch_size=32)
    e2e = len(results) / (time.perf_counter() - start)
    assert not any(r.error for r in results)
    start = time.perf_counter()
    for p in files:
        predictor.load(p)
    decode = len(files) / (time.perf_counter() - start)
    return {"files": len(results), "bare_img_s": bare, "e2e_img_s": e2e, "ratio": e2e / bare,
            "decode_only_img_s_one_thread": decode}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--files", type=int, default=200)
    args = parser.parse_args()
    import onnxruntime
    import torch

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}; "
          f"load average before: {os.getloadavg()[0]:.1f} (other work on the machine skews PyTorch most)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        onnx_path = export_lite0(folder)
        for row in latency(onnx_path, args.repeats):
            print(f"Lite0 224 px batch {row['batch']:>2}: PyTorch eager {row['torch_ms']:7.1f} ms, "
                  f"onnxruntime {row['ort_ms']:7.1f} ms, ratio {row['ratio']:.2f}")
        e2e = end_to_end(onnx_path, folder, args.files)
        print(f"folder of {e2e['files']} JPEG photos: bare session {e2e['bare_img_s']:.1f} img/s, "
              f"end to end {e2e['e2e_img_s']:.1f} img/s, ratio {e2e['ratio']:.2f} "
              f"(decode+preprocess alone, one thread: {e2e['decode_only_img_s_one_thread']:.0f} img/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
