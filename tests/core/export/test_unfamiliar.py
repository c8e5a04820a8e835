""""Unlike the training images": the reference in every export, its verification, the predictor's marks, and
files that are old or tampered with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from tests.helpers import write_digits_folder
from tests.onnx_run import exported, photos, trained_run
from tl_desktop.core.errors import ExportError, PredictorError
from tl_desktop.core.evaluation.statistics import NOT_SURE
from tl_desktop.core.export import onnx_export as export_mod
from tl_desktop.core.export import unfamiliar
from tl_desktop.core.export.model_checks import UNFAMILIAR_ACTIONS
from tl_desktop.core.export.onnx_export import export_onnx
from tl_desktop.core.export.predictor import OnnxPredictor
from tl_desktop.core.models import run_model

# the share of in-distribution images let through is about 95 % by construction (threshold on 12 val images);
# these limits leave room for the small validation set and are far from what a useless score would give
MAX_HELD_OUT_FLAGGED = 0.25
MIN_FOREIGN_FLAGGED = 0.9
EXTRA_PHOTOS = ("cat", "immunohistochemistry", "moon", "page", "text", "clock", "hubble_deep_field", "retina",
                "brick", "grass", "gravel", "colorwheel", "coins")


@pytest.fixture(scope="module")
def result(tmp_path_factory, digits_dir):
    return exported(tmp_path_factory, digits_dir)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, digits_dir):
    return trained_run(tmp_path_factory, digits_dir)


def held_out_digits(folder: Path) -> Path:
    """120 real digits of the run's three classes that the run never saw (its folder holds the first 30)."""
    return write_digits_folder(folder, classes=(0, 1, 2), per_class=40, offset=30, size=32)


