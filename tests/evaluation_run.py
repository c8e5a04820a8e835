"""One small finished run shared by the clinical, explanation and report tests (trained once per session).

Two real digit classes (3 and 8, scikit-learn's handwritten digits) at 64 px: a linear probe of the bundled
EfficientNet-Lite0 trains in seconds on a CPU and leaves a few mistakes to show.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers import write_digits_folder

_RUNS: dict[str, Path] = {}


def two_digit_run(tmp_path_factory) -> Path:
    """RUN_DIR of a finished linear-probe run on digits 3 vs 8 (the same folder for the whole session)."""
    if "run" not in _RUNS:
        from tl_desktop.core.training.run import TrainConfig, train

        base = tmp_path_factory.mktemp("two_digits")
        data = write_digits_folder(base / "data", classes=(3, 8), per_class=60, size=64)
        train(TrainConfig(data=str(data), out=str(base / "run"), strategy="linear-probe", epochs=2, image_size=64,
                          batch_size=16, lr=2e-2, seed=1, workers=0, patience=0))
        _RUNS["run"] = base / "run"
    return _RUNS["run"]
