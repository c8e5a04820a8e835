"""One tiny real run, trained by the engine and exported once per test session, shared by the ONNX tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TINY = dict(strategy="linear-probe", epochs=3, lr=2e-2, image_size=32, batch_size=16, seed=3, patience=0, workers=0)


def trained_run(tmp_path_factory, digits_dir) -> Path:
    """3 digit classes, 32 px, 3 epochs of linear probe (a few seconds on a CPU)."""
    from tl_desktop.core.training.run import TrainConfig, train

    run = tmp_path_factory.getbasetemp() / "onnx-shared" / "run"
    if not (run / "checkpoints" / "best.safetensors").is_file():
        train(TrainConfig(data=str(digits_dir), out=str(run), **TINY))
    return run


def exported(tmp_path_factory, digits_dir):
    """The run exported with fp16 and int8 variants: ExportResult (memoised for the session).

    The int8 tolerances are lifted here so this tiny model's int8 file is kept and its figures can be checked
    (its 1-in-12 top-1 flips, and unfamiliarity off by 0.4, would refuse it); test_export checks the real
    tolerance refuses a variant.
    """
    import pytest

    from tl_desktop.core.export import onnx_export as export_mod
    from tl_desktop.core.export.onnx_export import export_onnx

    global _EXPORT
    if _EXPORT is None:
        run = trained_run(tmp_path_factory, digits_dir)
        with pytest.MonkeyPatch.context() as patch:
            patch.setitem(export_mod.TOLERANCES, "int8", {"top1_agreement": 0.0})
            patch.setitem(export_mod.verify.UNFAMILIAR_TOLERANCES, "int8", {"max_rel_diff": 1.0, "flag_agreement": 0.0})
            _EXPORT = export_onnx(run, run.parent / "model" / "digits.onnx", fp16=True, int8=True)
    return _EXPORT


_EXPORT = None


def photos() -> dict[str, Image.Image]:
    """Real photographs from scikit-image in several aspect ratios, grey and colour, plus crops of them."""
    from skimage import data

    base = {name: getattr(data, name)() for name in ("astronaut", "coffee", "chelsea", "rocket", "camera")}
    images = {name: Image.fromarray(np.asarray(arr)).convert("RGB") for name, arr in base.items()}
    images["tall"] = images["rocket"].crop((100, 0, 260, 427))        # 160 x 427
    images["wide"] = images["coffee"].crop((0, 150, 600, 250))        # 600 x 100
    images["small"] = images["chelsea"].resize((21, 37), Image.Resampling.BILINEAR)  # smaller than the crop
    images["odd"] = images["astronaut"].crop((3, 7, 304, 206))        # odd sizes: rounding of the crop box
    return images


def write_photos(folder: Path, copies: int = 1, fmt: str = "jpg") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(copies):
        for name, image in photos().items():
            path = folder / f"{name}_{i:03d}.{fmt}"
            image.save(path, quality=92) if fmt == "jpg" else image.save(path)
            paths.append(path)
    return paths
