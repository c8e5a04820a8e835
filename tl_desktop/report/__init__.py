"""Audit-ready report of a run: ``report.pdf``, ``report.html`` (+ ``figures/``) and an ``audit/`` folder.

Outside ``tl_desktop.core`` because it draws with Qt (QPainter charts, QTextDocument -> QPdfWriter); it works
without a display (an offscreen QApplication is created when none exists), so the CLI can use it.

    from tl_desktop.report import write_report
    result = write_report(run_dir, out_dir)   # computes clinical.json first if it is missing or stale

Every figure, table and the audit's clinical.json come from the run's one evaluation artefact (the current
evaluation of the best checkpoint, ``current.current_clinical``); the report names that checkpoint. From
``metrics.json`` only the training summary (epochs run) is read.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tl_desktop.report.audit import ReportError

__all__ = ["ReportError", "ReportResult", "write_report", "find_onnx", "require_finished"]

MAX_HEATMAPS = 6


@dataclass
class ReportResult:
    pdf: Path
    html: Path
    audit: Path
    files: list[str]
    warnings: list[str]


def find_onnx(run_dir: Path) -> list[Path]:
    """Exported models kept in the run folder (or a sub-folder) with their verification file."""
    return sorted(p for p in Path(run_dir).rglob("*.onnx")
                  if p.with_name(f"{p.stem}.verification.json").is_file()
                  and "audit" not in p.relative_to(run_dir).parts)  # not the copy in an earlier report


def require_finished(run_dir: Path | str) -> None:
    """Raise ReportError unless the run finished training (a report needs its test metrics)."""
    from tl_desktop.core import runs

    run_dir = Path(run_dir)
    if not runs.config_path(run_dir).is_file():
        runs.load_config(run_dir)  # the RunError of a folder that is not a run
    if runs.read_status(run_dir)["state"] != "finished" or not (run_dir / "metrics.json").is_file():
        raise ReportError(f"{run_dir.name} has not finished training; a report needs a finished run")


def write_report(run_dir: Path | str, out: Path | str | None = None, *, onnx: list[Path | str] | None = None,
                 hide_file_names: bool = False, heatmaps: bool = True, transfer: Path | str | None = None,
                 callback: Callable | None = None, cancel=None, allow_changed: bool = False,
                 model_card: Any = None) -> ReportResult:
    """Write the report of a finished run into ``out`` (default ``RUN_DIR/report``).

    Args:
        onnx: exported model files to include; default those found in the run folder.
        hide_file_names: name files by SHA-256 only (for file names that may contain patient data).
        heatmaps: include example Grad-CAM images (leave out when images carry burned-in patient text).
        transfer: a ``transfer.json`` ("did transfer help?"); default ``RUN_DIR/transfer.json`` when present.
        allow_changed: report on the images as they are now where they changed since training; the report's
            summary then says so (the evaluation's first warning). Otherwise a changed image refuses the report.
        model_card: the model card form (``core.project.intended_use.IntendedUse``); default the form of the
            project the run belongs to (``PROJECT/runs/RUN``), else none (its questions shown as not answered).

    Raises:
        ReportError, RunError, ClinicalError: one readable line.
    """
    from tl_desktop.core import runs
    from tl_desktop.core.evaluation.current import current_clinical

    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / "report"
    require_finished(run_dir)
    from tl_desktop.report.model_card import project_model_card

    intended = model_card if model_card is not None else project_model_card(run_dir)
    config = runs.load_config(run_dir)
    clinical = current_clinical(run_dir, callback=callback, cancel=cancel, allow_changed=allow_changed)
    manifest = runs.load_manifest(run_dir)
    onnx_files = [Path(p) for p in onnx] if onnx is not None else find_onnx(run_dir)
    missing = [p.name for p in onnx_files if not p.is_file()]
    if missing:
        raise ReportError(f"no such model file: {', '.join(missing)}")
    transfer_file = Path(transfer) if transfer is not None else run_dir / "transfer.json"
    if transfer is not None and not transfer_file.is_file():
        raise ReportError(f"no such file: {transfer_file.name}")
    final, out = out, out.with_name(f".{out.name}.partial")  # built aside, checked, then moved in place
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    try:
        result = _build(run_dir, out, config, manifest, clinical, onnx_files, transfer_file, hide_file_names,
                        heatmaps, intended)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # a refused report leaves nothing behind
        raise
    final.mkdir(parents=True, exist_ok=True)
    for item in out.iterdir():
        target = final / item.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(item, target)
    out.rmdir()
    return ReportResult(final / "report.pdf", final / "report.html", final / "audit", result,
                        list(clinical.get("warnings", [])))


def _build(run_dir: Path, out: Path, config, manifest, clinical, onnx_files, transfer_file, hide_file_names,
           heatmaps, intended=None) -> list[str]:
    """Write the audit folder, figures, HTML and PDF into ``out`` and check them for local paths."""
    from tl_desktop.core import runs
    from tl_desktop.core.fsutil import read_json
    from tl_desktop.report.audit import check_no_local_paths, environment, file_namer, write_audit
    from tl_desktop.report.model_card import project_name
    from tl_desktop.report.sections import RunData, report_title

    name = file_namer(manifest, hide_file_names)
    data = RunData(run_dir, config, manifest, _figures(clinical, read_json(run_dir / "metrics.json")), clinical,
                   runs.read_history(run_dir), environment(config, run_dir), name,
                   read_json(transfer_file) if transfer_file.is_file() else None,
                   [_verification(p, clinical) for p in onnx_files], project=project_name(run_dir))
    from tl_desktop.report import checklist, findings, model_card

    multilabel = findings.is_multilabel(clinical)
    if heatmaps and not multilabel:  # a multi-label report says why it has none (findings.NO_HEATMAPS)
        data.heatmaps = _heatmaps(run_dir, clinical, name, MAX_HEATMAPS)

    card = model_card.build(data, intended, onnx_files)
    items = checklist.build(data, card)
    documents = {"model_card.json": card, "checklist.json": checklist.to_json(items)}
    if multilabel:
        documents["findings.json"] = findings.audit_json(clinical)
    files = write_audit(run_dir, out, config, manifest, clinical, onnx_files, name, data.transfer, documents)
    data.card_pages = [model_card.section(card), checklist.section(items)]
    html = _html(data, files)
    _write_figures(out, data)
    from tl_desktop.core.fsutil import atomic_write_text

    atomic_write_text(out / "report.html", html)
    _pdf(out / "report.pdf", html, data.figures, report_title(data))
    check_no_local_paths(out, [Path(manifest["root"]), run_dir.resolve(), Path.home(), tempfile.gettempdir()])
    return files


def _figures(clinical: dict[str, Any], training: dict[str, Any]) -> dict[str, Any]:
    """The test figures of the evaluation (``stored_result.summary``), with the epochs run from the fit's summary
    and the best epoch of the evaluated checkpoint."""
    from tl_desktop.core.evaluation.stored_result import summary

    figures = summary(clinical)
    epoch = (clinical.get("checkpoint") or {}).get("epoch")
    figures["best_epoch"] = epoch if epoch is not None else training.get("best_epoch")
    figures["epochs_run"] = training.get("epochs_run")
    return figures


def _verification(path: Path, clinical: dict[str, Any]) -> dict[str, Any]:
    """Verification figures of an exported file, and whether its decision metadata is the reported one (the
    temperature, and the rule the user chose; a suggested operating point is in no file)."""
    from tl_desktop.core.evaluation.decision import exported_rule
    from tl_desktop.core.export.verify import agreement_key, within_tolerance
    from tl_desktop.core.fsutil import read_json

    figures = read_json(path.with_name(f"{path.stem}.verification.json"))
    meta = figures.get("metadata") or {}
    agreement = {"agreement": figures.get(agreement_key(figures)), "agreement_kind": agreement_key(figures)}
    if clinical.get("task") == "multi-label":  # its decision: a threshold per finding, no temperature
        try:
            carried = json.loads(meta.get("thresholds") or "null")
        except ValueError:
            carried = None
        matches = isinstance(carried, dict) and carried.keys() == clinical["thresholds"].keys() and all(
            abs(float(carried[k]) - float(v)) < 1e-9 for k, v in clinical["thresholds"].items())
        return {"file": path.name, "decision_matches": matches, **agreement,
                **{k: figures.get(k) for k in ("precision", "max_abs_diff", "sha256", "n_images")},
                "passed": within_tolerance(figures)}
    expected = {"temperature": clinical.get("temperature"), **exported_rule(clinical)}  # what an export now carries

    def same(key: str) -> bool:
        want, got = expected.get(key), meta.get(key)
        if want is None or got is None:
            return want is None and got is None
        return want == got if key == "positive_class" else abs(float(got) - float(want)) < 1e-9

    keys = ("temperature", "positive_class", "decision_threshold", "abstain_threshold")
    return {"file": path.name, "decision_matches": all(same(k) for k in keys), **agreement,
            **{k: figures.get(k) for k in ("precision", "max_abs_diff", "top1_agreement", "sha256", "n_images")},
            "passed": within_tolerance(figures)}  # today's limits, not those the file was once verified under


def _heatmaps(run_dir: Path, clinical: dict[str, Any], name, limit: int) -> list[dict[str, Any]]:
    """Grad-CAM of the most confident correct and wrong test images (half each when possible)."""
    from itertools import zip_longest

    import numpy as np
    from PIL import Image

    from tl_desktop.core.evaluation import statistics as cl
    from tl_desktop.core.evaluation.explain import explain_run
    from tl_desktop.core.models import run_model

    preds = clinical["predictions"]["test"]
    if not preds["labels"]:
        return []
    y = np.asarray(preds["labels"])
    probs = cl.softmax(np.asarray(preds["logits"]), clinical["temperature"])
    pred, top = probs.argmax(1), probs.max(1)
    wrong = [int(i) for i in np.argsort(-top, kind="stable") if pred[i] != y[i]][: limit // 2]
    per_class = [[int(i) for i in np.argsort(-top, kind="stable") if pred[i] == y[i] == c] for c in np.unique(y)]
    right = [i for rank in zip_longest(*per_class) for i in rank if i is not None][: limit - len(wrong)]  # the most confident correct image of each class in turn
    chosen = right + wrong
    run = run_model.load_run(run_dir)
    found = explain_run(run, [run.root / preds["paths"][i] for i in chosen])
    names = clinical["class_names"]
    out = []
    for k, (i, e) in enumerate(zip(chosen, found, strict=True)):
        size = 150
        pair = Image.new("RGB", (2 * size + 6, size), "white")
        pair.paste(e.image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC), (0, 0))
        pair.paste(e.overlay(size=size), (size + 6, 0))
        out.append({"file": f"heatmap_{k}.png", "image": pair, "true": names[int(y[i])],
                    "predicted": names[int(pred[i])], "probability": float(top[i]), "name": name(preds["paths"][i])})
    return out


def _html(data, files: list[str]) -> str:
    from tl_desktop import __version__
    from tl_desktop.report import findings, subgroups
    from tl_desktop.report import sections as s
    from tl_desktop.report.document import document, page_break
    from tl_desktop.report.figures import image_png
    from tl_desktop.report.pages import pack

    for h in data.heatmaps:
        data.figures[h["file"]] = image_png(h["image"])
    created = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    if findings.is_multilabel(data.clinical):  # no confusion matrix, class of interest or calibration
        parts = [findings.summary(data, created, __version__),
                 page_break(), findings.data_section(data), s.model_section(data), s.training_curves(data),
                 page_break(), findings.curves_section(data), s.transfer_section(data),
                 *(part for page in data.card_pages for part in (page_break(), page)),
                 page_break(), s.audit_section(data, files)]
        return document(s.report_title(data), pack([p for p in parts if p]))
    parts = [s.summary(data, created, __version__), s.data_section(data),  # page 1 grows with the classes
             page_break(), s.model_section(data), s.training_curves(data),
             page_break(), s.results_section(data), subgroups.section(data),
             page_break(), s.curves_section(data), s.calibration_section(data),
             page_break(), s.heatmap_section(data), s.transfer_section(data),
             *(part for page in data.card_pages for part in (page_break(), page)),  # model card, checklist
             page_break(), s.audit_section(data, files)]
    return document(s.report_title(data), pack([p for p in parts if p]))  # no page of leftover rows


def _write_figures(out: Path, data) -> None:
    import shutil

    from tl_desktop.core.fsutil import atomic_write_bytes

    folder = out / "figures"
    if folder.exists():
        shutil.rmtree(folder)
    for file, png in data.figures.items():
        atomic_write_bytes(folder / file, png)


def _pdf(path: Path, html: str, figures: dict[str, bytes], title: str) -> None:
    """The HTML laid out by QTextDocument on A4 pages, written by QPdfWriter.

    QTextDocument.print_ lays out an unpaginated document with 2 cm margins and page numbers, at 96 px per
    inch: the text column is about 640 px wide, which the sections are designed for.
    """
    from PySide6.QtCore import QMarginsF, QUrl
    from PySide6.QtGui import QFont, QImage, QPageLayout, QPageSize, QPdfWriter, QTextDocument

    from tl_desktop.report.figures import ensure_gui

    ensure_gui()
    tmp = path.with_name(f".{path.name}.tmp")
    writer = QPdfWriter(str(tmp))
    writer.setTitle(title)
    writer.setCreator("tl-desktop")
    writer.setResolution(300)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                     QMarginsF(0, 0, 0, 0), QPageLayout.Unit.Millimeter))  # QTextDocument adds 2 cm
    doc = QTextDocument()
    doc.setDefaultFont(QFont("DejaVu Sans", 9))
    for file, png in figures.items():
        doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(f"figures/{file}"), QImage.fromData(png))
    doc.setHtml(html)
    doc.print_(writer)
    del writer  # flushes and closes the file
    tmp.replace(path)
