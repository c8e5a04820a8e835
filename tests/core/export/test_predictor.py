"""OnnxPredictor: the app's numpy preprocessing equals timm's eval transform; per-file errors; bad models."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.onnx_run import exported, photos
from tl_desktop.core.errors import PredictorError
from tl_desktop.core.export.predictor import OnnxPredictor, expand_paths
from tl_desktop.core.models import catalog as models
from tl_desktop.core.models.preprocessing import Preprocessing


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory, digits_dir):
    return exported(tmp_path_factory, digits_dir).path


CONFIGS = {
    "lite0 224 bicubic": models.data_config("tf_efficientnet_lite0"),
    "lite0 at 32 px": models.data_config("tf_efficientnet_lite0", 32),
    "lite2 260": models.data_config("tf_efficientnet_lite2"),
    "resnet18 bilinear 0.95": {**models.data_config("resnet18"), "interpolation": "bilinear", "crop_pct": 0.95},
    "crop_pct 1.0": {**models.data_config("tf_efficientnet_lite0", 64), "crop_pct": 1.0},
    "squash": {**models.data_config("tf_efficientnet_lite0", 96), "crop_mode": "squash"},
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_preprocessing_equals_the_training_eval_transform_on_real_photos(name):
    cfg = CONFIGS[name]
    ours, timm_eval = Preprocessing.from_data_config(cfg), models.eval_transform(cfg)
    for label, image in photos().items():
        expected = timm_eval(image).numpy()
        got = ours(image)
        assert got.shape == expected.shape == tuple(cfg["input_size"]), label
        assert got.dtype == np.float32
        assert np.abs(got - expected).max() <= 1e-5, (name, label, float(np.abs(got - expected).max()))


def test_unsupported_preprocessing_is_refused_in_words():
    with pytest.raises(ValueError, match="crop mode 'border'"):
        Preprocessing.from_data_config({**CONFIGS["lite0 at 32 px"], "crop_mode": "border"})


def test_predict_files_and_folders_with_unreadable_files(onnx_model, digits_dir, tmp_path):
    folder = tmp_path / "mixed"
    (folder / "nested").mkdir(parents=True)
    good = sorted((digits_dir / "digit_1").glob("*.png"))[:5]
    for i, src in enumerate(good):
        (folder / ("nested" if i % 2 else ".") / src.name).write_bytes(src.read_bytes())
    (folder / "broken.png").write_bytes(good[0].read_bytes()[:60])      # truncated PNG
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")                    # not an image suffix: skipped
    predictor = OnnxPredictor(onnx_model)
    results = predictor.predict([folder, tmp_path / "missing.png"], top_k=2, batch_size=3)
    by_name = {r.path.rsplit("/", 1)[-1]: r for r in results}
    assert len(results) == 8 and "notes.txt" not in by_name
    assert by_name["broken.png"].error and by_name["empty.jpg"].error and by_name["missing.png"].error
    for src in good:
        r = by_name[src.name]
        assert r.error is None and len(r.top) == 2 and r.top[0][1] >= r.top[1][1]
        assert abs(sum(r.probabilities) - 1) < 1e-5
        expected = predictor.run(predictor.load(src)[None])[0]
        assert np.allclose(r.probabilities, expected, atol=1e-6)
    assert "\n" not in by_name["broken.png"].error


def test_batch_size_does_not_change_answers(onnx_model, digits_dir):
    predictor = OnnxPredictor(onnx_model)
    one = predictor.predict([digits_dir], batch_size=1)
    many = predictor.predict([digits_dir], batch_size=32)
    assert [r.path for r in one] == [r.path for r in many] == [str(p) for p in expand_paths([digits_dir])]
    assert np.abs(np.array([r.probabilities for r in one]) - np.array([r.probabilities for r in many])).max() < 1e-5


def test_truncated_and_foreign_models_give_one_line_errors(onnx_model, tmp_path):
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes(onnx_model.read_bytes()[: onnx_model.stat().st_size // 3])
    with pytest.raises(PredictorError, match="not a readable ONNX model") as info:
        OnnxPredictor(truncated)
    assert "\n" not in str(info.value)
    import onnx

    foreign = onnx.load(str(onnx_model))
    del foreign.metadata_props[:]
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    with pytest.raises(PredictorError, match="not exported by tl-desktop"):
        OnnxPredictor(tmp_path / "foreign.onnx")
    with pytest.raises(PredictorError, match="no such model file"):
        OnnxPredictor(tmp_path / "absent.onnx")


def test_inference_needs_neither_torch_nor_timm(onnx_model, digits_dir):
    code = (
        "import sys, json\n"
        "from tl_desktop.core.export.predictor import OnnxPredictor\n"
        f"p = OnnxPredictor({str(onnx_model)!r})\n"
        f"r = p.predict([{str(digits_dir / 'digit_0')!r}])\n"
        "print(json.dumps([len(r), r[0].label, 'torch' in sys.modules, 'timm' in sys.modules, p.providers]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    n, label, torch_loaded, timm_loaded, providers = json.loads(out.stdout.strip().splitlines()[-1])
    assert n == 30 and label.startswith("digit_")
    assert not torch_loaded and not timm_loaded
    assert providers[-1] == "CPUExecutionProvider"
