"""The glossary (entries, search, "?" buttons, F1 at the focused term) and the guided tour (once, re-openable)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tl_desktop.ui import glossary, settings, tour
from tl_desktop.ui.glossary_terms import TERMS, lookup
from tl_desktop.ui.main_window import MainWindow
from tl_desktop.ui.widgets.confusion import ConfusionMatrix

REQUIRED = ["sensitivity", "specificity", "ppv", "npv", "auc", "roc", "calibration", "temperature",
            "confidence_interval", "bootstrap", "linear_probe", "fine_tune", "full_training", "from_scratch",
            "grouped_split", "patient_grouping", "leakage", "validation", "test", "threshold", "operating_point",
            "balanced_accuracy", "f1", "hamming_loss", "exact_match", "average_precision", "augmentation", "epoch",
            "batch_size", "learning_rate", "onnx", "int8", "fp16", "near_duplicate", "label_issue",
            "unfamiliar_image", "active_learning", "subgroup", "model_card"]


@pytest.fixture
def window(qtbot):
    win = MainWindow(warm_up=False)
    qtbot.addWidget(win)
    win.show()
    yield win
    if glossary._Open.window is not None:
        glossary._Open.window.close()
    win.close()


def _glossary() -> glossary.GlossaryWindow:
    window = glossary._Open.window
    assert window is not None and window.isVisible()
    return window


def _action(window: MainWindow, text: str):
    return next(a for m in window.menuBar().findChildren(type(window.menuBar().actions()[0].menu()))
                for a in m.actions() if a.text().replace("&", "") == text)


def test_every_required_term_has_a_plain_entry_and_a_technical_name():
    for word in REQUIRED:
        key = lookup(word)
        assert key is not None, word
        term = TERMS[key]
        assert len(term.plain) > 40 and term.technical and term.title
    for term in TERMS.values():
        assert all(k in TERMS for k in term.see_also), term.title


def test_term_button_opens_the_glossary_at_its_term(window, qtbot):
    button = glossary.term_button("auc", window)
    assert button.text() == "?" and "AUC" in button.toolTip()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    shown = _glossary()
    assert shown.current_term() == "auc_roc"
    assert "area under" in shown.text.toPlainText() and "Technical name" in shown.text.toPlainText()
    glossary.term_button("calibration", window).click()  # the same window moves to the other term
    assert _glossary() is shown and shown.current_term() == "calibration"
    with pytest.raises(KeyError, match="glossary_terms.py"):
        glossary.term_button("no such word")


def test_search_filters_and_links_follow(window):
    shown = glossary.show_glossary(None, window)
    assert shown.current_term() is None and "Choose a word" in shown.text.toPlainText()
    shown.search.setText("patient")
    visible = {shown.list.item(r).data(Qt.ItemDataRole.UserRole) for r in range(shown.list.count())
               if not shown.list.item(r).isHidden()}
    assert "grouped_split" in visible and "epoch" not in visible
    assert shown.current_term() in visible
    shown.show_term("leakage")
    from PySide6.QtCore import QUrl

    shown.text.anchorClicked.emit(QUrl("term:near_duplicate"))
    assert shown.current_term() == "near_duplicate"


def test_f1_opens_the_glossary_at_the_focused_term_or_the_index(window, qtbot):
    action = _action(window, "Glossary")
    assert action.shortcut().toString() == "F1"
    matrix = ConfusionMatrix()
    window.views["start"].layout().addWidget(matrix)  # a widget with a term, on the page now shown
    matrix.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is matrix)
    qtbot.keyClick(matrix, Qt.Key.Key_F1)
    assert _glossary().current_term() == "confusion_matrix"
    window.activateWindow()
    window.steps.setFocus()  # the sidebar has no term: the index
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.steps)
    qtbot.keyClick(window.steps, Qt.Key.Key_F1)
    assert _glossary().current_term() is None


def test_the_window_alone_never_opens_the_tour(window, qtbot):
    qtbot.wait(tour.FIRST_START_DELAY_MS + 100)
    assert getattr(window, "tour", None) is None
    assert not any(isinstance(w, tour.GuidedTour) for w in QApplication.topLevelWidgets() if w.isVisible())
    assert not settings.tour_shown()


def test_the_tour_shows_once_walks_the_steps_and_reopens(window, qtbot):
    assert tour.show_on_first_start(window, delay_ms=10)
    qtbot.waitUntil(lambda: getattr(window, "tour", None) is not None and window.tour.isVisible())
    first = window.tour
    assert first.page == 0 and first.lit_step() == "start" and 4 <= len(tour.PAGES) <= 7
    named = " ".join(heading for _key, heading, _body in tour.PAGES)
    for step in ("Data", "Label", "Model", "Train", "Evaluate", "Export", "Predict"):
        assert step in named
    first.next_button.click()
    assert first.page == 1 and first.lit_step() == "data"
    first.back_button.click()
    assert first.page == 0
    qtbot.mouseClick(first.skip_button, Qt.MouseButton.LeftButton)  # skippable
    qtbot.waitUntil(lambda: not first.isVisible())
    assert all(window.steps.item(r).background().style() == Qt.BrushStyle.NoBrush
               for r in range(window.steps.count()))

    assert settings.tour_shown()  # persisted: a new QSettings read sees it
    assert not tour.show_on_first_start(window, delay_ms=10)  # not again
    qtbot.wait(50)
    assert window.tour is first

    _action(window, "Guided tour").trigger()  # Help > Guided tour re-opens it
    again = window.tour
    assert again is not first and again.isVisible() and again.page == 0
    for _ in range(len(tour.PAGES) - 1):
        again.next_button.click()
    assert again.next_button.text() == "Finish" and again.lit_step() == "predict"
    again.next_button.click()
    qtbot.waitUntil(lambda: not again.isVisible())
