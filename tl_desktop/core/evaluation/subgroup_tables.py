"""Stored subgroup figures (``clinical.json``'s ``subgroups``, see ``subgroups``) as text: the cells of the
Evaluate step's Subgroups tab, of the report's subgroup tables and of the CLI's table are all made here, from the
stored numbers, so they cannot differ."""

from __future__ import annotations

from typing import Any

FLAG = "⚠"


def interval_text(figure: dict[str, Any] | None, key: str = "value") -> str:
    """"87.5% (52.9–97.8%)" for a proportion, "0.912 (0.80–1.00)" for an AUC (``key="auc"``); "–" when undefined."""
    if not figure or figure.get(key) is None:
        return "–"
    if key == "auc":
        return f"{figure['auc']:.3f} ({figure['low']:.2f}–{figure['high']:.2f})"
    return f"{100 * figure['value']:.1f}% ({100 * figure['low']:.1f}–{100 * figure['high']:.1f}%)"


def columns(block: dict[str, Any]) -> list[tuple[str, str]]:
    """(heading, key) of the figure columns of a stored breakdown: two classes or more."""
    rows = next(iter((block.get("figures") or {}).values()), [])
    if rows and "recall" in rows[0]:
        return [("Accuracy", "accuracy")] + [(f"Recall {n}", f"recall:{n}") for n in rows[0]["recall"]]
    return [("Accuracy", "accuracy"), ("Sensitivity", "sensitivity"), ("Specificity", "specificity"),
            ("AUC", "auc")]


def cell(row: dict[str, Any], key: str) -> str:
    """The text of one figure of a stored row, as the window, the report and the CLI show it."""
    if key.startswith("recall:"):
        return interval_text(row["recall"].get(key.split(":", 1)[1]))
    return interval_text(row.get(key), "auc" if key == "auc" else "value")


def table_lines(block: dict[str, Any]) -> list[str]:
    """The stored breakdown as plain-text tables (the CLI): one per attribute, flagged rows marked "!"."""
    heads = headings(block)
    lines = [f"Subgroups (decision: {block.get('decision')}; 95% intervals: {block.get('interval')})"]
    for name in block.get("figures") or {}:
        lines.append(f"{name} ({where(block, name)}):")
        lines.append(("    " + f"{heads[0]:<16}{heads[1]:>7}  " + "".join(f"{h:<24}" for h in heads[2:-1])).rstrip())
        for row in table_rows(block, name):
            value, n, *figures, note = row["cells"]
            text = "".join(f"{f:<24}" for f in figures).rstrip()
            lines.append(f"  {'!' if row['flagged'] else ' '} {value[:15]:<16}{n:>7}  {text}  {note}".rstrip())
    lines.append(f"Rule: {block.get('rule')}")
    return lines


def table_rows(block: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """One attribute's rows as text: ``cells`` (value marked when flagged, images, figures, note), ``flagged``."""
    heads = columns(block)
    out = []
    for row in block["figures"][name]:
        note = f"{FLAG} worse than the rest: {', '.join(row['flags'])}" if row["flagged"] else row["note"]
        value = f"{FLAG} {row['value']}" if row["flagged"] else str(row["value"])
        out.append({"cells": [value, str(row["n"]), *[cell(row, key) for _, key in heads], note],
                    "flagged": bool(row["flagged"])})
    return out


def headings(block: dict[str, Any]) -> list[str]:
    """The column headings of ``table_rows``."""
    return ["Value", "Images", *[h for h, _ in columns(block)], "Note"]


def where(block: dict[str, Any], name: str) -> str:
    """"CSV column" or "DICOM tag": where an attribute's values come from."""
    return "CSV column" if (block.get("sources") or {}).get(name) == "csv" else "DICOM tag"
