"""The run folder: config, manifest, history, metrics and safetensors checkpoints, all written atomically.

Layout::

    RUN_DIR/config.json      everything needed to reproduce the run (``config.RunConfig``, versioned; written
                             before the first epoch)
    RUN_DIR/manifest.json    data root, split settings, and every file with label, sha256 and subset
    RUN_DIR/status.json      running | cancelled | failed | finished, with a one-line message
    RUN_DIR/history.csv      one row per finished epoch (epoch 1-based), every epoch once across resumes;
                             ``best_epoch`` names the best one by the rule the loop keeps ``best`` by
    RUN_DIR/metrics.json     the fit's summary; its test figures are those of the run's evaluation artefact
                             (``clinical.json``, ``evaluation.run_evaluation``), computed when the fit ends
    RUN_DIR/checkpoints/{best,last}.safetensors + .json (the metadata, and the SHA-256 of the weights file as
                             written: ``recorded_checkpoint_sha256``)
    RUN_DIR/.lock            only while a process writes the run: its pid, host and start (``runlock``)
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tl_desktop.core.config import RunConfig
from tl_desktop.core.errors import DamagedFileError, IncompleteRunError, RunError, RunIntegrityError
from tl_desktop.core.fsutil import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    csv_cell,
    csv_text,
    read_json,
)
from tl_desktop.core.run_schema import (
    MAX_MANIFEST_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_STATUS_BYTES,
    check_manifest,
    check_status,
)

if TYPE_CHECKING:
    import torch

HISTORY_FIELDS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_balanced_acc", "lr",
                  "seconds", "images_per_s"]


def config_path(run_dir: Path) -> Path:
    return Path(run_dir) / "config.json"


def write_status(run_dir: Path, state: str, message: str = "") -> None:
    """Write ``status.json``; a message longer than ``read_status`` accepts is shortened."""
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS - 3] + "..."
    atomic_write_json(Path(run_dir) / "status.json", {"state": state, "message": message})


def read_status(run_dir: Path) -> dict[str, str]:
    """``{"state", "message"}``; state "unknown" when the run has no status.json yet.

    Raises:
        RunError: the file is damaged (not JSON, unknown state, oversized); see ``run_schema.check_status``.
    """
    path = Path(run_dir) / "status.json"
    if not path.is_file():
        return {"state": "unknown", "message": ""}
    return check_status(_read_run_file(path, MAX_STATUS_BYTES), path)


def _read_run_file(path: Path, max_bytes: int) -> Any:
    """A run file's JSON; a damaged one is a RunError naming it."""
    try:
        return read_json(path, max_bytes=max_bytes)
    except DamagedFileError as exc:
        raise RunError(str(exc)) from exc


