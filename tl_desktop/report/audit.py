"""The audit folder of a report: every file of the run's manifest with SHA-256 and label, the run's
configuration (local folders reduced to their names), metrics, environment, and the ONNX file with its
verification. ``SHA256SUMS`` lists every file of the folder.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tl_desktop.core.config import RunConfig
from tl_desktop.core.errors import UserFacingError
from tl_desktop.core.fsutil import atomic_write_json, atomic_write_text, csv_text, read_json


class ReportError(UserFacingError):
    """The report cannot be written; ``str()`` is one readable line (outside core: the report uses Qt)."""


def sanitise(value: Any) -> Any:
    """Absolute paths (which may name a person or a hospital folder) reduced to their last part, recursively."""
    if isinstance(value, dict):
        return {k: sanitise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitise(v) for v in value]
    if isinstance(value, str) and (value.startswith(("/", "\\\\")) or (len(value) > 2 and value[1:3] in (":\\", ":/"))):
        return Path(value.replace("\\", "/")).name
    return value


def file_namer(manifest: dict[str, Any], hide: bool) -> Callable[[str], str]:
    """Relative path -> how the report names the file: the path itself, or ``sha256:<first 16>`` when hidden."""
    if not hide:
        return lambda rel: rel
    shas = {f["path"]: f["sha256"] for f in manifest["files"]}
    return lambda rel: f"sha256:{shas.get(rel, hashlib.sha256(rel.encode()).hexdigest())[:16]}"


def environment(config: RunConfig, run_dir: Path) -> dict[str, Any]:
    """Library versions of the training, the training hardware when recorded, and this computer."""
    import torch

    memory = None
    try:
        memory = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1)
    except (AttributeError, ValueError, OSError):
        pass
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    hardware_file = run_dir / "hardware.json"
    return {
        "training_versions": config.versions,
        "training_device_setting": config.device,
        "training_hardware": read_json(hardware_file) if hardware_file.is_file() else None,
        "report_computer": {"os": platform.platform(), "cpu": platform.processor() or platform.machine(),
                            "cpu_count": os.cpu_count(), "memory_gib": memory, "gpus": gpus,
                            "python": platform.python_version(), "torch": torch.__version__},
    }


def _manifest_csv(manifest: dict[str, Any], name: Callable[[str], str]) -> str:
    rows: list[list[Any]] = [["subset", "label", "file", "sha256", "width", "height"]]
    order = {"train": 0, "val": 1, "test": 2}
    for f in sorted(manifest["files"], key=lambda f: (order.get(f["subset"], 3), f["label"], f["path"])):
        rows.append([f["subset"], f["label"], name(f["path"]), f["sha256"], f.get("width", ""), f.get("height", "")])
    return csv_text(rows)


_REASON_WORDS = {"near-duplicate": "near-duplicate", "label-error": "label error", "user": "user"}


def _review_csv(review: dict[str, Any], name: Callable[[str], str]) -> str:
    """The review decisions the run applied (``manifest["review"]``): one row per excluded or relabelled file
    and per file of a keep-together group, and each file such a group moved to another part of a stored split;
    files named as in the rest of the audit folder."""
    rows: list[list[Any]] = [["decision", "file", "reason", "other_file", "given_label", "new_label", "group"]]
    for item in review.get("excluded", []):
        other = name(item["of"]) if item.get("of") else ""
        rows.append(["excluded", name(item["path"]), _REASON_WORDS.get(item.get("reason"), item.get("reason")),
                     other, "", "", ""])
    for item in review.get("relabelled", []):
        rows.append(["relabelled", name(item["path"]), "label error", "", item["from"], item["to"], ""])
    for number, group in enumerate(review.get("together", []), start=1):
        rows.extend(["kept together", name(path), "", "", "", "", number] for path in group)
    for item in review.get("moved", []):  # a keep-together group that spanned parts of a stored split
        rows.append(["moved", name(item["path"]), f"from {item['from']} to {item['to']}, with its group", "", "",
                     "", ""])
    return csv_text(rows)


def _renamed(data: Any, name: Callable[[str], str]) -> Any:
    """metrics.json / clinical.json with every file reference passed through ``name``."""
    data = sanitise(data)
    for item in data.get("misclassified", []) if isinstance(data, dict) else []:
        item["path"] = name(item["path"])
    for preds in (data.get("predictions") or {}).values() if isinstance(data, dict) else []:
        preds["paths"] = [name(p) for p in preds["paths"]]
    return data


def write_audit(run_dir: Path, out: Path, config: RunConfig, manifest: dict[str, Any],
                clinical: dict[str, Any] | None, onnx_files: list[Path], name: Callable[[str], str],
                transfer: dict[str, Any] | None = None, documents: dict[str, Any] | None = None) -> list[str]:
    """Write ``out/audit``; returns the files written, relative to ``out``. ``documents``: more JSON files
    (name -> content, e.g. the model card and checklist), listed in ``SHA256SUMS`` like the others."""
    audit = out / "audit"
    if audit.exists():
        shutil.rmtree(audit)
    audit.mkdir(parents=True)
    atomic_write_text(audit / "manifest.csv", _manifest_csv(manifest, name))
    split = {k: v for k, v in manifest["split"].items() if k not in ("assignment", "groups")}
    review = manifest.get("review") if isinstance(manifest.get("review"), dict) else None
    atomic_write_json(audit / "split.json", {**split, "classes": manifest["classes"],
                                              "files": len(manifest["files"]),
                                              "review_decisions": review.get("counts") if review else None})
    if review:
        try:
            text = _review_csv(review, name)
        except (KeyError, TypeError, AttributeError) as exc:  # a hand-edited manifest: refused in one line
            raise ReportError(f"the review decisions in {run_dir.name}/manifest.json are damaged ({exc!r}); "
                              "train the run again") from exc
        atomic_write_text(audit / "review_decisions.csv", text)
    atomic_write_json(audit / "run_config.json", sanitise(config.to_dict()))
    atomic_write_json(audit / "environment.json", environment(config, run_dir))
    for source in ("metrics.json", "status.json"):
        if (run_dir / source).is_file():
            atomic_write_json(audit / source, _renamed(read_json(run_dir / source), name))
    if transfer is not None:
        atomic_write_json(audit / "transfer.json", sanitise(transfer))
    if clinical is not None:
        atomic_write_json(audit / "clinical.json", _renamed(clinical, name))
        from tl_desktop.report.subgroups import audit_json

        if (breakdown := audit_json(clinical)) is not None:
            atomic_write_json(audit / "subgroups.json", breakdown)
    if (run_dir / "history.csv").is_file():
        shutil.copyfile(run_dir / "history.csv", audit / "history.csv")
    for onnx_path in onnx_files:
        _copy_model(onnx_path, audit / "model")
    for file, document in (documents or {}).items():
        atomic_write_json(audit / file, sanitise(document))
    return _checksums(out, audit)


def _copy_model(onnx_path: Path, folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    shutil.copyfile(onnx_path, folder / onnx_path.name)
    verification = onnx_path.with_name(f"{onnx_path.stem}.verification.json")
    if verification.is_file():
        atomic_write_json(folder / verification.name, sanitise(read_json(verification)))


def _checksums(out: Path, audit: Path) -> list[str]:
    files = sorted(p for p in audit.rglob("*") if p.is_file())
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(audit).as_posix()}" for p in files]
    atomic_write_text(audit / "SHA256SUMS", "\n".join(lines) + "\n")
    return [p.relative_to(out).as_posix() for p in [*files, audit / "SHA256SUMS"]]


def check_no_local_paths(out: Path, forbidden: list[str]) -> None:
    """Raise ReportError when a text file of the report contains a local folder path (or a DICOM header dump)."""
    needles = [f for f in {str(f) for f in forbidden} if len(f) > 1]
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".csv", ".html", ".txt", "") :
            text = path.read_text(encoding="utf-8", errors="replace")
            for needle in needles:
                if needle in text:
                    raise ReportError(f"{path.relative_to(out)} would contain a local folder path; report refused")
