"""Hostile .onnx files: metadata that disagrees with the graph, absurd sizes, NaN outputs, fixed batch sizes.

The models are built here with onnx.helper (a global average pool and a 3 x k matrix, then softmax), so the
tests need no training and each file differs from a good one in exactly one way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.helpers import write_digits_folder
from tl_desktop.core.errors import PredictorError
from tl_desktop.core.export.predictor import OnnxPredictor

REPO = Path(__file__).resolve().parents[3]
GOOD_META = {
    "class_names": json.dumps(["a", "b", "c"]), "input_size": "[3, 32, 32]", "resize_size": "36",
    "crop_mode": "center", "crop_pct": "0.875", "interpolation": "bicubic",
    "mean": "[0.5, 0.5, 0.5]", "std": "[0.5, 0.5, 0.5]",
}


def _model(path: Path, *, side: int = 32, classes: int = 3, batch: int | str = "N", nan: bool = False,
           **meta_changes: str | None) -> Path:
    weights = np.random.default_rng(0).normal(size=(3, classes)).astype(np.float32)
    scale = np.float32(0.0 if nan else 1.0)
    nodes = [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("MatMul", ["flat", "w"], ["raw"]),
             helper.make_node("Mul", ["raw", "scale"], ["scaled"]),
             helper.make_node("Div", ["scaled", "scale"], ["logits"]),   # 0 / 0 = NaN when nan=True
             helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, side, side])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [batch, classes])],
        [helper.make_tensor("w", TensorProto.FLOAT, weights.shape, weights.ravel()),
         helper.make_tensor("scale", TensorProto.FLOAT, [], [scale])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {**GOOD_META, **meta_changes}
    for key, value in meta.items():
        if value is not None:
            model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return write_digits_folder(tmp_path_factory.mktemp("imgs"), classes=(0, 1), per_class=5, size=40)


def test_a_good_model_predicts(tmp_path, images):
    found = OnnxPredictor(_model(tmp_path / "good.onnx")).predict([images])
    assert len(found) == 10 and not any(p.error for p in found)
    assert all(abs(sum(p.probabilities) - 1) < 1e-5 for p in found)


def test_a_fixed_batch_size_is_fed_in_chunks_with_the_same_answers(tmp_path, images):
    dynamic = OnnxPredictor(_model(tmp_path / "d.onnx")).predict([images], batch_size=7)
    fixed = OnnxPredictor(_model(tmp_path / "f.onnx", batch=4)).predict([images], batch_size=7)
    assert len(fixed) == 10 and [p.label for p in fixed] == [p.label for p in dynamic]
    np.testing.assert_allclose([p.probabilities for p in fixed], [p.probabilities for p in dynamic], atol=1e-6)


BAD = {
    "resize of a million px": (dict(resize_size="1000000"), "resize_size=1e+06 is outside 32..64"),
    "64 px declared on a 32 px graph": (dict(input_size="[3, 64, 64]", resize_size="73"),
                                        "says 64 px but the model's input is 32 x 32"),
    "one class name for three outputs": (dict(class_names='["only"]'), "names 1 classes but the model has 3"),
    "threshold abc": (dict(positive_class="a", decision_threshold="abc"), "decision_threshold='abc' is not a number"),
    "threshold above 1": (dict(positive_class="a", decision_threshold="7"), "decision_threshold=7 is outside 0..1"),
    "positive class unknown": (dict(positive_class="zebra", decision_threshold="0.5"), "positive_class is not one"),
    "mean of two values": (dict(mean="[0.5, 0.5]"), "mean must be three finite numbers"),
    "std of zero": (dict(std="[0.5, 0, 0.5]"), "std must be three finite numbers above 0"),
    "nan in mean": (dict(mean="[NaN, 0.5, 0.5]"), "mean must be three finite numbers"),
    "class names not json": (dict(class_names="[a, b"), "class_names is not valid JSON"),
    "repeated class names": (dict(class_names='["a", "a", "b"]'), "repeats a name"),
    "no resize size": (dict(resize_size=None), "no resize_size"),
    "exotic interpolation": (dict(interpolation="magic"), "interpolation is not one tl-desktop writes"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_metadata_that_cannot_be_trusted_is_refused_in_one_line(tmp_path, case):
    changes, message = BAD[case]
    with pytest.raises(PredictorError) as info:
        OnnxPredictor(_model(tmp_path / "bad.onnx", **changes))
    text = str(info.value)
    assert message in text and "\n" not in text and text.startswith("bad.onnx: ")


def test_nan_outputs_become_per_image_errors_not_nan_rows(tmp_path, images):
    found = OnnxPredictor(_model(tmp_path / "nan.onnx", nan=True)).predict([images])
    assert found and all(p.error and "NaN" in p.error and p.label is None for p in found)


def _cli_predict(model: Path, images: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess, int]:
    """The CLI's predict in a child process; (result, the child's own peak memory in KiB)."""
    # VmHWM, not ru_maxrss: Linux carries the parent's peak across fork + exec into ru_maxrss
    code = ("import sys\nfrom tl_desktop.cli import main\nrc = main(sys.argv[1:])\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
            "print('PEAK', hwm, file=sys.stderr)\nsys.exit(rc)")
    env = dict(os.environ, TL_DESKTOP_HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code, "predict", str(model), str(images)],
                          capture_output=True, text=True, env=env, timeout=300)
    lines = proc.stderr.strip().splitlines()
    peak = int(lines[-1].split()[1])
    proc.stderr = "\n".join(lines[:-1])
    return proc, peak


def test_cli_refuses_a_crafted_model_in_one_line_with_little_memory(tmp_path, images):
    proc, peak_kib = _cli_predict(_model(tmp_path / "huge.onnx", resize_size="1000000"), images, tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 0 and "resize_size" in proc.stderr
    assert peak_kib < 1024 * 1024, peak_kib  # under 1 GB (it grew to 18.9 GB before the checks)


def test_cli_on_a_model_giving_nan_exits_2_without_nan_rows(tmp_path, images):
    proc, _ = _cli_predict(_model(tmp_path / "nan.onnx", nan=True), images, tmp_path)
    assert proc.returncode == 2 and "nan" not in proc.stdout.lower().replace("nan or infinite", "")
    assert "Traceback" not in proc.stderr
