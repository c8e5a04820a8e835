"""Grad-CAM heatmaps: plausible regions on a real photo, the run's own model, PNG export."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.evaluation_run import two_digit_run
from tl_desktop.core.errors import ExplainError
from tl_desktop.core.evaluation import explain

CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def imagenet_model():
    from tl_desktop.core.models.catalog import create_model, data_config

    return create_model("tf_efficientnet_lite0"), data_config("tf_efficientnet_lite0")


def _cat_on_grey() -> Image.Image:
    """scikit-image's cat photo shrunk into the upper-left part of a plain grey picture."""
    import skimage.data

    canvas = Image.new("RGB", (256, 256), (128, 128, 128))
    canvas.paste(Image.fromarray(skimage.data.chelsea()).resize((150, 100), Image.BILINEAR), (20, 30))
    return canvas


def test_heatmap_lies_on_the_cat(imagenet_model, tmp_path):
    model, cfg = imagenet_model
    (e,) = explain.explain_images(model, cfg, [_cat_on_grey()])
    assert e.class_index in CAT_CLASSES, e.class_index
    assert e.heatmap.shape == (224, 224) and 0 <= e.heatmap.min() and e.heatmap.max() <= 1
    # where the cat is, measured on the image the model saw (after resize and centre crop)
    cat = np.abs(np.asarray(e.image, dtype=int) - 128).max(axis=-1) > 12
    assert 0.2 < cat.mean() < 0.4
    share = explain.cam_share(e.heatmap, cat)
    print(f"cat covers {cat.mean():.2f} of the picture and holds {share:.2f} of the heatmap")
    assert share > 2 * cat.mean()
    assert e.heatmap[cat].mean() > 3 * e.heatmap[~cat].mean()
    path = e.save_png(tmp_path / "cat.png")
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size == (256, 256) and png.mode == "RGB"


def test_chosen_class_and_layer_choice(imagenet_model):
    model, cfg = imagenet_model
    assert explain.target_layer(model)[0] == "bn2"  # after conv_head: the last spatial feature map
    img = _cat_on_grey()
    (cat,) = explain.explain_images(model, cfg, [img], target=281)
    (car,) = explain.explain_images(model, cfg, [img], target=817)  # sports car: not in the picture
    assert cat.class_index == 281 and car.class_index == 817
    assert car.probability < cat.probability and car.predicted == cat.predicted
    assert not np.allclose(cat.heatmap, car.heatmap)
    with pytest.raises(ExplainError):
        explain.explain_images(model, cfg, [img], class_names=["a", "b"], target="c")
    assert all(p.requires_grad for p in model.parameters())  # restored


@pytest.mark.parametrize("name, layer", [("resnet18", "layer4"), ("mobilenetv3_large_100", "blocks.6")])
def test_target_layer_of_other_backbones(name, layer):
    import timm

    model = timm.create_model(name, pretrained=False, num_classes=2)
    assert explain.target_layer(model)[0].startswith(layer)


def test_jet_scale_and_overlay():
    assert explain.jet(np.array([0.0, 1.0])).tolist() == [[0, 0, 128], [128, 0, 0]]
    ramp = explain.jet(np.linspace(0, 1, 11))
    assert ramp[5].tolist()[1] == 255  # the middle is green-ish
    grey = Image.new("RGB", (8, 8), (100, 100, 100))
    heat = np.zeros((8, 8))
    heat[:4] = 1.0
    out = np.asarray(explain.overlay(grey, heat, alpha=0.5))
    assert out[0, 0, 0] > 100 and abs(int(out[7, 7, 0]) - 100) <= 20  # hot rows red, cold rows barely tinted


def test_heatmaps_of_the_run_model(tmp_path_factory):
    from tl_desktop.core.models.run_model import load_run

    run = load_run(two_digit_run(tmp_path_factory))
    files = run.files("test")[:3]
    found = explain.explain_run(run, [p for p, _ in files])
    assert [e.heatmap.shape for e in found] == [(64, 64)] * 3
    assert all(e.class_name in run.class_names for e in found)
    other = explain.explain_run(run, [files[0][0]], target="digit_8")[0]
    assert other.class_name == "digit_8"
    assert not run.model.training
