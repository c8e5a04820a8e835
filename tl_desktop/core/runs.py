"""The run folder: config, manifest, history, metrics and safetensors checkpoints, all written atomically.

Layout::

    RUN_DIR/config.json      everything needed to reproduce the run (``config.RunConfig``, versioned; written
                             before the first epoch)
    RUN_DIR/manifest.json    data root, split settings, and every file with label, sha256 and subset
    RUN_DIR/status.json      running | cancelled | failed | finished, with a one-line message
    RUN_DIR/history.csv      one row per finished epoch
    RUN_DIR/metrics.json     test metrics after the fit
    RUN_DIR/checkpoints/{best,last}.safetensors + .json
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tl_desktop.core.config import RunConfig
from tl_desktop.core.errors import IncompleteRunError, RunError
from tl_desktop.core.fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json

if TYPE_CHECKING:
    import torch

HISTORY_FIELDS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_balanced_acc", "lr",
                  "seconds", "images_per_s"]


def config_path(run_dir: Path) -> Path:
    return Path(run_dir) / "config.json"


def write_status(run_dir: Path, state: str, message: str = "") -> None:
    atomic_write_json(Path(run_dir) / "status.json", {"state": state, "message": message})


def read_status(run_dir: Path) -> dict[str, str]:
    path = Path(run_dir) / "status.json"
    return read_json(path) if path.is_file() else {"state": "unknown", "message": ""}


def write_history(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(Path(run_dir) / "history.csv", buffer.getvalue())


def read_history(run_dir: Path) -> list[dict[str, float]]:
    path = Path(run_dir) / "history.csv"
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as handle:
        return [{k: float(v) for k, v in row.items() if v not in (None, "")} for row in csv.DictReader(handle)]


PREDICTIONS_FILE = "test_predictions.csv"


def write_predictions(run_dir: Path, paths: list[str], true: list[str], probs, class_names: list[str]) -> None:
    """Every test image's true class, predicted class and class probabilities (``test_predictions.csv``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "true", "predicted", *[f"p_{name}" for name in class_names]])
    for path, label, row in zip(paths, true, probs, strict=True):
        best = max(range(len(class_names)), key=lambda i: row[i])
        writer.writerow([path, label, class_names[best], *[f"{float(p):.7f}" for p in row]])
    atomic_write_text(Path(run_dir) / PREDICTIONS_FILE, buffer.getvalue())


def read_predictions(run_dir: Path) -> dict[str, Any] | None:
    """``{"paths", "true", "predicted", "probs", "class_names"}`` of the test split, or None for older runs."""
    path = Path(run_dir) / PREDICTIONS_FILE
    if not path.is_file():
        return None
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    return {"paths": [r[0] for r in body], "true": [r[1] for r in body], "predicted": [r[2] for r in body],
            "probs": [[float(v) for v in r[3:]] for r in body],
            "class_names": [h.removeprefix("p_") for h in header[3:]]}


def files_digest(files: list[dict[str, Any]]) -> str:
    """SHA-256 over (path, label, sha256, subset) of every file, independent of order and of the data root."""
    rows = sorted(f"{f['path']}\t{f['label']}\t{f['sha256']}\t{f['subset']}" for f in files)
    return hashlib.sha256("\n".join(rows).encode("utf-8", "surrogateescape")).hexdigest()


def manifest_hash(run_dir: Path) -> str:
    """Hash of the training manifest's content: changes whenever any file, label or subset assignment changes,
    and is the same on every computer (the data folder's location is not part of it)."""
    return files_digest(read_json(Path(run_dir) / "manifest.json")["files"])


# --- checkpoints -----------------------------------------------------------------------------------------

_ST_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
                "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8}
_ST_MAX_HEADER = 64 * 1024 * 1024


