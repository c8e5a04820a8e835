"""The compute device of a run (CUDA, Apple MPS or the CPU), its mixed-precision type, and the software versions
recorded with every run."""

from __future__ import annotations

import platform

from tl_desktop import __version__
from tl_desktop.core.errors import TrainingError


def resolve_device(name: str):
    """``auto`` picks CUDA, then Apple MPS, then the CPU."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("no CUDA GPU is usable on this computer; choose device auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise TrainingError("Apple MPS is not available on this computer; choose device auto or cpu")
    return torch.device(name)


def device_description(device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return device.type


def amp_dtype(device):
    """bf16 where the GPU supports it, else fp16; None (no autocast) off CUDA."""
    import torch

    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    names = ["torch", "torchvision", "timm", "numpy", "pillow", "pydicom", "onnx", "onnxruntime", "scikit-learn"]
    versions = {"tl-desktop": __version__, "python": platform.python_version()}
    for name in names:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
