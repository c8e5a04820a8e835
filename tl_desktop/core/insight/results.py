"""Where a project keeps its transfer insight, and the conclusion of a model comparison.

Each result goes into a fresh folder ``<project>/transfer/<date-time>-<kind>[-<model>]``: the transfer check
(``transfer.json``, ``transfer.txt`` and its runs), the model comparison (``compare_models.json`` and its runs)
and the label-budget curve (``label_budget.json``). The window shows the newest of each kind; the command line
writes where ``--out`` says. ``compare_sentence`` is the one wording of "which model?" that both print.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

from tl_desktop.core.fsutil import read_json

log = logging.getLogger(__name__)

TRANSFER_FOLDER = "transfer"  # under the project folder
CHECK_FILE, CHECK_TEXT = "transfer.json", "transfer.txt"
COMPARE_FILE = "compare_models.json"
BUDGET_FILE = "label_budget.json"
RESULT_FILES = {"check": CHECK_FILE, "compare": COMPARE_FILE, "budget": BUDGET_FILE}


def latest_result(project_folder: Path, kind: str) -> tuple[dict[str, Any], Path] | None:
    """The newest readable result of ``kind`` (check / compare / budget) under ``<project>/transfer/``, and its
    folder; None when there is none. Unreadable files are skipped (logged)."""
    found = sorted((Path(project_folder) / TRANSFER_FOLDER).glob(f"*/{RESULT_FILES[kind]}"),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for file in found:
        try:
            return read_json(file), file.parent
        except (OSError, ValueError):
            log.warning("unreadable result %s", file)
    return None


def new_result_folder(project_folder: Path, kind: str, model: str = "") -> Path:
    """A fresh folder ``<project>/transfer/<date-time>-<kind>[-<model>]`` (not created; ``-2``, ``-3``... when
    the name is taken)."""
    if kind not in RESULT_FILES:
        raise ValueError(f"unknown result kind '{kind}'; choose one of {', '.join(RESULT_FILES)}")
    model = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("._")
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}" + (f"-{model}" if model else "")
    folder = Path(project_folder) / TRANSFER_FOLDER
    candidate, n = folder / stem, 1
    while candidate.exists():
        n += 1
        candidate = folder / f"{stem}-{n}"
    return candidate


def score_text(score: dict[str, float]) -> str:
    """``63.3% (95% CI 46.7-80.0)``: a score and its 95% interval, in percent."""
    return f"{100 * score['value']:.1f}% (95% CI {100 * score['low']:.1f}-{100 * score['high']:.1f})"


def compare_sentence(rows: list[dict[str, Any]]) -> str:
    """Which model of a comparison scored best on the test images, and whether its interval overlaps others'.

    ``rows`` are those of ``compare_models`` (``compare_models.json``); "" for none.
    """
    if not rows:
        return ""
    best = max(rows, key=lambda r: r["test_balanced_accuracy"]["value"])
    text = (f"Highest test balanced accuracy: {best.get('label') or best['model']}, "
            f"{score_text(best['test_balanced_accuracy'])}.")
    overlap = [r.get("label") or r["model"] for r in rows if r is not best
               and r["test_balanced_accuracy"]["high"] >= best["test_balanced_accuracy"]["low"]]
    if overlap:
        text += (f" Its interval overlaps with {', '.join(overlap)}: on these test images the difference may be "
                 "chance, so the smaller or faster model is a fair choice too.")
    return text
