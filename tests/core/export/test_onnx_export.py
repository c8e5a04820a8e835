"""ONNX export: verified against PyTorch, self-describing, no local paths, atomic; independent consumers agree."""

from __future__ import annotations

import hashlib
import json
import math
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.onnx_run import exported, photos, trained_run
from tl_desktop.core import runs
from tl_desktop.core.events import Cancelled, CancelToken, Progress
from tl_desktop.core.export import onnx_export as export_mod
from tl_desktop.core.export.onnx_export import ExportError, export_onnx
from tl_desktop.core.export.predictor import OnnxPredictor
from tl_desktop.core.models import run_model


@pytest.fixture(scope="module")
def result(tmp_path_factory, digits_dir):
    return exported(tmp_path_factory, digits_dir)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, digits_dir):
    return trained_run(tmp_path_factory, digits_dir)


def _metadata(path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_verification_figures_are_stored_next_to_the_file(result):
    figures = json.loads(result.verification_path.read_text())
    assert result.verification_path.name == "digits.verification.json"
    assert figures["max_abs_diff"] <= 1e-4 and figures["top1_agreement"] == 1.0 and figures["passed"]
    assert figures["images_from"] == "val" and figures["n_images"] >= 10
    assert figures["preprocessing_max_abs_diff"] <= 1e-5
    assert figures["sha256"] == hashlib.sha256(result.path.read_bytes()).hexdigest()
    assert figures["file_size_bytes"] == result.path.stat().st_size
    assert {"onnx", "onnxruntime", "torch"} <= set(figures["versions"]) and figures["providers"]
    assert not list(result.path.parent.glob(".*tmp")), "temporary files left behind"


def test_graph_has_dynamic_batch_four_outputs_and_current_opset(result):
    import onnx

    from tl_desktop.core.models.onnx_tools import OPSET

    model = onnx.load(str(result.path))
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain: o.version for o in model.opset_import}[""] == OPSET
    assert [o.name for o in model.graph.output] == ["logits", "probabilities", "features", "unfamiliarity"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 32, 32]


def test_metadata_describes_everything_and_holds_no_local_paths(result, run_dir, digits_dir):
    meta = _metadata(result.path)
    config = json.loads((run_dir / "config.json").read_text())
    assert json.loads(meta["class_names"]) == ["digit_0", "digit_1", "digit_2"]
    assert json.loads(meta["input_size"]) == [3, 32, 32]
    assert int(meta["resize_size"]) == math.floor(32 / config["data_config"]["crop_pct"])
    assert meta["crop_mode"] == "center" and meta["interpolation"] == config["data_config"]["interpolation"]
    assert json.loads(meta["mean"]) == config["data_config"]["mean"]
    assert json.loads(meta["std"]) == config["data_config"]["std"]
    assert meta["channel_order"] == "RGB" and meta["layout"] == "NCHW" and "255" in meta["value_scale"]
    assert meta["model_name"] == "tf_efficientnet_lite0" and "ImageNet" in meta["weights_source"]
    assert meta["app_version"] and meta["created_utc"].endswith("+00:00")
    assert meta["training_manifest_sha256"] == runs.manifest_hash(run_dir)
    forbidden = ["/home", "/tmp", "/root", str(run_dir), str(digits_dir), str(run_dir.resolve())]
    for key, value in meta.items():
        assert not any(bad in value for bad in forbidden), (key, value)
    blob = result.path.read_bytes()
    assert str(run_dir).encode() not in blob and str(digits_dir).encode() not in blob
    assert b"site-packages" not in blob, "exporter doc strings with local source paths were kept"


