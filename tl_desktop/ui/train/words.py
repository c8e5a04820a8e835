"""The engine's progress phases in the words the window shows (plain words first, the technical term second).

The core names its phases briefly (``Progress("embedding train", ...)``, ``"preparing images"``); these are
keys the command line matches too, so they stay as they are and the window translates them here.
"""

from __future__ import annotations

PARTS = {"train": "training", "val": "validation", "test": "test"}
PHASES = {  # short: the text must fit a progress bar of half a laptop screen with "40 of 100 images"
    "embedding": "Reading each image (features)",
    "preparing images": "Preparing the images (decoded once)",
    "evaluating": "Testing on unseen images (evaluation)",
    "predicting": "Answering for each image (prediction)",
    "scan": "Checking each image file (scan)",
    "export": "Writing the model file (export)",
    "predict": "Answering for each image (prediction)",
}


def phase_words(phase: str) -> str:
    """``embedding train`` -> ``Reading each training image (features)``; a phase not known here comes back
    with a capital letter."""
    head, _, part = phase.partition(" ")
    if phase in PHASES:
        return PHASES[phase]
    if head in PHASES and part in PARTS:
        return PHASES[head].replace("each image", f"each {PARTS[part]} image")
    return phase[:1].upper() + phase[1:]


def progress_format(phase: str, eta_s: float | None, done: int, total: int) -> str:
    """The progress bar's format (``%v``/``%m`` filled by Qt): ``Preparing the images (...): 3 of 40 images,
    about 12 s left``."""
    left = f", about {eta_s:.0f} s left" if eta_s and done < total else ""
    return f"{phase_words(phase)}: %v of %m images{left}"
