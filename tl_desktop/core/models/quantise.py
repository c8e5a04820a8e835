"""Static int8 quantisation of an ONNX backbone, and the gate that decides whether its features may be used.

The recipe (measured on Lite0 over real photos, docs/benchmarks.md "Linear probe"): QDQ format, per-channel
int8 weights, uint8 activations, MinMax calibration on a few dozen of the user's own training images, the stem
convolution left in float32; on CPUs without VNNI the weights use 7 bits (``reduce_range``) because AVX2's
u8 x s8 multiply-add saturates 16-bit sums (feature cosine 0.80 -> 0.89 here). Entropy and Percentile
calibration, 16-128 calibration images, and leaving the depthwise or last convolutions in float32 measured no
better and quantised up to 12x slower.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RECIPE = "qdq-perchannel-minmax-stemfp32-1"  # part of the int8 embedding cache key: bump when the recipe changes
AGREEMENT_MIN = 0.99     # share of validation images whose prediction must not change
BALANCED_ACC_MAX_DIFF = 0.005  # 0.5 points
MIN_SPEEDUP = 1.1        # int8 must run at least this much faster than fp32, measured on the calibration images
MIN_IMAGES = 2000        # training images to compute below which quantising (5-10 s) cannot pay for itself
CALIBRATION_IMAGES = 32  # 16, 64 and 128 calibrated alike (feature cosine within 0.001)


@contextlib.contextmanager
def quiet_quantizer() -> Iterator[None]:
    """onnxruntime's quantiser logs advice on the root logger and prints calibration notes."""
    class Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "onnxruntime" not in record.pathname

    root = logging.getLogger()
    dropper = Drop()
    root.addFilter(dropper)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.removeFilter(dropper)


def vnni_flags() -> list[str]:
    """The VNNI flags of this CPU from /proc/cpuinfo (``avx512_vnni``, ``avx_vnni``); empty when none or unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return []
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return sorted(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})


def quantise_static(src: Path, dst: Path, calibration: np.ndarray, *, input_name: str = "input") -> None:
    """Write the static int8 version of ``src`` to ``dst``, calibrated on ``calibration`` (N, C, H, W) float32.

    Raises:
        Exception: whatever onnxruntime's quantiser raises for a graph it cannot handle.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([{input_name: calibration[i:i + 8]} for i in range(0, len(calibration), 8)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    convs = [n.name for n in onnx.load(str(src)).graph.node if n.op_type == "Conv"]
    with quiet_quantizer():
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=convs[:1],
                        reduce_range=not vnni_flags())


@dataclass(frozen=True)
class GateResult:
    """The int8 gate's figures on the validation images and its decision."""

    use_int8: bool
    agreement: float          # share of validation images predicted alike
    balanced_acc_fp32: float
    balanced_acc_int8: float
    n_val: int

    def sentence(self) -> str:
        """The decision in words, for a Notice and the run's record."""
        figures = (f"a head trained on them predicted {self.n_val} validation images alike from fp32 and int8 "
                   f"features for {100 * self.agreement:.1f} % of them, balanced accuracy "
                   f"{self.balanced_acc_fp32:.3f} (fp32) vs {self.balanced_acc_int8:.3f} (int8)")
        if self.use_int8:
            return f"int8 features used for training: {figures}"
        return f"int8 features disagreed on {100 * (1 - self.agreement):.1f} % of validation images ({figures}); fp32 used"

    def record(self) -> dict[str, float | int | str]:
        return {"backend": "int8" if self.use_int8 else "fp32", "agreement": round(self.agreement, 4),
                "balanced_acc_fp32": round(self.balanced_acc_fp32, 4),
                "balanced_acc_int8": round(self.balanced_acc_int8, 4), "n_val": self.n_val, "recipe": RECIPE}


def fit_probe(x: np.ndarray, y: np.ndarray, n_classes: int, *, steps: int = 200, seed: int = 0):
    """A linear softmax head on ``x`` fitted to convergence (full-batch L-BFGS); returns a predict function."""
    import torch

    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt, yt = torch.from_numpy((x - mean) / std).float(), torch.from_numpy(y).long()
    head = torch.nn.Linear(x.shape[1], n_classes)
    opt = torch.optim.LBFGS(head.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(xt), yt) + 1e-3 * head.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)

    def predict(features: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return head(torch.from_numpy((features - mean) / std).float()).argmax(1).numpy()
    return predict


def int8_gate(train_int8: np.ndarray, y_train: np.ndarray, val_fp32: np.ndarray, val_int8: np.ndarray,
              y_val: np.ndarray, n_classes: int) -> GateResult:
    """Whether a head trained on int8 features behaves on fp32 features as on the int8 features it learnt from.

    The head is fitted on the int8 training features; its predictions on the fp32 validation features (what the
    exported fp32 backbone computes) are compared with those on the int8 validation features (what it was
    trained with). int8 passes when >= 99 % of predictions agree and balanced accuracy moves <= 0.5 points.
    """
    from sklearn.metrics import balanced_accuracy_score

    predict = fit_probe(train_int8, y_train, n_classes)
    on_fp32, on_int8 = predict(val_fp32), predict(val_int8)
    agreement = float(np.mean(on_fp32 == on_int8)) if len(y_val) else 0.0
    b32 = float(balanced_accuracy_score(y_val, on_fp32)) if len(y_val) else 0.0
    b8 = float(balanced_accuracy_score(y_val, on_int8)) if len(y_val) else 0.0
    ok = bool(len(y_val)) and agreement >= AGREEMENT_MIN and abs(b8 - b32) <= BALANCED_ACC_MAX_DIFF
    return GateResult(ok, agreement, b32, b8, len(y_val))