def test_fp16_variant_is_verified_smaller_and_reports_accuracy(result):
    fp16 = result.variants["fp16"]
    assert fp16.path.name == "digits.fp16.onnx"
    figures = json.loads(fp16.verification_path.read_text())
    assert figures["passed"] and figures["max_abs_diff"] <= figures["tolerance"]["max_abs_diff"] == 1e-2
    assert figures["file_size_bytes"] < 0.55 * result.path.stat().st_size
    acc = figures["test_accuracy"]
    assert acc["subset"] == "test" and acc["n_images"] > 0
    assert figures["test_accuracy_change"] == pytest.approx(acc["fp16"]["accuracy"] - acc["fp32"]["accuracy"])
    predictor = OnnxPredictor(fp16.path)
    assert predictor.session.get_inputs()[0].type == "tensor(float)"  # callers keep sending float32
    assert _metadata(fp16.path)["precision"] == "fp16"


def test_int8_variant_smaller_and_reverified(result):
    int8 = result.variants["int8"]  # exported with the agreement limit lifted (see tests/core/_onnx_run.py)
    figures = json.loads(int8.verification_path.read_text())
    assert int8.path.stat().st_size < 0.4 * result.path.stat().st_size
    assert 0.0 <= figures["top1_agreement"] <= 1.0 and figures["max_abs_diff"] >= 0
    assert figures["test_accuracy"]["int8"]["top1_agreement_with_fp32"] is not None
    assert figures["test_accuracy_change"] is not None


def test_variant_outside_its_tolerance_is_refused_and_removed(run_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(export_mod.TOLERANCES, "int8", {"top1_agreement": 1.01})
    with pytest.raises(ExportError, match=r"refused the int8 variant: .*top-1 agreement") as info:
        export_onnx(run_dir, tmp_path / "m.onnx", int8=True)
    assert "\n" not in str(info.value)
    assert (tmp_path / "m.onnx").is_file() and (tmp_path / "m.verification.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.verification.json"]


def test_disagreeing_export_is_refused_with_figures_and_leaves_old_file(run_dir, tmp_path, monkeypatch):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"previous export")
    monkeypatch.setitem(export_mod.TOLERANCES, "fp32", {"max_abs_diff": -1.0, "top1_agreement": 1.0})
    with pytest.raises(ExportError, match=r"export refused: .*max \|dp\| .* on \d+ val images"):
        export_onnx(run_dir, target)
    assert target.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_temperature_divides_logits_before_softmax_with_progress_and_cancel(run_dir, tmp_path):
    warm = tmp_path / "run"
    shutil.copytree(run_dir, warm)
    (warm / "clinical.json").unlink(missing_ok=True)  # no evaluation: the run config's temperature is used
    config = json.loads((warm / "config.json").read_text())
    (warm / "config.json").write_text(json.dumps({**config, "temperature": 2.5}))
    events: list = []
    out = export_onnx(warm, tmp_path / "t.onnx", callback=events.append)
    assert events and all(isinstance(e, Progress) and e.phase == "export" for e in events)
    assert events[-1].done == events[-1].total
    predictor = OnnxPredictor(out.path)
    batch = np.stack([predictor.load(p) for p, _ in run_model.load_run(warm).files("val")[:4]])
    logits, probs = predictor.session.run(["logits", "probabilities"], {"input": batch})
    scaled = np.exp(logits / 2.5) / np.exp(logits / 2.5).sum(1, keepdims=True)
    assert np.abs(probs - scaled).max() < 1e-6 and _metadata(out.path)["temperature"] == "2.5"
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        export_onnx(run_dir, tmp_path / "b.onnx", cancel=token)
    assert not (tmp_path / "b.onnx").exists() and not list(tmp_path.glob(".b.*"))


def test_wrong_suffix_is_refused(run_dir, tmp_path):
    with pytest.raises(ExportError, match="must end in .onnx"):
        export_onnx(run_dir, tmp_path / "model.bin")


# --- independent consumers: nothing from tl_desktop below but the file -----------------------------------

