"""Plain words first, the technical name second: the strategy picker (the stored key unchanged), progress
phases, the model table, the server job's commands, the label-budget verdicts; repeated notes shown once with a
count and all of them in a bounded dialog; "Make split" without images says why; an empty label-budget chart
says how to fill it instead of drawing an empty axis. Renders to $TL_SCREENSHOTS when set."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import Qt

from tl_desktop.core.events import Progress
from tl_desktop.core.insight.label_budget import ANSWER_SUMMARY, answer_summary
from tl_desktop.core.project.project_file import TrainSettings
from tl_desktop.core.training.strategies import STRATEGIES
from tl_desktop.ui.session import Session


def _save(widget, name: str) -> None:
    if folder := os.environ.get("TL_SCREENSHOTS"):
        widget.grab().save(os.path.join(folder, name))


@pytest.fixture
def form(qtbot):
    from tl_desktop.ui.train.settings import TrainSettingsForm

    widget = TrainSettingsForm()
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()


def test_strategy_picker_shows_plain_names_first_and_stores_the_key(form):
    shown = [form.strategy.itemText(i) for i in range(form.strategy.count())]
    assert shown[1] == "Train only the last layer (fast, few images)"
    assert shown[2] == "Also adapt the last layers (more images)"
    assert [form.strategy.itemData(i) for i in range(form.strategy.count())] == list(STRATEGIES)
    assert not any(text in STRATEGIES for text in shown)  # never the bare key
    # the technical name second: in the item's tooltip and heading the line under the box
    assert form.strategy.itemData(1, Qt.ItemDataRole.ToolTipRole) == (
        "Train only the last layer (fast, few images) — linear probe")
    settings = TrainSettings(strategy="fine-tune")
    form.load(settings)
    assert form.strategy.currentText().startswith("Also adapt the last layers")
    assert form.strategy_text.text().startswith("Fine-tune: ") and "adapt to your images" in form.strategy_text.text()
    form.strategy.setCurrentIndex(shown.index("Train only the last layer (fast, few images)"))
    assert form.strategy_text.text().startswith("Linear probe: The pretrained network stays")
    form.store(settings)
    assert settings.strategy == "linear-probe"


def test_progress_phases_are_said_in_words(qtbot):
    from tl_desktop.ui.train.view import TrainView
    from tl_desktop.ui.train.words import phase_words

    assert phase_words("embedding train") == "Reading each training image (features)"
    assert phase_words("predicting test") == "Answering for each test image (prediction)"
    assert phase_words("something new") == "Something new"
    view = TrainView(Session())
    qtbot.addWidget(view)
    view._on_event(Progress("embedding", 3, 10))
    assert view.progress.format() == "Reading each image (features): %v of %m images"
    view.shutdown()


def test_model_table_and_server_job_speak_plainly(qtbot):
    from tl_desktop.ui.model_view import ModelView
    from tl_desktop.ui.server_job import server_commands

    view = ModelView(Session())
    qtbot.addWidget(view)
    header = view.table.horizontalHeaderItem(4)
    assert header.text() == "Right on everyday photos\n(ImageNet top-1)"
    assert "1,000 kinds of everyday photo" in header.toolTip()
    text = server_commands("/tmp/job-1", "/data/images", 2, 1)
    assert "one training process per GPU with PyTorch's launcher, torchrun:" in text
    assert "jobs wait in a queue (Slurm)" in text and "digital fingerprint (SHA-256)" in text
    assert "SHA-256 manifest" not in text


def test_label_budget_verdicts_read_as_sentences():
    assert answer_summary("maybe") == "labelling more images may pay off a little"
    assert answer_summary("likely") == "labelling more images is likely to pay off"
    assert all("is maybe" not in s and "is unlikely to pay" not in s for s in ANSWER_SUMMARY.values())


def test_repeated_notes_are_shown_once_with_a_count(qtbot):
    from tl_desktop.ui.evaluate.view import EvaluateView
    from tl_desktop.ui.widgets.notes import NOTES_LINK, NotesDialog, notes_tooltip

    view = EvaluateView(Session())
    qtbot.addWidget(view)
    view.resize(1366, 768)
    same = "Only 4 test images of class 'digit_1': its sensitivity is uncertain & may change a lot."
    view._show_warnings([same] * 9 + ["The calibration uses 12 validation images."])
    line = view.clinical_note
    assert line.text().count("Only 4 test images") == 1 and "(noted 9 times)" in line.text()
    assert "and 1 other note" in line.text() and "hover" not in line.text()
    assert "&amp;" in line.text()  # escaped, shown as "&"
    line.linkActivated.emit(NOTES_LINK)
    dialogs = view.window().findChildren(NotesDialog)
    assert len(dialogs) == 1
    shown = dialogs[0].text.toPlainText().splitlines()
    assert shown == [f"{same} (noted 9 times)", "The calibration uses 12 validation images."]
    assert dialogs[0].width() <= 600 and dialogs[0].height() <= 400
    _save(dialogs[0], "notes_dialog.png")
    dialogs[0].close()
    tip = notes_tooltip([f"note {i}" for i in range(12)])
    assert tip.count("<p>") == 4 and "9 more" in tip  # three notes and the pointer to "show all"
    view._show_warnings([same])
    assert line.text() == f"Note: {same.replace('&', '&amp;')}" and line.toolTip() == ""
    view.shutdown()


def test_make_split_without_images_says_why(qtbot, tmp_path):
    from tl_desktop.ui.data.split_panel import NO_DATA
    from tl_desktop.ui.data.view import DataView

    session = Session()
    view = DataView(session)
    qtbot.addWidget(view)
    view.resize(1366, 768)
    view.show()
    session.create(tmp_path / "p", "Empty")
    panel = view.split_panel
    assert not panel.why.isVisible()
    panel.button.click()
    assert panel.why.isVisible() and panel.why.text() == NO_DATA
    assert view.split_worker is None and session.split is None
    _save(view, "split_no_data.png")
    view.shutdown()


def test_an_empty_label_budget_chart_says_how_to_fill_it(qtbot):
    from tl_desktop.ui.transfer.plots import EMPTY_BUDGET, LabelBudgetPlot

    plot = LabelBudgetPlot()
    qtbot.addWidget(plot)
    plot.resize(700, 360)
    plot.show()
    plot.set_points([])
    assert plot.empty.isVisible() and plot.empty.text() == EMPTY_BUDGET and not plot.plot.isVisible()
    _save(plot, "label_budget_empty.png")
    points = [{"images_per_class": k, "mean": m, "low": m - 0.02, "high": m + 0.02}
              for k, m in ((1, 0.5), (5, 0.7), (10, 0.8))]
    plot.set_points(points)
    assert plot.plot.isVisible() and not plot.empty.isVisible()
    for axis in ("bottom", "left"):
        assert "x0.001" not in plot.plot.getPlotItem().getAxis(axis).labelString()
    plot.set_points([])
    assert plot.empty.isVisible() and not plot.plot.isVisible()