def check_safetensors(path: Path) -> dict[str, Any]:
    """The header of a ``.safetensors`` file from outside, checked before any tensor is read.

    Checks the header length against the file size, that the header is a JSON object of tensors with a
    known dtype, a shape of non-negative integers and data offsets that lie inside the file, match the
    shape and do not overlap. Returns the parsed header.

    Raises:
        ValueError: one line saying what is wrong (the caller names the file).
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ValueError("empty or truncated weights file")
        length = int.from_bytes(head, "little")
        if length < 2 or length > min(_ST_MAX_HEADER, size - 8):
            raise ValueError(f"header length {length} does not fit a file of {size} bytes")
        try:
            header = json.loads(handle.read(length))
        except (ValueError, UnicodeDecodeError):
            raise ValueError("the header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ValueError("the header is not a table of tensors")
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise ValueError("the header's __metadata__ is not a table of texts")
            continue
        spans.append(_tensor_span(name, entry))
    end = 0
    for begin, stop, name in sorted(spans):
        if begin != end:
            raise ValueError(f"tensor {name[:60]} overlaps another or leaves a gap")
        end = stop
    if 8 + length + end != size:
        raise ValueError(f"the tensors take {end} bytes but the file holds {size - 8 - length}")
    return header


def _tensor_span(name: str, entry: Any) -> tuple[int, int, str]:
    ok = (isinstance(entry, dict) and entry.get("dtype") in _ST_ITEMSIZE and isinstance(entry.get("shape"), list)
          and all(isinstance(d, int) and d >= 0 for d in entry["shape"])
          and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
          and all(isinstance(o, int) and o >= 0 for o in entry["data_offsets"]))
    if not ok:
        raise ValueError(f"tensor {name[:60]} has no valid dtype, shape and offsets")
    begin, stop = entry["data_offsets"]
    count = 1
    for d in entry["shape"]:
        count *= d
    if stop - begin != count * _ST_ITEMSIZE[entry["dtype"]]:
        raise ValueError(f"tensor {name[:60]}: its offsets do not match its shape")
    return begin, stop, name


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            name = f"optimizer.{index}.{key}"
            if hasattr(value, "shape") and value.dim() > 0:
                tensors[name] = value.detach().cpu().contiguous()
            else:
                scalars[name] = float(value)
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    import torch

    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for name, value in meta["scalars"].items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = torch.tensor(value)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(run_dir: Path, which: str, model: torch.nn.Module, info: dict[str, Any],
                    optimizer: torch.optim.Optimizer | None = None) -> None:
    """Write ``checkpoints/<which>.safetensors`` (weights, optimiser tensors and, in its header, the JSON
    metadata) and a readable copy of that metadata as ``<which>.json``.

    The header copy is the one that counts: weights and loop state change together in one atomic write, so a
    crash between the two files can never pair new weights with an old epoch counter.
    """
    from safetensors.torch import save

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = dict(info)
    if optimizer is not None:
        opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
        tensors.update(opt_tensors)
        meta["optimizer"] = opt_meta
    folder = Path(run_dir) / "checkpoints"
    atomic_write_bytes(folder / f"{which}.safetensors", save(tensors, metadata={"tl_desktop": json.dumps(meta)}))
    atomic_write_json(folder / f"{which}.json", meta)


def load_checkpoint(run_dir: Path, which: str) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None, dict]:
    """Returns (model state dict, optimiser state dict or None, info)."""
    from safetensors import safe_open

    folder = Path(run_dir) / "checkpoints"
    weights = folder / f"{which}.safetensors"
    if not weights.is_file():
        raise RunError(f"{run_dir}: no '{which}' checkpoint yet")
    try:
        check_safetensors(weights)
    except (OSError, ValueError) as exc:
        raise RunError(f"{weights.name} is damaged: {exc}") from exc
    try:
        with safe_open(str(weights), framework="pt") as handle:
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
            header = (handle.metadata() or {}).get("tl_desktop")
    except Exception as exc:  # noqa: BLE001 - a damaged file of any kind
        raise RunError(f"{weights.name} is damaged ({type(exc).__name__})") from exc
    info = json.loads(header) if header else read_json(folder / f"{which}.json")
    model_state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    optimizer = _unflatten_optimizer(tensors, info.pop("optimizer")) if "optimizer" in info else None
    return model_state, optimizer, info


def load_manifest(run_dir: Path) -> dict[str, Any]:
    """The run's manifest.json. Raises IncompleteRunError (a RunError) when the folder has none."""
    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        raise IncompleteRunError(f"{Path(run_dir).name} is not a complete run (no manifest.json)")
    return read_json(path)


def write_config(run_dir: Path, config: RunConfig) -> None:
    """Write ``config.json``, after checking that ``load_config`` will read it back (RunError otherwise)."""
    data = config.to_dict()
    RunConfig.from_dict(data)
    atomic_write_json(config_path(run_dir), data)


def load_config(run_dir: Path) -> RunConfig:
    """The run's resolved config; files of earlier schema versions are migrated in memory.

    Raises:
        RunError: no config.json, or one that cannot be read or is invalid (one readable line).
    """
    path = config_path(run_dir)
    if not path.is_file():
        raise IncompleteRunError(f"{run_dir} is not a run folder (no config.json)")
    try:
        return RunConfig.from_dict(read_json(path))
    except ValueError as exc:  # not JSON
        raise RunError(f"{Path(run_dir).name}: config.json cannot be read ({exc})") from exc
    except RunError as exc:
        raise RunError(f"{Path(run_dir).name}: {exc}") from exc
