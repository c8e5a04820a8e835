"""Issue 19: the glossary is reachable from every step: each step shows "?" buttons (or F1 targets) for the words
a newcomer reads there, every one names a real glossary entry, and clicking one opens the glossary at it."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

import pytest
from PySide6.QtWidgets import QLabel, QToolButton, QWidget

from tl_desktop.ui import glossary
from tl_desktop.ui.evaluate.view import EvaluateView
from tl_desktop.ui.glossary_terms import TERMS, lookup
from tl_desktop.ui.main_window import MainWindow
from tl_desktop.ui.session import Session
from tl_desktop.ui.train.settings import TrainSettingsForm

LINK = re.compile(r'href="term:(\w+)"')  # a word of a label that links to the glossary (glossary.link)
EXPECTED = {  # step -> entries that must be reachable there (as entry keys, after alias lookup)
    "data": {"grouped_split", "leakage", "validation_test", "near_duplicate", "label_issue"},
    "train": {"strategy", "augmentation", "epoch", "batch_size", "learning_rate", "device"},
    "evaluate": {"sensitivity", "specificity", "ppv_npv", "auc_roc", "calibration", "threshold",
                 "abstain", "confidence_interval", "f1", "exact_match", "hamming_loss",
                 "average_precision", "confusion_matrix"},
    "export": {"onnx", "int8_fp16", "unfamiliar_image"},
    "predict": {"unfamiliar_image", "abstain"},
}


@pytest.fixture
def window(qtbot):
    win = MainWindow(warm_up=False)
    qtbot.addWidget(win)
    win.resize(1366, 768)
    win.show()
    yield win
    if glossary._Open.window is not None:
        glossary._Open.window.close()
    win.close()


def _marked(view: QWidget) -> list[QWidget]:
    """The widgets of ``view`` that carry a glossary term ("?" buttons and F1 targets)."""
    return [w for w in view.findChildren(QWidget) if w.property(glossary.TERM_PROPERTY)]


def _openers(view: QWidget) -> dict[str, Callable[[], None]]:
    """What the user clicks in ``view`` to open each entry: a "?" button, or a word of a ``TermLinks`` line."""
    found: dict[str, Callable[[], None]] = {}
    for links in view.findChildren(QLabel):
        for key in LINK.findall(links.text()):
            found[key] = partial(links.linkActivated.emit, f"term:{key}")
    for w in _marked(view):
        if isinstance(w, QToolButton) and w.toolTip().startswith("What is"):
            found[w.property(glossary.TERM_PROPERTY)] = w.click
    return found


@pytest.mark.parametrize("step", sorted(EXPECTED))
def test_each_step_reaches_the_terms_its_users_read(window, step):
    view = window.views[step]
    raw = [w.property(glossary.TERM_PROPERTY) for w in _marked(view)]
    assert all(lookup(key) == key and key in TERMS for key in raw), [k for k in raw if lookup(k) != k]
    reachable = {lookup(key) for key in raw} | set(_openers(view))
    missing = EXPECTED[step] - reachable
    assert not missing, f"{step}: no '?' or F1 target for {sorted(missing)}"
    # every expected term can be clicked (not only an F1 target); the matrix has F1 and its own wording
    buttons = set(_openers(view))
    assert EXPECTED[step] - {"confusion_matrix"} <= buttons, sorted(EXPECTED[step] - buttons)


@pytest.mark.parametrize(("step", "term"), [("data", "grouped_split"), ("train", "learning_rate"),
                                            ("evaluate", "calibration"), ("evaluate", "hamming_loss"),
                                            ("export", "int8_fp16"), ("predict", "unfamiliar_image")])
def test_clicking_a_step_button_opens_the_glossary_at_its_term(window, qtbot, step, term):
    _openers(window.views[step])[term]()
    shown = glossary._Open.window
    assert shown is not None and shown.isVisible()
    assert shown.current_term() == term
    assert TERMS[term].title in shown.text.toPlainText()


def test_the_strategy_combo_explains_the_chosen_strategy_on_f1(window):
    settings = window.views["train"].findChild(TrainSettingsForm)
    settings.strategy.setCurrentIndex(settings.strategy.findData("linear-probe"))
    assert glossary.term_at_focus(settings.strategy) == "linear_probe"
    settings.strategy.setCurrentIndex(settings.strategy.findData("auto"))
    assert glossary.term_at_focus(settings.strategy) == "strategy"


def test_a_multilabel_headline_links_its_own_figures(window):
    headline = window.views["evaluate"].headline
    metrics = {"n": 10, "subset_accuracy": 0.5, "macro_f1": 0.6, "roc_auc": {"macro": 0.7}, "class_names": ["a"]}
    headline.show_findings(metrics)
    assert LINK.findall(headline.captions["accuracy"].text()) == ["exact_match"]
    assert LINK.findall(headline.captions["balanced"].text()) == ["f1"]
    _openers(headline)["exact_match"]()
    assert glossary._Open.window.current_term() == "exact_match"


def test_f1_on_a_step_widget_opens_its_term(window):
    split = window.views["data"].split_panel
    assert glossary.term_at_focus(split.group) == "grouped_split"
    assert glossary.term_at_focus(split.leak) == "leakage"


def test_the_calibration_figures_link_their_words_once_a_run_is_shown(qtbot, finished_run):
    session = Session()
    view = EvaluateView(session)  # as tests/ui/test_evaluate.py shows a run
    qtbot.addWidget(view)
    view.show()
    session.select_run(str(finished_run))
    qtbot.waitUntil(lambda: "%" in view.calibration.ece.text(), timeout=30_000)
    openers = _openers(view.calibration)
    assert {"calibration", "temperature"} <= set(openers)
    assert {"balanced_accuracy", "auc_roc"} <= set(_openers(view.headline))  # the captions of a shown run
    openers["temperature"]()
    assert glossary._Open.window.current_term() == "temperature"
    glossary._Open.window.close()
    qtbot.waitUntil(lambda: not view.busy(), timeout=10_000)
    view.shutdown()
