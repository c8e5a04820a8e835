# onnxscript compiles its @onnxscript.script functions from their Python source at import time
# (onnxscript/_internal/ast_utils.py: inspect.getsource). torch.onnx's dynamo-based exporter imports
# onnxscript.function_libs.torch_lib, whose ops/common.py holds such functions, and tl_desktop.core.models.onnx_tools
# falls back to that exporter when a model cannot be traced. With bytecode only, that import fails in the
# frozen app with "OSError: could not get source code". pyinstaller-hooks-contrib has no onnxscript hook, so
# collect the package like the contributed torch/timm hooks do: bytecode in the PYZ plus the .py sources.
module_collection_mode = "pyz+py"
