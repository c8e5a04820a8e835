"""Grad-CAM heatmaps: which parts of an image drove the model towards a class.

Uses the ``grad-cam`` library (``pytorch_grad_cam``) on the backbone's last convolutional stage (for ViT, the
last block's tokens reshaped to their grid). The heatmap is on the image exactly as the model saw it (resized,
centre-cropped); ``Explanation.overlay()`` blends a jet-like colour scale over that image, drawn with numpy so
no plotting library is needed, and ``save_png`` writes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tl_desktop.core.errors import ExplainError

# Jet-like colour scale: dark blue -> blue -> cyan -> yellow -> red -> dark red (anchor, R, G, B).
_JET = np.array([
    [0.00, 0.0, 0.0, 0.5], [0.11, 0.0, 0.0, 1.0], [0.36, 0.0, 1.0, 1.0], [0.50, 0.5, 1.0, 0.5],
    [0.64, 1.0, 1.0, 0.0], [0.89, 1.0, 0.0, 0.0], [1.00, 0.5, 0.0, 0.0],
])


def jet(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to RGB uint8 (..., 3) on a jet-like scale (blue = low, red = high)."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    rgb = np.stack([np.interp(v, _JET[:, 0], _JET[:, c]) for c in (1, 2, 3)], axis=-1)
    return np.round(rgb * 255).astype(np.uint8)


def overlay(image: Image.Image, heatmap: np.ndarray, alpha: float = 0.5, size: int | None = None,
            ) -> Image.Image:
    """The heatmap in colour blended over ``image`` (weight ``alpha`` where the heat is high, less where low).

    Args:
        size: the longer side of the result in pixels (upsampled smoothly); default the image's own size.
    """
    base = image.convert("RGB")
    if size is not None and max(base.size) != size:
        scale = size / max(base.size)
        base = base.resize((max(1, round(base.width * scale)), max(1, round(base.height * scale))),
                           Image.Resampling.BICUBIC)
    heat = Image.fromarray((np.clip(heatmap, 0, 1) * 255).astype(np.uint8)).resize(base.size,
                                                                                  Image.Resampling.BILINEAR)
    h = np.asarray(heat, dtype=np.float64) / 255.0
    weight = alpha * (0.15 + 0.85 * h)[..., None]  # cold areas stay readable, hot areas stand out
    mixed = (1 - weight) * np.asarray(base, dtype=np.float64) + weight * jet(h).astype(np.float64)
    return Image.fromarray(np.round(mixed).astype(np.uint8))


@dataclass
class Explanation:
    """One image's heatmap for one class.

    ``heatmap`` is float32 (H, W) in [0, 1] on ``image``, the preprocessed image the model saw;
    ``probability`` is the model's (softmax) probability of ``class_name``.
    """

    heatmap: np.ndarray
    image: Image.Image
    class_index: int
    class_name: str
    probability: float
    predicted: str
    predicted_probability: float

    def overlay(self, alpha: float = 0.5, size: int | None = 256) -> Image.Image:
        return overlay(self.image, self.heatmap, alpha, size)

    def save_png(self, path: Path | str, alpha: float = 0.5, size: int | None = 256) -> Path:
        """Write the overlay as a PNG (atomically)."""
        import io

        from tl_desktop.core.fsutil import atomic_write_bytes

        buffer = io.BytesIO()
        self.overlay(alpha, size).save(buffer, format="PNG")
        return atomic_write_bytes(path, buffer.getvalue())


# --- the layer -------------------------------------------------------------------------------------------

def _is_vit(model: Any) -> bool:
    return hasattr(model, "blocks") and hasattr(model, "num_prefix_tokens") and hasattr(model, "patch_embed")


def target_layer(model: Any, input_size: int = 64) -> tuple[str, Any]:
    """(name, module) of the last convolutional stage: the last conv/norm layer that runs in
    ``forward_features`` (EfficientNet's ``bn2`` after ``conv_head``), or the whole last stage of timm's
    ``feature_info`` when that layer lies inside it (ResNet ``layer4``, ConvNeXt ``stages.3``); layers of the
    head (MobileNetV3's ``conv_head`` runs after pooling) never count. ViT: the last block's first norm.
    """
    import torch

    modules = dict(model.named_modules())
    if _is_vit(model):
        name = f"blocks.{len(model.blocks) - 1}.norm1"
        return name, modules[name]
    fired: list[str] = []
    hooks = [module.register_forward_hook(lambda m, i, o, n=name: fired.append(n))
             for name, module in modules.items()
             if isinstance(module, (torch.nn.Conv2d, torch.nn.modules.batchnorm._BatchNorm))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model.forward_features(torch.zeros(1, 3, input_size, input_size))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    if not fired:
        raise ExplainError(f"{type(model).__name__} has no convolutional layer for a heatmap")
    info = getattr(model, "feature_info", None)
    stage = info[-1]["module"] if info else None
    name = fired[-1]
    if stage in modules and name.startswith(stage + "."):
        name = stage
    return name, modules[name]


def _vit_reshape(model: Any):
    prefix = int(getattr(model, "num_prefix_tokens", 1))

    def reshape(tokens):
        grid = tokens[:, prefix:, :]
        side = int(math.isqrt(grid.shape[1]))
        return grid.reshape(grid.shape[0], side, side, grid.shape[2]).permute(0, 3, 1, 2)

    return reshape


# --- heatmaps --------------------------------------------------------------------------------------------

def _display_image(tensor, data_config: dict[str, Any]) -> Image.Image:
    """Undo the normalisation of one preprocessed tensor (3, H, W) -> RGB PIL image."""
    from tl_desktop.core.models.preprocessing import normalisation

    mean, std = (np.asarray(v, dtype=np.float32)[:, None, None] for v in normalisation(data_config))
    array = np.clip(tensor.numpy() * std + mean, 0.0, 1.0)
    return Image.fromarray(np.round(array.transpose(1, 2, 0) * 255).astype(np.uint8))


def explain_images(model: Any, data_config: dict[str, Any], images: list[Image.Image | Path | str],
                   class_names: list[str] | None = None, target: int | str | None = None,
                   batch_size: int = 8) -> list[Explanation]:
    """Grad-CAM of each image for ``target`` (a class index or name) or, by default, its predicted class.

    Args:
        model: a timm classifier (left in eval mode; its parameters' ``requires_grad`` are restored).
        data_config: the model's preprocessing (``models.data_config`` / ``LoadedRun.data_config``).
        images: PIL images or paths (prepared once from the files: DICOM, 16-bit, ...).

    Raises:
        ExplainError: unknown target class or a model without a usable layer.
        UnreadableImage: an image cannot be read.
    """
    names = list(class_names) if class_names is not None else [str(i) for i in range(model.num_classes)]
    index = _target_index(target, names)
    batch = _inputs(data_config, images)
    out: list[Explanation] = []
    for start in range(0, len(batch), batch_size):
        out.extend(_explain_batch(model, data_config, batch[start: start + batch_size], names, index))
    return out


def _inputs(data_config: dict[str, Any], images: list[Image.Image | Path | str]):
    """The normalised model inputs: files from the prepared-image cache (decoded once for training, evaluation
    and heatmaps alike), PIL images through the same resize and centre crop."""
    import torch

    from tl_desktop.core.data.prepared import prepare, read_entry, resize
    from tl_desktop.core.models.catalog import eval_pipeline

    pipe = eval_pipeline(data_config)
    paths = [Path(im) for im in images if not isinstance(im, Image.Image)]
    entries = dict(zip(paths, prepare(paths, pipe.spec), strict=True)) if paths else {}
    crops = []
    for im in images:
        if isinstance(im, Image.Image):
            spec = pipe.spec
            array = np.array(resize(im.convert("RGB"), spec.resize_size, spec.crop_mode, spec.interpolation))
        else:
            array = read_entry(entries[Path(im)], Path(im), pipe.spec)
        crops.append(pipe.crop(torch.from_numpy(array)))
    return pipe.normalise(torch.stack(crops)) if crops else torch.zeros((0, *data_config["input_size"]))


def _target_index(target: int | str | None, names: list[str]) -> int | None:
    if target is None:
        return None
    if isinstance(target, str):
        if target not in names:
            raise ExplainError(f"unknown class '{target}'; the classes are {', '.join(names)}")
        return names.index(target)
    if not 0 <= int(target) < len(names):
        raise ExplainError(f"class index {target} is out of range (0-{len(names) - 1})")
    return int(target)


def _explain_batch(model, data_config, batch, names: list[str], index: int | None) -> list[Explanation]:
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    _, layer = target_layer(model)
    was_training = model.training
    grads = {name: p.requires_grad for name, p in model.named_parameters()}
    model.eval()
    try:
        with torch.no_grad():
            probs = torch.softmax(model(batch).float(), dim=1).numpy()
        predicted = probs.argmax(axis=1)
        classes = [int(c) if index is None else index for c in predicted]
        reshape = _vit_reshape(model) if _is_vit(model) else None
        model.requires_grad_(False)  # gradients flow to the activations only, via the input
        batch = batch.clone().requires_grad_(True)
        with torch.enable_grad(), GradCAM(model=model, target_layers=[layer], reshape_transform=reshape) as cam:
            maps = cam(input_tensor=batch, targets=[ClassifierOutputTarget(c) for c in classes])
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(grads[name])
        model.train(was_training)
    batch = batch.detach()
    return [Explanation(np.nan_to_num(maps[i]).astype(np.float32), _display_image(batch[i], data_config),
                        classes[i], names[classes[i]], float(probs[i, classes[i]]), names[int(predicted[i])],
                        float(probs[i, predicted[i]])) for i in range(len(batch))]


def explain_run(run: Any, images: list[Image.Image | Path | str], target: int | str | None = None,
                ) -> list[Explanation]:
    """Grad-CAM with a loaded run's model (``runs.load_run``), its preprocessing and class names."""
    return explain_images(run.model, run.data_config, images, run.class_names, target)


def cam_share(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """Share of the heatmap's total mass inside a boolean mask (same shape)."""
    total = float(np.sum(heatmap))
    return float(np.sum(heatmap[mask]) / total) if total > 0 else 0.0
