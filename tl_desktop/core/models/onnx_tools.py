"""Turning a PyTorch module into an onnxruntime session, shared by embedding extraction and export."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

OPSET = 18


def export_module(
    module: torch.nn.Module,
    example: torch.Tensor,
    path: Path | str,
    *,
    output_names: list[str],
    input_name: str = "input",
) -> Path:
    """Export ``module`` (in eval mode) to ONNX with a dynamic batch axis.

    Uses the TorchScript exporter, which takes well under a second for these CNNs, and falls back to the
    torch.export-based one when the module cannot be traced.
    """
    import torch

    module = module.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = {input_name: {0: "batch"}, **{name: {0: "batch"} for name in output_names}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module, (example,), str(path), dynamo=False, input_names=[input_name],
                              output_names=output_names, dynamic_axes=axes, opset_version=OPSET)
        except Exception:  # noqa: BLE001 - the tracer refuses some modules; the new exporter may not
            batch = torch.export.Dim("batch")
            program = torch.onnx.export(module, (example,), dynamo=True, input_names=[input_name],
                                        output_names=output_names, dynamic_shapes=({0: batch},),
                                        verbose=False)
            program.save(str(path))
    return path


def cpu_session(path: Path | str, *, providers: list[str] | None = None, quiet: bool = False):
    """An onnxruntime session using every core, on CUDA when asked for and available.

    ``quiet`` keeps onnxruntime's own error log off stderr, for sessions whose failures the caller handles.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if quiet:
        options.log_severity_level = 4
    available = set(ort.get_available_providers())
    chosen = [p for p in (providers or ["CPUExecutionProvider"]) if p in available] or ["CPUExecutionProvider"]
    return ort.InferenceSession(str(path), sess_options=options, providers=chosen)
