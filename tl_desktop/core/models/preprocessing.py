"""The model's evaluation preprocessing as plain PIL + numpy (no torch), shared by export, prediction and embeddings.

``Preprocessing`` is built from timm's data config of a model (``catalog.data_config``) and stored in the ONNX
metadata, so a consumer of the exported file (``export.predictor``) and the linear probe's feature extraction
(``models.embeddings``) apply exactly the evaluation transform the model was validated with.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from tl_desktop.core.data.prepared import CROP_MODES, resize
from tl_desktop.core.data.prepared import PIL_FILTERS as _PIL_FILTERS


def normalisation(cfg: dict[str, Any]) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) per RGB channel of a timm-style data config (``models.data_config``)."""
    mean, std = (tuple(float(v) for v in cfg[key]) for key in ("mean", "std"))
    return (mean[0], mean[1], mean[2]), (std[0], std[1], std[2])


@dataclass(frozen=True)
class Preprocessing:
    """The evaluation transform of a model, as stored in the ONNX metadata."""

    input_size: tuple[int, int, int]
    resize_size: int
    crop_mode: str
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop_pct: float

    @classmethod
    def from_data_config(cls, cfg: dict[str, Any]) -> Preprocessing:
        """From a timm-style data config (``models.data_config``); raises ValueError for unsupported ones."""
        c, h, w = (int(v) for v in cfg["input_size"])
        crop_mode = str(cfg.get("crop_mode") or "center")
        interpolation = str(cfg["interpolation"])
        if c != 3 or h != w:
            raise ValueError(f"input size {c}x{h}x{w} is not supported (3 channels, square images only)")
        if crop_mode not in CROP_MODES:
            raise ValueError(f"crop mode '{crop_mode}' is not supported (only {', '.join(CROP_MODES)})")
        if interpolation not in _PIL_FILTERS:
            raise ValueError(f"interpolation '{interpolation}' is not supported")
        crop_pct = float(cfg.get("crop_pct") or 0.875)
        return cls((c, h, w), int(math.floor(h / crop_pct)), crop_mode, interpolation, *normalisation(cfg), crop_pct)

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> Preprocessing:
        return cls(tuple(json.loads(meta["input_size"])), int(meta["resize_size"]), meta["crop_mode"],
                   meta["interpolation"], tuple(json.loads(meta["mean"])), tuple(json.loads(meta["std"])),
                   float(meta["crop_pct"]))

    def to_metadata(self) -> dict[str, str]:
        return {
            "input_size": json.dumps(list(self.input_size)),
            "resize_size": str(self.resize_size),
            "crop_mode": self.crop_mode,
            "crop_pct": repr(self.crop_pct),
            "interpolation": self.interpolation,
            "mean": json.dumps(list(self.mean)),
            "std": json.dumps(list(self.std)),
            "channel_order": "RGB",
            "layout": "NCHW",
            "value_scale": "0..1 (pixel / 255) before normalisation",
            "resize_rule": self.describe(),
        }

    def describe(self) -> str:
        """The rule in words, for people writing their own consumer."""
        _, h, w = self.input_size
        if self.crop_mode == "squash":
            first = f"resize both sides to {self.resize_size} px"
        else:
            first = (f"resize the shorter side to {self.resize_size} px (= floor({h} / crop_pct), long side "
                     "int(size * long / short)), keeping the aspect ratio")
        return (f"{first} ({self.interpolation}, PIL), then centre crop to {h}x{w} with top = "
                "int(round((height - crop) / 2)), left likewise; pixel / 255, then (x - mean) / std")

    def __call__(self, image: Image.Image) -> np.ndarray:
        """An RGB PIL image -> float32 array (3, H, W), equal to timm's eval transform."""
        image = image.convert("RGB") if image.mode != "RGB" else image
        image = self._resize(image)
        image = self._centre_crop(image)
        array = np.asarray(image, dtype=np.float32) / np.float32(255.0)
        array = (array - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(array.transpose(2, 0, 1))

    def _resize(self, image: Image.Image) -> Image.Image:
        """The one resize rule (``data.prepared.resize``) the prepared images of training and evaluation use."""
        return resize(image, self.resize_size, self.crop_mode, self.interpolation)

    def _centre_crop(self, image: Image.Image) -> Image.Image:
        _, th, tw = self.input_size
        width, height = image.size
        if tw > width or th > height:  # torchvision pads with zeros first
            padded = Image.new("RGB", (max(width, tw), max(height, th)))
            padded.paste(image, ((tw - width) // 2 if tw > width else 0, (th - height) // 2 if th > height else 0))
            image, (width, height) = padded, padded.size
        top, left = int(round((height - th) / 2.0)), int(round((width - tw) / 2.0))
        return image.crop((left, top, left + tw, top + th))
