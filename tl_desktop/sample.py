"""The sample project: scikit-learn's handwritten digits written as PNG class folders, ready to train.

A new user opens it from the welcome page and trains within a minute. Nothing is downloaded: the 1,797 digit
images (8x8, 17 grey levels, from the UCI ML repository) ship inside scikit-learn.
"""

from __future__ import annotations

import io
from pathlib import Path

from tl_desktop import paths
from tl_desktop.core.events import CancelToken, Progress
from tl_desktop.core.fsutil import atomic_write_bytes
from tl_desktop.core.project import project_file as proj

SAMPLE_NAME = "Handwritten digits (sample)"
SAMPLE_FOLDER = "Sample - handwritten digits"
IMAGES_FOLDER = "images"


def default_folder(projects_folder: Path | None = None) -> Path:
    """The sample's folder inside the projects folder (the window passes the user's choice), where the user
    finds its runs, exports and reports like any other project's, never in the hidden data folder."""
    return (projects_folder or paths.default_projects_dir()) / SAMPLE_FOLDER


def write_digit_images(root: Path, *, size: int = 64, per_class: int | None = None, callback=None,
                       cancel: CancelToken | None = None) -> int:
    """Write the digits as ``root/digit_<k>/<k>_<i>.png`` (upscaled to ``size`` px); returns the count."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    chosen, seen = [], {}
    for img, target in zip(digits.images, digits.target, strict=True):
        if per_class is None or seen.get(int(target), 0) < per_class:
            chosen.append((img, int(target)))
            seen[int(target)] = seen.get(int(target), 0) + 1
    seen = {}
    for n, (img, target) in enumerate(chosen):
        if cancel is not None and n % 100 == 0:
            cancel.raise_if_cancelled()
        folder = root / f"digit_{target}"
        folder.mkdir(parents=True, exist_ok=True)
        index = seen[target] = seen.get(target, -1) + 1
        arr = (255 - img / 16.0 * 255).astype(np.uint8)  # dark ink on white paper, as people write
        buffer = io.BytesIO()
        Image.fromarray(arr, mode="L").resize((size, size), Image.BILINEAR).save(buffer, format="PNG")
        atomic_write_bytes(folder / f"{target}_{index:03d}.png", buffer.getvalue())
        if callback is not None and n % 100 == 0:
            callback(Progress("sample", n, len(chosen)))
    return len(chosen)


def build_sample_project(folder: str | Path | None = None, *, size: int = 64, per_class: int | None = None,
                         callback=None, cancel: CancelToken | None = None) -> Path:
    """Create (or reuse) the sample project and return its folder.

    The settings are chosen so the first run is quick on a laptop CPU: a linear probe on the offline
    EfficientNet-Lite0 at 64 px for a few epochs.
    """
    folder = Path(folder) if folder is not None else default_folder()
    if (folder / proj.PROJECT_FILE).is_file():
        return folder
    images = folder / IMAGES_FOLDER
    write_digit_images(images, size=size, per_class=per_class, callback=callback, cancel=cancel)
    project = proj.Project(name=SAMPLE_NAME, folder=folder.absolute())
    project.set_source(images)
    project.settings.image_size = size
    project.settings.epochs = 5
    project.settings.strategy = "linear-probe"
    project.settings.augmentation = "none"
    proj.save(project)
    return folder


def write_radiographs(root: Path, *, per_class: int, side: int = 1024, seed: int = 0) -> list[Path]:
    """Synthetic 16-bit greyscale DICOM "radiographs" in two class folders (``normal``, ``opacity``).

    A chest-like field (two darker lung ellipses in a brighter body, 12-bit values with noise); ``opacity``
    images carry one bright blob in a lung. Used by the benchmarks and tests that need clinical-size files;
    every file gets fresh instance UIDs and no patient data.
    """
    import numpy as np
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    body = 2600.0 - 900.0 * ((xx - 0.5) ** 2 + (yy - 0.55) ** 2)
    lungs = sum(((xx - cx) / 0.17) ** 2 + ((yy - 0.5) / 0.3) ** 2 < 1 for cx in (0.32, 0.68))
    written = []
    for label in ("normal", "opacity"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = body - 1400.0 * lungs + rng.normal(0, 60, (side, side)).astype(np.float32)
            if label == "opacity":
                cx, cy, r = rng.uniform(0.25, 0.75), rng.uniform(0.35, 0.65), rng.uniform(0.04, 0.09)
                image += 1100.0 * np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))
            pixels = np.clip(image, 0, 4095).astype(np.uint16)
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            path = root / label / f"{label}_{i:04d}.dcm"
            ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
            ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
            ds.Modality, ds.PhotometricInterpretation = "DX", "MONOCHROME2"
            ds.Rows, ds.Columns, ds.SamplesPerPixel = side, side, 1
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
            ds.PixelData = pixels.tobytes()
            pydicom.dcmwrite(path, ds, enforce_file_format=True)
            written.append(path)
    return written
