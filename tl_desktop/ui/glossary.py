"""The glossary window (a searchable list of terms and the chosen one's explanation) and how to reach it.

- ``show_glossary("auc")`` opens (or raises) the one glossary window at a term; ``show_glossary()`` at the index.
- ``term_button("auc")`` is a small "?" button to put next to a word on screen; it opens the glossary there.
- F1 (Help > Glossary in the main window) calls ``show_for_focus``: the glossary opens at the term of the
  focused widget or its nearest parent with a ``glossary_term`` property, else at the index.

To explain a word in a view: put ``term_button("<key>")`` beside its label, or give the widget that shows it
``widget.setProperty("glossary_term", "<key>")`` (F1 then finds it); keys and aliases are in
``glossary_terms.py``, where a missing term is added.
"""

from __future__ import annotations

import html

import shiboken6
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from tl_desktop.ui.glossary_terms import TERMS, lookup

TERM_PROPERTY = "glossary_term"
INDEX_TEXT = ("<h3>Glossary</h3><p>Choose a word on the left, or type in the search box. Press <b>F1</b> in any "
              "step to come here; a <b>?</b> button next to a word opens its entry.</p>")


class GlossaryWindow(QDialog):
    """A non-modal window: search box and term list on the left, the explanation on the right."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Glossary — tl-desktop")
        self.setModal(False)
        self.search = QLineEdit(placeholderText="Search the glossary…", clearButtonEnabled=True)
        self.search.textChanged.connect(self._filter)
        self.list = QListWidget()
        self.list.setMinimumWidth(250)
        for key, term in sorted(TERMS.items(), key=lambda kv: kv[1].title.lower()):
            item = QListWidgetItem(term.title)
            item.setData(Qt.ItemDataRole.UserRole, key)
            self.list.addItem(item)
        self.list.currentItemChanged.connect(self._on_item)
        self.text = QTextBrowser(openLinks=False)
        self.text.anchorClicked.connect(self._on_link)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.search)
        left_layout.addWidget(self.list)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.text)
        splitter.setSizes([280, 440])
        layout = QHBoxLayout(self)
        layout.addWidget(splitter)
        self.resize(740, 460)
        self.show_term(None)

    def current_term(self) -> str | None:
        """The key of the entry shown; None while the index is shown."""
        item = self.list.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def show_term(self, key: str | None) -> None:
        """Show the entry ``key`` (or an alias); an unknown or empty key shows the index."""
        key = lookup(key)
        if key is None:
            self.list.setCurrentItem(None)
            self.list.clearSelection()
            self.text.setHtml(INDEX_TEXT)
            return
        self.search.clear()
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == key:
                self.list.setCurrentItem(item)
                self.list.scrollToItem(item)
                return

    def _on_item(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None = None) -> None:
        if item is not None:
            self.text.setHtml(entry_html(item.data(Qt.ItemDataRole.UserRole)))

    def _on_link(self, url: QUrl) -> None:
        if url.scheme() == "term":
            self.show_term(url.path())

    def _filter(self, text: str) -> None:
        """Hide the terms whose name, explanation and technical name do not contain ``text``."""
        needle = text.strip().lower()
        first = None
        for row in range(self.list.count()):
            item = self.list.item(row)
            term = TERMS[item.data(Qt.ItemDataRole.UserRole)]
            hit = not needle or needle in f"{term.title} {term.plain} {term.technical}".lower()
            item.setHidden(not hit)
            first = first or (item if hit else None)
        current = self.list.currentItem()
        if first is not None and (current is None or current.isHidden()):
            self.list.setCurrentItem(first)


def entry_html(key: str) -> str:
    """The entry as shown: the name, the plain explanation, the technical name, related terms as links."""
    term = TERMS[key]
    related = ", ".join(f'<a href="term:{k}">{html.escape(TERMS[k].title)}</a>' for k in term.see_also if k in TERMS)
    return (f"<h3>{html.escape(term.title)}</h3><p>{html.escape(term.plain)}</p>"
            f"<p><i>Technical name:</i> {html.escape(term.technical)}</p>"
            + (f"<p><i>See also:</i> {related}</p>" if related else ""))


class _Open:
    window: GlossaryWindow | None = None


def show_glossary(term: str | None = None, parent: QWidget | None = None) -> GlossaryWindow:
    """Open (or raise) the glossary window at ``term`` (a key or alias; None: the index)."""
    window = _Open.window
    if window is None or not shiboken6.isValid(window):
        window = _Open.window = GlossaryWindow(parent)
        window.destroyed.connect(lambda *_a: setattr(_Open, "window", None))
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    window.show_term(term)
    window.show()
    window.raise_()
    window.activateWindow()
    return window


def term_at_focus(widget: QWidget | None = None) -> str | None:
    """The ``glossary_term`` of ``widget`` (the focused one by default) or of its nearest parent that has one."""
    widget = widget if widget is not None else QApplication.focusWidget()
    while widget is not None:
        key = lookup(widget.property(TERM_PROPERTY))
        if key is not None:
            return key
        widget = widget.parentWidget()
    return None


def show_for_focus(parent: QWidget | None = None) -> GlossaryWindow:
    """F1: the glossary at the focused widget's term, or at the index."""
    return show_glossary(term_at_focus(), parent)


