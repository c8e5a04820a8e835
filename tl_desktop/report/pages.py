"""Page packing of the report: a section that was meant to start a new page starts one only where that does not
cost a page, so no page holds just the few rows a long section left over.

The sections come as a list with ``document.page_break()`` markers between the groups meant for a page of their
own. Each group is laid out by QTextDocument exactly as ``report._pdf`` prints (A4 at 96 px per inch, 2 cm
margins): a group follows the one before it on the same page when that makes fewer pages than breaking, else
it starts a new page as planned. The HTML file carries the same breaks as the PDF.
"""

from __future__ import annotations

from collections.abc import Callable

from tl_desktop.report.document import document, page_break

A4_PX = (210 / 25.4 * 96, 297 / 25.4 * 96)  # the page QTextDocument.print_ lays out, in its 96 dpi pixels
MARGIN_PX = int(2 / 2.54 * 96)  # the 2 cm margins it adds


def groups_of(parts: list[str]) -> list[list[str]]:
    """The sections between page breaks, empty groups left out."""
    groups: list[list[str]] = [[]]
    for part in parts:
        if part == page_break():
            groups.append([])
        elif part:
            groups[-1].append(part)
    return [group for group in groups if group]


NEAR_EMPTY = 0.25  # a page filled less than this takes the next section on, even where that saves no page


def _laid_out(html: str):
    """A QTextDocument of ``html`` paginated as ``report._pdf`` prints it."""
    from PySide6.QtCore import QSizeF
    from PySide6.QtGui import QFont, QTextDocument

    from tl_desktop.report.figures import ensure_gui

    ensure_gui()
    doc = QTextDocument()
    doc.setDefaultFont(QFont("DejaVu Sans", 9))  # as report._pdf
    doc.setHtml(html)
    frame = doc.rootFrame().frameFormat()
    frame.setMargin(MARGIN_PX)
    doc.rootFrame().setFrameFormat(frame)
    doc.setPageSize(QSizeF(*A4_PX))
    return doc


def page_fills(html: str) -> list[float]:
    """How full each A4 page of ``html`` (a whole document) is, 0 to 1 of the text area, as the PDF lays it out."""
    doc = _laid_out(html)
    height, room = A4_PX[1], A4_PX[1] - 2 * MARGIN_PX
    fills = [0.0] * doc.pageCount()
    layout, block = doc.documentLayout(), doc.begin()
    while block.isValid():
        rect = layout.blockBoundingRect(block)
        if block.text().strip() or rect.height() > 30:  # text or an image; not the empty paragraph of a break
            page = min(int(rect.top() // height), len(fills) - 1)
            fills[page] = max(fills[page], min(1.0, (rect.bottom() - page * height - MARGIN_PX) / room))
        block = block.next()  # in document order, into and out of table cells
    return fills


def pack(parts: list[str], fills: Callable[[str], list[float]] | None = None) -> list[str]:
    """``parts`` with a page break kept only before a group that would neither save a page by following on
    nor leave a near-empty page behind.

    Args:
        parts: the report's sections with ``page_break()`` markers between the groups.
        fills: how full each page of a whole document is (default: laid out as the PDF is).
    """
    measure = fills or page_fills
    out: list[str] = []
    for group in groups_of(parts):
        html = "".join(group)
        if not out:
            out.append(html)
            continue
        so_far = "\n".join(out)
        before = measure(document("", [so_far]))
        joined = len(measure(document("", [so_far, html])))
        broken = len(measure(document("", [so_far, page_break(), html])))
        if joined < broken or before[-1] < NEAR_EMPTY:
            out.append(html)  # follows on the page the sections before it left partly free
        else:
            out += [page_break(), html]
    return out
