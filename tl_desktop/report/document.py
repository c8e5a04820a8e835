"""The report's HTML (one string, used for report.html and, through QTextDocument, for report.pdf).

Only the HTML subset that QTextDocument renders is used: headings, paragraphs, tables with attributes, images
with explicit sizes, and page-break styles.
"""

from __future__ import annotations

import html
from typing import Any

CSS = """
body { font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 9.5pt; color: #111; }
h1 { font-size: 17pt; margin-bottom: 2px; }
h2 { font-size: 13pt; color: #1a3d6d; margin-top: 14px; margin-bottom: 4px; }
h3 { font-size: 10.5pt; margin-top: 8px; margin-bottom: 2px; }
td, th { padding: 2px 6px; }
th { background-color: #e8eef6; text-align: left; }
.muted { color: #555; }
.warn { color: #8a4b00; }
.key { background-color: #f3f6fa; }
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


def pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def with_ci(figure: dict[str, Any] | None) -> str:
    """'80.0% (95% CI 37.6-96.4%; 4/5)' for a proportion with its Wilson interval."""
    if not figure or figure.get("value") is None:
        return "n/a (no cases)"
    return (f"<b>{pct(figure['value'])}</b> <span class='muted'>(95% CI {pct(figure['low'])}&ndash;"
            f"{pct(figure['high'])}; {figure['k']}/{figure['n']})</span>")


def table(header: list[str], rows: list[list[Any]], widths: list[int] | None = None, raw: bool = False) -> str:
    """A bordered table; cells are escaped unless ``raw``."""
    cols = "".join(f"<th{f' width={w}' if widths else ''}>{esc(h)}</th>"
                   for h, w in zip(header, widths or [0] * len(header), strict=True))
    body = "".join("<tr>" + "".join(f"<td>{c if raw else esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table border=1 cellspacing=0 cellpadding=3 style='border-collapse: collapse'><tr>{cols}</tr>{body}</table>"


def figure(name: str, width: int, height: int, caption: str = "") -> str:
    cap = f"<br><span class='muted'>{esc(caption)}</span>" if caption else ""
    return f"<img src='figures/{name}' width={width} height={height}>{cap}"


def side_by_side(cells: list[str]) -> str:
    return "<table cellspacing=0 cellpadding=4><tr>" + "".join(f"<td valign=top>{c}</td>" for c in cells) + \
        "</tr></table>"


def page_break() -> str:
    return "<p style='page-break-before: always'></p>"


def document(title: str, sections: list[str]) -> str:
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>" + esc(title) + "</title><style>" + CSS +
            "</style></head><body>" + "\n".join(sections) + "</body></html>")
