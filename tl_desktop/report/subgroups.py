"""The report's subgroup section and the audit folder's ``subgroups.json``, both from the evaluation artefact.

Every number is read from ``clinical.json``'s ``subgroups`` block (``core.evaluation.subgroups``) and written with
the same text the Evaluate step's Subgroups tab shows (``subgroup_tables.table_rows``), so the two cannot differ.
"""

from __future__ import annotations

from typing import Any

from tl_desktop.core.evaluation import subgroup_tables as tables
from tl_desktop.report.document import esc, page_break, table

HOW = ("choose them in Evaluate → Subgroups, or run <code>tl-desktop evaluate RUN --subgroups "
       "PatientSex,PatientAge,site</code>, then write the report again")


def section(d: Any) -> str:
    """The subgroup page (a page of its own; a line only when none were chosen): one table per chosen
    attribute, flagged rows marked, the flag rule in words."""
    block = d.clinical.get("subgroups")
    if not block or not block.get("figures"):
        return ("<h2>Subgroups</h2><p class='muted'>No subgroups were chosen for this evaluation: the figures are "
                f"not broken down by sex, age band, scanner or site. To add them, {HOW}.</p>")
    flagged = sum(r["flagged"] for rows in block["figures"].values() for r in rows)
    parts = [page_break(), "<h2>Subgroups</h2>",
             f"<p>Test figures per subgroup at the decision rule: {esc(block['decision'])}. 95% intervals: "
             f"{esc(block['interval'])}. "
             + (f"<b class='warn'>{flagged} subgroup(s) flagged {tables.FLAG}</b>: the model does worse there "
                "than on the other test images." if flagged else "No subgroup is flagged.") + "</p>"]
    heads = tables.headings(block)
    for name in block["figures"]:
        cells = [[f"<b class='warn'>{esc(c)}</b>" if row["flagged"] else esc(c) for c in row["cells"]]
                 for row in tables.table_rows(block, name)]
        parts.append(f"<h3>{esc(name)} <span class='muted'>({tables.where(block, name)})</span></h3>"
                     + table(heads, cells, raw=True))
    parts.append(f"<p class='muted'>{tables.FLAG} Flag rule: {esc(block['rule'])} Patient-identifying DICOM "
                 "tags (ID, name, birth date, study and series identifiers) are never offered as subgroups.</p>")
    return "".join(parts)


def audit_json(clinical: dict[str, Any]) -> dict[str, Any] | None:
    """``audit/subgroups.json``: the stored breakdown as it is, with the checkpoint (None when there is none)."""
    block = clinical.get("subgroups")
    if not block:
        return None
    return {**block, "checkpoint": clinical.get("checkpoint"), "computed_utc": clinical.get("computed_utc"),
            "values_order": "the test images in the order of clinical.json's predictions.test.paths"}