def term_button(term: str, parent: QWidget | None = None) -> QToolButton:
    """A small "?" button that opens the glossary at ``term`` (a key or alias of ``glossary_terms``)."""
    key = lookup(term)
    if key is None:
        raise KeyError(f"no glossary entry {term!r}: add it to tl_desktop/ui/glossary_terms.py")
    title = TERMS[key].title
    button = QToolButton(parent, text="?", autoRaise=True, toolTip=f"What is “{title}”? (opens the glossary)")
    button.setAccessibleName(f"Explain {title}")
    button.setProperty(TERM_PROPERTY, key)
    button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
    button.setCursor(Qt.CursorShape.WhatsThisCursor)
    button.clicked.connect(lambda: show_glossary(button.property(TERM_PROPERTY), button.window()))
    return button


def set_term(widget: QWidget, term: str) -> None:
    """Point ``widget`` (a "?" button from ``term_button`` or any widget F1 should explain) at another term;
    a "?" button's tooltip follows. Used where the word on screen changes (a multi-label run's captions)."""
    key = lookup(term)
    if key is None:
        raise KeyError(f"no glossary entry {term!r}: add it to tl_desktop/ui/glossary_terms.py")
    widget.setProperty(TERM_PROPERTY, key)
    if isinstance(widget, QToolButton) and widget.text() == "?":
        widget.setToolTip(f"What is “{TERMS[key].title}”? (opens the glossary)")
        widget.setAccessibleName(f"Explain {TERMS[key].title}")


def with_term(widget: QWidget, term: str, parent: QWidget | None = None) -> QHBoxLayout:
    """``widget`` with a "?" button for ``term`` right beside it, as a row for a form or grid cell; F1 on
    ``widget`` opens the same term."""
    set_term(widget, term)
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    row.setSpacing(2)
    row.addWidget(widget, 1)
    row.addWidget(term_button(term, parent), 0, Qt.AlignmentFlag.AlignTop)
    return row


def link(term: str, word: str) -> str:
    """``word`` as a rich-text link to the glossary entry ``term``, for a label passed to ``follow_links``."""
    key = lookup(term)
    if key is None:
        raise KeyError(f"no glossary entry {term!r}: add it to tl_desktop/ui/glossary_terms.py")
    return f'<a href="term:{key}">{html.escape(word)}</a>'


def follow_links(widget: QLabel) -> None:
    """Make the ``link(...)`` words in ``widget``'s (rich) text open the glossary when clicked."""
    widget.setTextFormat(Qt.TextFormat.RichText)
    widget.setTextInteractionFlags(widget.textInteractionFlags() | Qt.TextInteractionFlag.LinksAccessibleByMouse
                                   | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
    widget.linkActivated.connect(lambda url: show_glossary(url.removeprefix("term:"), widget.window()))


class TermLinks(QLabel):
    """A wrapped hint line "What the words mean: sensitivity · PPV/NPV · …" whose words are links; each opens
    the glossary at its term. For a table whose headers are the terms; ``terms`` lists the entry keys."""

    def __init__(self, words: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        keys = [lookup(term) for term, _word in words]
        if None in keys:
            raise KeyError(f"no glossary entry among {words!r}: add it to tl_desktop/ui/glossary_terms.py")
        self.terms: list[str] = [k for k in keys if k is not None]
        links = " · ".join(link(key, word) for key, (_t, word) in zip(self.terms, words, strict=True))
        super().__init__(f"What the words mean (opens the glossary): {links}", parent)
        self.setProperty("role", "hint")
        self.setWordWrap(True)
        self.setProperty(TERM_PROPERTY, self.terms[0])  # F1 here: the first word
        follow_links(self)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt's name)
        """A wrapped line asks for the height of its text at its width, so a layout never cuts it, and gives
        height back when widened (as ``widgets.common.keep_height``)."""
        super().resizeEvent(event)
        if event.size().width() == event.oldSize().width():
            return
        if self.minimumHeight():
            self.setMinimumHeight(0)  # QLabel.heightForWidth never answers less than the minimum height
        needed = self.heightForWidth(self.width())
        self.setMinimumHeight(max(needed, 0))


def term_links(words: list[tuple[str, str]], parent: QWidget | None = None) -> TermLinks:
    """The ``TermLinks`` line for ``(term, word on screen)`` pairs, e.g. ``[("ppv", "PPV/NPV")]``."""
    return TermLinks(words, parent)