def _own_preprocessing(image: Image.Image, meta: dict[str, str]) -> np.ndarray:
    """Written from the metadata's words alone, as a lab script would."""
    _, h, w = json.loads(meta["input_size"])
    size = int(meta["resize_size"])
    width, height = image.size
    scale = size / min(width, height)
    new = (size, int(size * height / width)) if width <= height else (int(size * width / height), size)
    del scale
    image = image.convert("RGB").resize(new, {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[
        meta["interpolation"]]) if new != image.size else image.convert("RGB")
    top, left = int(round((image.height - h) / 2.0)), int(round((image.width - w) / 2.0))
    x = np.asarray(image.crop((left, top, left + w, top + h)), dtype=np.float32) / 255.0
    x = (x - np.array(json.loads(meta["mean"]), np.float32)) / np.array(json.loads(meta["std"]), np.float32)
    return x.transpose(2, 0, 1)


def _real_images(digits_dir) -> list[Image.Image]:
    digits = [Image.open(p).convert("RGB") for p in sorted(digits_dir.rglob("*.png"))[::6]]
    return digits + [im for name, im in photos().items() if name != "small"]


def test_plain_onnxruntime_session_from_metadata_alone_gives_the_apps_answers(result, digits_dir):
    import onnxruntime as ort

    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    classes = json.loads(meta["class_names"])
    images = _real_images(digits_dir)
    probs = session.run(["probabilities"], {"input": np.stack([_own_preprocessing(im, meta) for im in images])})[0]
    predictor = OnnxPredictor(result.path)
    app = predictor.run(np.stack([predictor.preprocessing(im) for im in images]))
    assert np.abs(probs - app).max() < 1e-5
    assert [classes[i] for i in probs.argmax(1)] == [predictor.class_names[i] for i in app.argmax(1)]


def test_opencv_dnn_reads_the_file_and_agrees_on_top1(result, digits_dir):
    import cv2

    net = cv2.dnn.readNetFromONNX(str(result.path))
    meta = _metadata(result.path)
    images = _real_images(digits_dir)
    batch = np.stack([_own_preprocessing(im, meta) for im in images])
    net.setInput(batch)
    logits, probs, _, unfamiliarity = net.forward(["logits", "probabilities", "features", "unfamiliarity"])
    app, app_unfamiliarity = OnnxPredictor(result.path).run_outputs(batch)
    assert probs.shape == app.shape
    assert (probs.argmax(1) == app.argmax(1)).all()
    assert np.abs(probs - app).max() < 1e-4
    assert np.abs(unfamiliarity.ravel() - app_unfamiliarity).max() < 1e-3 * app_unfamiliarity.max()


def test_decision_written_during_an_export_does_not_split_it(run_dir, tmp_path, monkeypatch):
    """clinical.json may be written (by the Evaluate step) while an export runs: one snapshot serves all."""
    from tl_desktop.core.evaluation import run_evaluation as clinical_run

    real = clinical_run.decision_metadata
    calls: list[int] = []

    def changing(run_dir_, config, which="best"):
        calls.append(1)
        meta = dict(real(run_dir_, config, which))
        meta["temperature"] = "1.0" if len(calls) == 1 else "3.0"  # a new file appears after the first read
        return meta

    monkeypatch.setattr(clinical_run, "decision_metadata", changing)
    out = export_onnx(run_dir, tmp_path / "snap.onnx")
    assert len(calls) == 1 and _metadata(out.path)["temperature"] == "1.0"
    assert out.verification["max_abs_diff"] <= 1e-4


def test_re_export_removes_variants_of_the_earlier_model(run_dir, tmp_path):
    stale = tmp_path / "m.int8.onnx"
    stale.write_bytes(b"an int8 file of an earlier export")
    (tmp_path / "m.int8.verification.json").write_text("{}")
    export_onnx(run_dir, tmp_path / "m.onnx")
    assert not stale.exists() and not (tmp_path / "m.int8.verification.json").exists()
    assert (tmp_path / "m.onnx").is_file() and (tmp_path / "m.verification.json").is_file()
