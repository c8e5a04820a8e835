# Collect torchvision's C++ operator libraries, which PyInstaller cannot find on its own.
#
# Why a naive build dies with "RuntimeError: operator torchvision::nms does not exist":
#   * `import torchvision` -> torchvision/extension.py calls `_load_library("_C_stable")`, which looks for the
#     file next to the package with `importlib.machinery.FileFinder(dirname(__file__))` and loads it with
#     `torch.ops.load_library()` (a plain dlopen that registers the torchvision::* operators). It is never
#     imported as a Python module, so PyInstaller's import analysis never sees it.
#   * pyinstaller-hooks-contrib's hook-torchvision.py still asks for the hidden import `torchvision._C`: the
#     name of that library up to torchvision 0.2x. Since it was renamed `_C_stable` (and `image` ->
#     `image_stable`) that hidden import matches nothing, and `collect_dynamic_libs()`'s default patterns
#     (`lib*.so`, `*.dll`, `*.dylib`) do not match `_C_stable.so` either. So the library is silently left out.
#   * `_load_library` swallows the OSError/ImportError (it only warns when
#     TORCHVISION_WARN_WHEN_EXTENSION_LOADING_FAILS is set), and the next module,
#     torchvision/_meta_registrations.py, runs `@torch.library.register_fake("torchvision::nms")` without a
#     guard: the operator was never registered, hence the error at start-up.
#
# This is the same message a development install gives when torchvision and torch builds do not match; in a
# frozen app the library is simply missing. The fix is to ship the libraries where torchvision looks for
# them (the `torchvision/` folder of the bundle); their own dependencies (torchvision.libs/, torch/lib/) are
# then found by PyInstaller's binary dependency analysis. The spec asserts that `_C_stable` is collected.
#
# A hook for the submodule (not `hook-torchvision.py`) so that it adds to the contributed hook - which keeps
# `module_collection_mode = "pyz+py"` for TorchScript's source introspection - instead of replacing it:
# PyInstaller runs only the highest-priority hook per module, and hooks from the spec's hookspath win.

from PyInstaller.utils.hooks import collect_dynamic_libs

# Extension suffixes torchvision's FileFinder accepts: `.so` (Linux, macOS), `.pyd` (Windows).
binaries = collect_dynamic_libs("torchvision", search_patterns=["_C*.so", "_C*.pyd", "image*.so", "image*.pyd"])
