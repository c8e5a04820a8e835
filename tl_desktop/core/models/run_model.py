"""A finished run folder turned back into its model: weights, class names, preprocessing, config, manifest."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tl_desktop.core.config import RunConfig
from tl_desktop.core.errors import RunError
from tl_desktop.core.runs import load_checkpoint, load_config, load_manifest


@dataclass
class LoadedRun:
    run_dir: Path
    model: Any
    class_names: list[str]
    data_config: dict[str, Any]
    config: RunConfig
    manifest: dict[str, Any] = field(repr=False)
    decision: dict[str, str] | None = field(default=None, repr=False)  # export's snapshot of clinical.json

    @property
    def root(self) -> Path:
        return Path(self.manifest["root"])

    def files(self, subset: str | None = None) -> list[tuple[Path, str]]:
        """(absolute path, label) of the run's files, optionally of one subset ("train", "val", "test").

        Raises:
            RunError: the run's data folder is not there any more (moved, renamed, drive not connected).
        """
        if self.manifest["files"] and not self.root.is_dir():
            raise RunError(f"the images of {self.run_dir.name} are no longer in {self.root}; reconnect the drive "
                           "or move the folder back")
        return [(self.root / f["path"], f["label"]) for f in self.manifest["files"]
                if subset is None or f["subset"] == subset]


def load_run(run_dir: Path | str, which: str = "best") -> LoadedRun:
    """The trained model (eval mode, CPU) with its class names, preprocessing, config and manifest."""
    from tl_desktop.core.models.catalog import create_model

    run_dir = Path(run_dir)
    config = load_config(run_dir)
    state, _, _ = load_checkpoint(run_dir, which)
    model = create_model(config.model, len(config.class_names), weights="none")
    model.load_state_dict(state, strict=True)
    manifest = load_manifest(run_dir)
    return LoadedRun(run_dir, model.eval(), list(config.class_names), dict(config.data_config), config,
                     manifest)
