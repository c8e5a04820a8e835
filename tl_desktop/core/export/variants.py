"""The smaller precisions of an exported fp32 file: fp16 (for GPUs) and dynamic int8 (for small CPUs).

Each maker reads the verified fp32 file and writes the variant; ``onnx_export`` then sets its metadata and
verifies it against PyTorch with the variant's own tolerance (``verify.TOLERANCES``: a largest probability
difference and a top-1 agreement, both stated for every precision). A variant outside either limit is refused
and not written: no file is ever kept, or shown, as verified when its probabilities stray further than stated.

Both keep the unfamiliarity score's own nodes (``/reference/...``, see ``unfamiliar``) in float32: a squared
distance of an image far from the training ones overflows float16, and int8 weights would blur the subspace
the score measures; the features feeding it are the variant's own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tl_desktop.core.models.quantise import quiet_quantizer as _quiet_quantizer


def score_nodes(graph) -> list[str]:
    """Names of the nodes that compute the unfamiliarity score from the features (kept in float32)."""
    from tl_desktop.core.export.unfamiliar import SCOPE

    return [n.name for n in graph.node if n.name.startswith(f"/{SCOPE}/")]


def make_fp16(src: Path, dst: Path) -> None:
    """Float16 weights and activations; float32 input and outputs so callers need no change."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    source = onnx.load(str(src))
    with _quiet_quantizer():
        model = convert_float_to_float16(source, keep_io_types=True, node_block_list=score_nodes(source.graph))
        wrapper = OnnxModel(model)
        wrapper.topological_sort()  # the converter appends its input casts at the end of the node list
    onnx.save(wrapper.model, str(dst))


def make_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 weights (no calibration data needed).

    Depthwise convolutions and the stem stay in float32: quantised per tensor they wreck the accuracy of
    EfficientNet/MobileNet-style nets (measured in docs/benchmarks.md), while the pointwise convolutions
    and the head hold almost all the weights.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src)).graph
    convs = [n for n in graph.node if n.op_type == "Conv"]
    keep_float = [n.name for n in convs[:1]] + [
        n.name for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)] + score_nodes(graph)
    with _quiet_quantizer():
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8, nodes_to_exclude=keep_float)


MAKERS: dict[str, Callable[[Path, Path], None]] = {"fp16": make_fp16, "int8": make_int8}