def write_history(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    table = [HISTORY_FIELDS, *([row.get(name, "") for name in HISTORY_FIELDS] for row in rows)]
    atomic_write_text(Path(run_dir) / "history.csv", csv_text(table))


def read_history(run_dir: Path) -> list[dict[str, float]]:
    path = Path(run_dir) / "history.csv"
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as handle:
        return [{k: float(v) for k, v in row.items() if v not in (None, "")} for row in csv.DictReader(handle)]


NO_BEST = (-math.inf, -math.inf)  # the key no epoch can fall below


def best_key(row: dict[str, Any]) -> tuple[float, float]:
    """What makes an epoch better: a higher validation balanced accuracy, ties broken by a lower validation
    loss. A larger key is better; rows of runs older than balanced accuracy use plain validation accuracy."""
    score = row.get("val_balanced_acc", row.get("val_acc", -math.inf))
    return float(score), -float(row.get("val_loss", math.inf))


def best_epoch(rows: list[dict[str, Any]]) -> int | None:
    """The best epoch of a history (1-based, as ``history.csv`` and the log number it) under ``best_key``;
    of equal epochs the earliest, exactly as the training loop keeps its ``best`` checkpoint. None: no rows."""
    best, key = None, NO_BEST
    for row in rows:
        if best_key(row) > key:
            best, key = int(row["epoch"]), best_key(row)
    return best


def earlier_history(run_dir: Path) -> tuple[str, list[dict[str, float]]] | None:
    """(folder name, history rows) of the run this one continued from (``config.init_from``); None when the run
    did not continue another, or its config or the earlier folder cannot be read (curves only: nothing fails)."""
    try:
        earlier = load_config(run_dir).init_from
    except RunError:
        return None
    if earlier is None or not Path(earlier.run_dir).is_dir():
        return None
    return Path(earlier.run_dir).name, read_history(Path(earlier.run_dir))


PREDICTIONS_FILE = "test_predictions.csv"


def write_predictions(run_dir: Path, paths: list[str], true: list[str], probs, class_names: list[str],
                      predicted: list[str] | None = None) -> None:
    """Every test image's true class, predicted class and class probabilities (``test_predictions.csv``);
    ``predicted`` where the answer is not the most probable class (a multi-label run's findings, ``a;b``)."""
    table = [["path", "true", "predicted", *[f"p_{name}" for name in class_names]]]
    for k, (path, label, row) in enumerate(zip(paths, true, probs, strict=True)):
        best = class_names[max(range(len(class_names)), key=lambda i: row[i])] if predicted is None else predicted[k]
        table.append([path, label, best, *[f"{float(p):.7f}" for p in row]])
    atomic_write_text(Path(run_dir) / PREDICTIONS_FILE, csv_text(table))


def read_predictions(run_dir: Path) -> dict[str, Any] | None:
    """``{"paths", "true", "predicted", "probs", "class_names"}`` of the test split, or None for older runs."""
    path = Path(run_dir) / PREDICTIONS_FILE
    if not path.is_file():
        return None
    with open(path, encoding="utf-8", newline="") as handle:
        rows = [[csv_cell(cell) for cell in row] for row in csv.reader(handle)]
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
    return files_digest(load_manifest(run_dir)["files"])


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
    data = save(tensors, metadata={"tl_desktop": json.dumps(meta)})
    atomic_write_bytes(folder / f"{which}.safetensors", data)
    atomic_write_json(folder / f"{which}.json", {**meta, "sha256": hashlib.sha256(data).hexdigest()})


def checkpoint_path(run_dir: Path | str, which: str = "best") -> Path:
    return Path(run_dir) / "checkpoints" / f"{which}.safetensors"


def file_sha256(path: Path | str) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_sha256(run_dir: Path | str, which: str = "best") -> str | None:
    """SHA-256 of the checkpoint file as it is now (hashed: a few MB, milliseconds), None when absent."""
    path = checkpoint_path(run_dir, which)
    return file_sha256(path) if path.is_file() else None


def recorded_checkpoint_sha256(run_dir: Path | str, which: str = "best") -> str | None:
    """The SHA-256 recorded in ``<which>.json`` when the checkpoint was written; None for older runs."""
    sidecar = Path(run_dir) / "checkpoints" / f"{which}.json"
    return read_json(sidecar).get("sha256") if sidecar.is_file() else None


def verify_checkpoint(run_dir: Path | str, which: str = "best") -> None:
    """Refuse a checkpoint whose SHA-256 is not the one recorded when it was written; runs written before the
    record existed (no ``sha256`` in ``<which>.json``) pass.

    Training replaces the weights file and then its record, so a reader in between sees a pair that does not
    match: a mismatch is looked at once more a moment later before it is refused.

    Raises:
        RunIntegrityError: the file was modified after it was written.
    """
    import time

    for attempt in range(2):
        try:
            recorded = recorded_checkpoint_sha256(run_dir, which)
        except (OSError, ValueError):
            recorded = None  # an unreadable record cannot vouch for or against the file
        if recorded is None or checkpoint_sha256(run_dir, which) == recorded:
            return
        if attempt == 0:
            time.sleep(0.25)
    summary = (f"checkpoints/{which}.safetensors was modified after training (its SHA-256 no longer matches the "
               "one recorded when it was written)")
    raise RunIntegrityError(f"{summary}; train the run again", summary=summary)


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
    verify_checkpoint(run_dir, which)
    try:
        with safe_open(str(weights), framework="pt") as handle:
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
            header = (handle.metadata() or {}).get("tl_desktop")
    except Exception as exc:  # noqa: BLE001 - a damaged file of any kind
        raise RunError(f"{weights.name} is damaged ({type(exc).__name__})") from exc
    info = json.loads(header) if header else read_json(folder / f"{which}.json")
    info.pop("sha256", None)  # the sidecar's record of the file, not loop state
    model_state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    if not _all_finite(model_state):
        raise RunError(f"{weights}: the model's weights contain NaN or infinite values; retrain or resume from "
                       "an earlier checkpoint")
    optimizer = _unflatten_optimizer(tensors, info.pop("optimizer")) if "optimizer" in info else None
    return model_state, optimizer, info


def _all_finite(state: dict[str, torch.Tensor]) -> bool:
    import torch

    return all(bool(torch.isfinite(t).all()) for t in state.values() if t.is_floating_point())


def load_manifest(run_dir: Path) -> dict[str, Any]:
    """The run's manifest.json, checked (``run_schema.check_manifest``).

    Raises:
        IncompleteRunError: the folder has none (a RunError).
        RunError: it is damaged (not JSON, wrong keys or types), naming the file.
    """
    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        raise IncompleteRunError(f"{Path(run_dir).name} is not a complete run (no manifest.json)")
    return check_manifest(_read_run_file(path, MAX_MANIFEST_BYTES), path)


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
    data = _read_run_file(path, MAX_MANIFEST_BYTES)
    try:
        return RunConfig.from_dict(data)
    except RunError as exc:
        raise RunError(f"{Path(run_dir).name}: {exc}") from exc
