"""``tl-desktop --self-test``: the whole engine on a tiny sample, offline, headless, in seconds.

It proves an installation (above all a frozen one) can do what users install it for: decode images, load the
bundled ImageNet weights, train, export a verified ONNX file and predict with it. No Qt is imported, so it runs
on a machine with no screen and in CI. Each step prints one line with its figures and time; the last line
starts with ``PASS`` (exit code 0) or ``FAIL: <reason>`` (exit code 1).

The report also goes to ``<log dir>/self-test.log``: a windowed frozen app has no console (``sys.stdout`` is
None), and a user who double-clicks a shortcut with ``--self-test`` can still send that file to support.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from tl_desktop import __version__

# Four digits that look unlike each other, 24 images each, written as 32 px PNGs.
SAMPLE_CLASSES = (0, 1, 4, 7)
PER_CLASS = 24
IMAGE_SIZE = 32
MODEL = "tf_efficientnet_lite0"
# Chance is 25 %; the linear probe on ImageNet features gets well above it after one epoch.
MIN_ACCURACY = 0.6
MIN_AGREEMENT = 0.95


class SelfTestFailure(Exception):
    """A check failed; ``str()`` is the one-line reason printed after ``FAIL:``."""


class _Report:
    """Writes each line to stdout (when there is one) and to the log file, flushing as it goes."""

    def __init__(self, log_file: Path | None) -> None:
        self.streams: list[TextIO] = []
        stdout = sys.stdout
        if stdout is not None:
            self.streams.append(stdout)
        self._file = None
        if log_file is not None:
            with contextlib.suppress(OSError):
                self._file = open(log_file, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
                self.streams.append(self._file)

    def line(self, text: str) -> None:
        for stream in self.streams:
            with contextlib.suppress(OSError, ValueError):
                stream.write(text + "\n")
                stream.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def write_sample(root: Path, classes: tuple[int, ...] = SAMPLE_CLASSES, per_class: int = PER_CLASS,
                 size: int = IMAGE_SIZE) -> int:
    """Write scikit-learn's digits of ``classes`` as ``root/digit_<k>/<k>_<i>.png``; returns the count.

    Same look as the sample project (dark ink on white, upscaled), restricted to a few classes.
    """
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    written = 0
    for label in classes:
        folder = root / f"digit_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        images = digits.images[digits.target == label][:per_class]
        for index, img in enumerate(images):
            arr = (255 - img / 16.0 * 255).astype(np.uint8)
            Image.fromarray(arr, mode="L").resize((size, size), Image.BILINEAR).save(folder / f"{label}_{index:03d}.png")
            written += 1
    return written


@contextlib.contextmanager
def _private_home(home: Path) -> Iterator[None]:
    """Point every user folder (embedding cache, salt, ...) at ``home`` so a rerun never hits a warm cache."""
    old = os.environ.get("TL_DESKTOP_HOME")
    os.environ["TL_DESKTOP_HOME"] = str(home)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TL_DESKTOP_HOME", None)
        else:
            os.environ["TL_DESKTOP_HOME"] = old


def _step(report: _Report, name: str, work: Callable[[], tuple[Any, str]]) -> Any:
    start = time.perf_counter()
    value, figures = work()
    report.line(f"[{name}] {figures} ({time.perf_counter() - start:.1f} s)")
    return value


def _sample(data: Path) -> tuple[int, str]:
    count = write_sample(data)
    if count != len(SAMPLE_CLASSES) * PER_CLASS:
        raise SelfTestFailure(f"wrote {count} sample images instead of {len(SAMPLE_CLASSES) * PER_CLASS}")
    return count, f"{count} digit images, {len(SAMPLE_CLASSES)} classes, {IMAGE_SIZE} px PNG"


def _load_engine() -> tuple[None, str]:
    """Import the heavy libraries (the usual place a frozen build breaks) and find the bundled weights."""
    import onnxruntime
    import timm
    import torch
    import torchvision

    from tl_desktop.core.models.catalog import offline_weights_path

    weights = offline_weights_path(MODEL)
    if weights is None:
        raise SelfTestFailure(f"the bundled ImageNet weights for {MODEL} are missing")
    # torchvision's C++ operators: a frozen build without its _C_stable library dies here (packaging/hooks).
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    kept = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist()
    if kept != [0, 2]:
        raise SelfTestFailure(f"torchvision.ops.nms kept boxes {kept} instead of [0, 2]")
    return None, (f"torch {torch.__version__}, torchvision {torchvision.__version__} (C++ ops ok), "
                  f"timm {timm.__version__}, onnxruntime {onnxruntime.__version__}; weights {weights.name}")


def _train(data: Path, out: Path) -> tuple[Any, str]:
    from tl_desktop.core.events import CancelToken
    from tl_desktop.core.training.run import TrainConfig
    from tl_desktop.workers.child import run_in_child

    config = TrainConfig(data=str(data), out=str(out), model=MODEL, strategy="linear-probe", epochs=1,
                         image_size=IMAGE_SIZE, batch_size=8, augmentation="none", workers=0, device="cpu",
                         seed=0, patience=1)
    # in a child process, as the window trains (workers.child: spawn, which a frozen build must support)
    result = run_in_child("tl_desktop.core.training.run:train", config, callback=lambda event: None,
                          cancel=CancelToken())
    if result.cancelled:
        raise SelfTestFailure("training stopped before the end of its epoch")
    metrics = result.test_metrics or {}
    accuracy = metrics.get("accuracy")
    if accuracy is None:
        raise SelfTestFailure(f"training wrote no test accuracy (metrics: {sorted(metrics)})")
    return result, f"linear probe, 1 epoch, {IMAGE_SIZE} px, in a child process: test accuracy {accuracy:.3f}"


def _export(run_dir: Path, onnx_path: Path) -> tuple[Any, str]:
    from tl_desktop.core.export.onnx_export import export_onnx

    result = export_onnx(run_dir, onnx_path)
    v = result.verification
    if not v.get("passed"):
        raise SelfTestFailure(f"ONNX verification failed: max |prob diff| {v.get('max_abs_diff')}")
    size_mb = onnx_path.stat().st_size / 1e6
    return result, (f"ONNX {size_mb:.1f} MB verified on {v['n_images']} images: max |prob diff| "
                    f"{v['max_abs_diff']:.2e}, top-1 agreement with PyTorch {v['top1_agreement']:.3f}")


def _torch_top1(run_dir: Path, files: list[Path]) -> list[int]:
    import torch

    from tl_desktop.core.data.decode import load_image
    from tl_desktop.core.models.catalog import eval_transform
    from tl_desktop.core.models.run_model import load_run

    run = load_run(run_dir)
    transform = eval_transform(run.data_config)
    batch = torch.stack([transform(load_image(path)) for path in files])
    with torch.inference_mode():
        return run.model(batch).argmax(1).tolist()


def _predict(run_dir: Path, onnx_path: Path, data: Path) -> tuple[Any, str]:
    from tl_desktop.core.export.predictor import OnnxPredictor, expand_paths

    predictor = OnnxPredictor(onnx_path)
    files = expand_paths([data])
    predictions = predictor.predict(files)
    errors = [p for p in predictions if p.error]
    if errors:
        raise SelfTestFailure(f"predictor could not read {errors[0].path}: {errors[0].error}")
    truth = [path.parent.name for path in files]
    accuracy = sum(p.label == t for p, t in zip(predictions, truth, strict=True)) / len(files)
    reference = _torch_top1(run_dir, files)
    agreement = sum(predictor.class_names[r] == p.label
                    for r, p in zip(reference, predictions, strict=True)) / len(files)
    if accuracy < MIN_ACCURACY:
        raise SelfTestFailure(f"predictor accuracy {accuracy:.3f} on the sample is below {MIN_ACCURACY} "
                              f"(chance {1 / len(predictor.class_names):.2f})")
    if agreement < MIN_AGREEMENT:
        raise SelfTestFailure(f"predictor top-1 agrees with PyTorch on only {agreement:.3f} of the images")
    return (accuracy, agreement), (f"OnnxPredictor on {len(files)} images: accuracy {accuracy:.3f} "
                                   f"(chance {1 / len(predictor.class_names):.2f}), top-1 agreement with "
                                   f"PyTorch {agreement:.3f}, providers {','.join(predictor.providers)}")


def _run(report: _Report, work: Path) -> str:
    data, run_dir, onnx_path = work / "images", work / "run", work / "model.onnx"
    _step(report, "sample", lambda: _sample(data))
    _step(report, "engine", _load_engine)
    result = _step(report, "train", lambda: _train(data, run_dir))
    exported = _step(report, "export", lambda: _export(Path(result.run_dir), onnx_path))
    accuracy, agreement = _step(report, "predict", lambda: _predict(Path(result.run_dir), onnx_path, data))
    return (f"test accuracy {result.test_metrics['accuracy']:.3f}, sample accuracy {accuracy:.3f}, "
            f"max |prob diff| {exported.verification['max_abs_diff']:.1e}, predictor agreement {agreement:.3f}")


def _log_file() -> Path | None:
    try:
        from tl_desktop import paths

        return paths.log_dir() / "self-test.log"
    except OSError:
        return None


def run_self_test() -> int:
    """Run the self-test; returns the process exit code (0 PASS, 1 FAIL)."""
    report = _Report(_log_file())
    started = time.perf_counter()
    report.line(f"tl-desktop {__version__} self-test (Python {sys.version.split()[0]}, {sys.platform}, "
                f"frozen={bool(getattr(sys, 'frozen', False))})")
    try:
        with tempfile.TemporaryDirectory(prefix="tl-desktop-selftest-") as tmp, _private_home(Path(tmp) / "home"):
            figures = _run(report, Path(tmp))
    except SelfTestFailure as exc:
        report.line(f"FAIL: {exc}")
        return _close(report, 1)
    except Exception as exc:  # noqa: BLE001 - any error is a failed self-test, reported in one line
        detail = io.StringIO()
        traceback.print_exc(file=detail)
        for text in detail.getvalue().rstrip().splitlines():
            report.line(f"  {text}")
        first = (str(exc).strip().splitlines() or [""])[0]
        report.line(f"FAIL: {type(exc).__name__}: {first}")
        return _close(report, 1)
    report.line(f"PASS in {time.perf_counter() - started:.1f} s: {figures}")
    return _close(report, 0)


def _close(report: _Report, code: int) -> int:
    report.close()
    return code