def foreign_images(folder: Path) -> dict[str, list[Path]]:
    """Photos (scikit-image: the shared set, more samples and crops of them) and noise images, as files."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    images = dict(photos())
    for name in EXTRA_PHOTOS:
        arr = np.asarray(getattr(data, name)())
        images[name] = Image.fromarray(arr if arr.dtype == np.uint8 else (arr * 255).astype(np.uint8)).convert("RGB")
    rng = np.random.default_rng(1)
    for i, name in enumerate(["astronaut", "coffee", "chelsea", "rocket", "camera"] * 3):
        w, h = images[name].size
        side = int(min(w, h) * rng.uniform(0.3, 0.8))
        x, y = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
        images[f"crop{i}_{name}"] = images[name].crop((x, y, x + side, y + side))
    noise = {f"noise{i}": Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)) for i in range(10)}
    noise |= {f"grey{i}": Image.fromarray(rng.normal(128, 50, (40, 40)).clip(0, 255).astype(np.uint8))
              for i in range(10)}
    out: dict[str, list[Path]] = {"photos": [], "noise": []}
    for kind, group in (("photos", images), ("noise", noise)):
        for name, image in group.items():
            path = folder / f"{name}.png"
            image.save(path)
            out[kind].append(path)
    return out


def _flagged(predictions) -> float:
    assert all(p.error is None and p.unfamiliar is not None for p in predictions)
    return float(np.mean([p.unfamiliar for p in predictions]))


def _metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def _edited(src: Path, dst: Path, *, drop_outputs: tuple[str, ...] = (), **meta: str | None) -> Path:
    """A copy of ``src`` with metadata values changed (None removes a key) and graph outputs dropped."""
    model = onnx.load(str(src))
    values = {**{p.key: p.value for p in model.metadata_props}, **meta}
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {k: v for k, v in values.items() if v is not None})
    kept = [o for o in model.graph.output if o.name not in drop_outputs]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    onnx.save(model, str(dst))
    return dst


# --- the export ------------------------------------------------------------------------------------------

def test_every_export_carries_the_reference_and_its_threshold(result, run_dir):
    meta = _metadata(result.path)
    info = json.loads(meta["unfamiliar_reference"])
    train = run_model.load_run(run_dir).files("train")
    assert meta["unfamiliar_action"] == "flagged" and meta["feature_dim"] == "1280"
    assert info["n_reference"] == len(train) and info["threshold_from"] == "val" and info["quantile"] == 0.95
    assert info["components"] == len(train) // 2 and "Mahalanobis" in info["method"]
    threshold = float(meta["unfamiliar_threshold"])
    assert 0 < threshold < 100
    for res in (result, *result.variants.values()):
        assert _metadata(res.path)["unfamiliar_threshold"] == meta["unfamiliar_threshold"]  # one reference


def test_features_and_score_are_verified_for_every_precision(result):
    for res in (result, *result.variants.values()):
        figures = json.loads(res.verification_path.read_text())["unfamiliarity"]
        assert figures["n_probes"] == 8 and figures["probes_flagged"] == 1.0, figures  # made-up images: outside
        assert figures["validation_flagged"] <= 0.1  # 95th percentile of 12 images: at most one above
        assert figures["n_images"] == 2 * json.loads(res.verification_path.read_text())["n_images"] + 8
    fp32 = result.verification["unfamiliarity"]
    assert fp32["max_rel_diff"] < 1e-4 and fp32["flag_agreement"] == 1.0 and fp32["features_max_rel_diff"] < 1e-4
    fp16 = result.variants["fp16"].verification["unfamiliarity"]
    assert fp16["max_rel_diff"] <= fp16["tolerance"]["max_rel_diff"] == 0.05 and fp16["flag_agreement"] >= 0.95


def test_a_score_off_its_tolerance_refuses_the_export(run_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(export_mod.verify.UNFAMILIAR_TOLERANCES, "fp32", {"max_rel_diff": -1.0, "flag_agreement": 1.0})
    with pytest.raises(ExportError, match=r"export refused: .*unfamiliarity off by .* \(limit -1.0\)") as info:
        export_onnx(run_dir, tmp_path / "m.onnx")
    assert "\n" not in str(info.value) and not list(tmp_path.iterdir())


def test_an_unknown_action_is_refused_before_any_work(run_dir, tmp_path):
    assert UNFAMILIAR_ACTIONS == ("flagged", NOT_SURE)
    with pytest.raises(ExportError, match="flagged or not sure"):
        export_onnx(run_dir, tmp_path / "m.onnx", unfamiliar_action="ignored")


def test_an_outside_consumer_recomputes_the_score_from_features_and_initializers(result, digits_dir, tmp_path):
    """What docs/unfamiliar.md tells a lab script: read reference.* from the file, apply the formula."""
    import onnxruntime as ort
    from onnx import numpy_helper

    model = onnx.load(str(result.path))
    arrays = {i.name.removeprefix("reference."): numpy_helper.to_array(i) for i in model.graph.initializer
              if i.name.startswith("reference.")}
    assert sorted(arrays) == sorted(unfamiliar.INITIALIZERS)
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    predictor = OnnxPredictor(result.path)
    paths = sorted(digits_dir.rglob("*.png"))[::5] + foreign_images(tmp_path)["photos"][:6]
    batch = np.stack([predictor.load(p) for p in paths])
    features, score = session.run(["features", "unfamiliarity"], {"input": batch})
    again = unfamiliar.scores(unfamiliar.from_parameters(arrays), features)
    assert np.abs(again - score).max() <= 1e-4 * score.max()


# --- predicting ------------------------------------------------------------------------------------------

def test_held_out_digits_pass_and_photos_and_noise_are_unfamiliar(result, tmp_path, capsys):
    predictor = OnnxPredictor(result.path)
    held = predictor.predict([held_out_digits(tmp_path / "held")])
    foreign = foreign_images(tmp_path / "foreign")
    photos_found, noise_found = predictor.predict(foreign["photos"]), predictor.predict(foreign["noise"])
    shares = {"held_out": _flagged(held), "photos": _flagged(photos_found), "noise": _flagged(noise_found)}
    with capsys.disabled():
        print(f"\nunfamiliar shares: held-out digits {shares['held_out']:.3f} of {len(held)}, photos "
              f"{shares['photos']:.3f} of {len(photos_found)}, noise {shares['noise']:.3f} of {len(noise_found)}")
    assert shares["held_out"] <= MAX_HELD_OUT_FLAGGED, shares
    assert shares["photos"] >= MIN_FOREIGN_FLAGGED and shares["noise"] >= MIN_FOREIGN_FLAGGED, shares
    threshold = predictor.unfamiliar_rule.threshold
    assert all((p.unfamiliarity > threshold) == p.unfamiliar for p in held + photos_found)
    assert all(p.decision is None for p in photos_found)  # "flagged": the answer stays, with the mark
    row = photos_found[0].to_dict()
    assert isinstance(row["unfamiliar"], bool) and isinstance(row["unfamiliarity"], float)


def test_the_not_sure_action_abstains_on_unfamiliar_images_only(result, tmp_path):
    model = _edited(result.path, tmp_path / "abstain.onnx", unfamiliar_action="not sure")
    foreign = foreign_images(tmp_path / "foreign")["noise"][:5]
    digits = sorted(held_out_digits(tmp_path / "held").rglob("*.png"))[::10]
    found = OnnxPredictor(model).predict(foreign + digits)
    assert all(p.label == NOT_SURE for p in found if p.unfamiliar)
    assert all(p.label == p.top[0][0] for p in found if not p.unfamiliar)
    assert sum(p.unfamiliar for p in found) >= 5


def test_an_export_without_the_reference_still_predicts_with_none(result, digits_dir, tmp_path):
    keys = {k: None for k in ("unfamiliar_threshold", "unfamiliar_action", "feature_dim", "unfamiliar_reference")}
    old = _edited(result.path, tmp_path / "old.onnx", drop_outputs=("features", "unfamiliarity"), **keys)
    files = sorted(digits_dir.rglob("*.png"))[::9]
    then, now = OnnxPredictor(old).predict(files), OnnxPredictor(result.path).predict(files)
    assert all(p.unfamiliar is None and p.unfamiliarity is None and p.error is None for p in then)
    assert [p.top for p in then] == [p.top for p in now]


TAMPERED = {
    "threshold NaN": (dict(unfamiliar_threshold="nan"), "unfamiliar_threshold=nan is outside"),
    "threshold negative": (dict(unfamiliar_threshold="-1"), "unfamiliar_threshold=-1 is outside"),
    "threshold not a number": (dict(unfamiliar_threshold="high"), "unfamiliar_threshold='high' is not a number"),
    "huge feature_dim": (dict(feature_dim="100000000"), "feature_dim=1e+08 is outside"),
    "feature_dim not the graph's": (dict(feature_dim="512"), "says 512 features but the model's features output"),
    "unknown action": (dict(unfamiliar_action="ignore"), "unfamiliar_action is not flagged or not sure"),
    "huge components": (dict(unfamiliar_reference=json.dumps(
        {"method": "m", "components": 10**9, "n_reference": 66, "n_threshold": 12, "quantile": 0.95,
         "threshold_from": "val"})), "components=1000000000 is not a whole number in 1..1280"),
    "reference not json": (dict(unfamiliar_reference="{"), "unfamiliar_reference is not valid JSON"),
    "no threshold": (dict(unfamiliar_threshold=None), "reference is incomplete"),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampered_reference_metadata_is_refused_in_one_line(result, tmp_path, case):
    changes, message = TAMPERED[case]
    with pytest.raises(PredictorError) as info:
        OnnxPredictor(_edited(result.path, tmp_path / "bad.onnx", **changes))
    text = str(info.value)
    assert message in text and "\n" not in text and text.startswith("bad.onnx: "), text


def test_metadata_without_its_outputs_is_refused(result, tmp_path):
    bad = _edited(result.path, tmp_path / "bad.onnx", drop_outputs=("unfamiliarity",))
    with pytest.raises(PredictorError, match=r"incomplete \(metadata: .*; outputs: features\)"):
        OnnxPredictor(bad)


def test_numpy_fit_ranks_foreign_features_above_the_threshold():
    """The reference alone, on synthetic features: points near the training clusters pass, far ones do not."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, (3, 40))
    labels = np.repeat(np.arange(3), 60)
    train = centres[labels] + rng.normal(0, 1, (180, 40))
    ref = unfamiliar.calibrate(unfamiliar.fit(train, labels), centres[labels[:60]] + rng.normal(0, 1, (60, 40)),
                               "val")
    near = unfamiliar.scores(ref, centres[labels] + rng.normal(0, 1, (180, 40)))
    far = unfamiliar.scores(ref, rng.normal(0, 5, (100, 40)))
    assert (near > ref.threshold).mean() < 0.15 and (far > ref.threshold).mean() > 0.95
    assert ref.components == 40 and ref.info["n_threshold"] == 60
