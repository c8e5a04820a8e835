"""Every step fits a 1366 x 768 laptop and a 1024 x 700 window: no plot title, legend or axis label is cut, no
table header is clipped or needs a horizontal scroll bar, no label is squeezed below its text.

The main window opens the sample project at 32 px with one tiny trained run (a one-epoch linear probe, exported
and used for a prediction), then each step (and each Evaluate tab) is shown at both sizes and every visible
widget is measured. With ``TL_SCREENSHOTS`` set, the renders are saved there as ``layout-<W>x<H>-<step>.png``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QRect
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QComboBox,
    QGraphicsTextItem,
    QLabel,
    QScrollArea,
    QTableView,
    QTabWidget,
    QWidget,
)

from tl_desktop.sample import build_sample_project
from tl_desktop.ui.main_window import MainWindow
from tl_desktop.ui.widgets.themed_plot import LEGEND_SHARE

SIZES = [(1366, 768), (1024, 700)]
SLACK = 2  # pixels of rounding


def _hidden_by_scroll_area(widget: QWidget) -> bool:
    """Inside a scroll area's viewport a widget may extend past what is shown: the user scrolls to it."""
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QAbstractScrollArea) and not isinstance(parent, QTableView):
            return True
        parent = parent.parentWidget()
    return False


def _name(widget: QWidget) -> str:
    text = widget.text() if isinstance(widget, QLabel) else ""
    return f"{type(widget).__name__} {widget.objectName() or ''}{text[:60]!r}"


def _visible(window: QWidget, kind: type) -> list:
    return [w for w in window.findChildren(kind) if w.isVisible() and w.width() > 0 and w.height() > 0]


def _outside(plot: pg.PlotWidget, item: pg.GraphicsObject, area: QRect) -> bool:
    """Whether ``item`` (a text item without its empty document margin) pokes out of ``area`` of the view."""
    rect = item.boundingRect()
    if isinstance(item, QGraphicsTextItem):
        margin = item.document().documentMargin()
        rect = rect.adjusted(margin, margin, -margin, -margin)
    box = plot.mapFromScene(item.mapToScene(rect)).boundingRect()
    return not area.adjusted(-SLACK, -SLACK, SLACK, SLACK).contains(box)


def plot_problems(plot: pg.PlotWidget) -> list[str]:
    """The title and axis labels lie inside the plot's view, the legend inside the plotting area; epoch ticks
    are whole numbers and no axis shows an SI multiplier ("x0.001")."""
    item = plot.getPlotItem()
    view = plot.viewport().rect()
    inner = plot.mapFromScene(item.getViewBox().sceneBoundingRect()).boundingRect().intersected(view)
    problems = []
    title = item.titleLabel
    if plot.property("title_text") and not title.isVisible():
        problems.append(f"title {plot.property('title_text')!r} is hidden")
    if title.isVisible() and title.text and _outside(plot, title.item, view):
        problems.append(f"title {title.text!r} is cut: {title.item.boundingRect().width():.0f} px of text in a "
                        f"{view.width()} px plot")
    legend = item.legend
    if legend is not None and legend.isVisible() and legend.items:
        box = plot.mapFromScene(legend.sceneBoundingRect()).boundingRect()
        if _outside(plot, legend, inner):
            problems.append(f"legend {box} lies outside the plotting area {inner}")
        if box.width() * box.height() > LEGEND_SHARE * inner.width() * inner.height() + 1:
            problems.append(f"legend {box.width()} x {box.height()} px covers more than {LEGEND_SHARE:.0%} of the "
                            f"plotting area {inner.width()} x {inner.height()}")
    for side in ("left", "bottom"):
        problems += [f"{side} axis: {p}" for p in _axis_problems(plot, item.getAxis(side), view)]
    for line in item.items:  # "best: epoch 3" and other labels on lines
        label = getattr(line, "label", None) if isinstance(line, pg.InfiniteLine) else None
        if line.isVisible() and label is not None and label.isVisible() and _outside(plot, label.textItem, inner):
            problems.append(f"line label {label.textItem.toPlainText()!r} is cut by the plotting area")
    return problems


def _axis_problems(plot: pg.PlotWidget, axis: pg.AxisItem, view: QRect) -> list[str]:
    if not axis.isVisible():
        return []
    problems = []
    if axis.label.isVisible() and axis.labelText and _outside(plot, axis.label, view):
        problems.append(f"label {axis.labelText!r} is cut")
    if axis.autoSIPrefix:
        problems.append("may show an SI multiplier such as (x0.001)")
    if axis.labelText == "epoch":
        low, high = axis.range
        for spacing, values in axis.tickValues(low, high, axis.width()):
            strings = axis.tickStrings(values, 1.0, spacing)
            if any(not text.lstrip("-").isdigit() for text in strings):
                problems.append(f"epoch ticks {strings} are not whole numbers")
    return problems


def table_problems(table: QTableView) -> list[str]:
    """Every header section is at least as wide as its text, and the header fits without scrolling."""
    header = table.horizontalHeader()
    if not header.isVisible():
        return []
    problems = []
    model = table.model()
    for section in range(header.count()):
        if header.isSectionHidden(section):
            continue
        needed = header.sectionSizeHint(section)
        if header.sectionSize(section) + SLACK < needed:
            text = model.headerData(section, header.orientation()) if model is not None else section
            problems.append(f"header {text!r} is {header.sectionSize(section)} px, its text needs {needed}")
    if header.length() > table.viewport().width() + SLACK:
        problems.append(f"header {header.length()} px wide in a viewport of {table.viewport().width()} px")
    return problems


def label_problems(widget: QLabel) -> list[str]:
    """A one-line label is as wide as its text; a wrapping one is as tall as its wrapped text."""
    if not widget.text().strip() or widget.pixmap() is not None and not widget.pixmap().isNull():
        return []
    if not widget.wordWrap():
        if widget.property("elides") and widget.toolTip() == widget.text():
            return []  # ends in "…", whole in its tooltip (``common.ElidedLabel``)
        if widget.sizeHint().width() > widget.width() + SLACK:
            return [f"needs {widget.sizeHint().width()} px, is {widget.width()} px wide"]
        return []
    needed = widget.heightForWidth(widget.width())
    if needed > widget.height() + SLACK:
        return [f"needs {needed} px of height at its width {widget.width()}, is {widget.height()} px tall"]
    return []


def combo_problems(combo: QComboBox) -> list[str]:
    """A drop-down shows its chosen text whole (Qt cuts it silently where the box is too narrow)."""
    text = combo.currentText()
    if not text or combo.isEditable():
        return []
    from PySide6.QtWidgets import QStyle, QStyleOptionComboBox

    option = QStyleOptionComboBox()
    combo.initStyleOption(option)
    room = combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                        QStyle.SubControl.SC_ComboBoxEditField, combo).width()
    picture = 0 if option.currentIcon.isNull() else combo.iconSize().width() + 4
    needed = combo.fontMetrics().horizontalAdvance(text) + picture
    if needed > room + SLACK:
        return [f"shows {text!r} in {room} px, it needs {needed}"]
    return []


def clipped_by_parent(widget: QWidget) -> list[str]:
    """A widget outside any scroll area is fully on screen: no parent cuts it off."""
    if _hidden_by_scroll_area(widget):
        return []
    shown, child, parent = widget.rect(), widget, widget.parentWidget()
    while parent is not None:
        shown = QRect(child.mapTo(parent, shown.topLeft()), shown.size()).intersected(parent.rect())
        child, parent = parent, parent.parentWidget()
    if shown.height() + SLACK < widget.height() or shown.width() + SLACK < widget.width():
        return [f"only {shown.width()} x {shown.height()} of {widget.width()} x {widget.height()} px shown"]
    return []


def layout_problems(window: QWidget) -> list[str]:
    """Every cut plot title/legend/axis label, clipped table header and squeezed label now on screen."""
    problems = []
    for plot in _visible(window, pg.PlotWidget):
        problems += [f"{_name(plot)} {p}" for p in plot_problems(plot) + clipped_by_parent(plot)]
    for table in _visible(window, QTableView):
        problems += [f"{_name(table)} {table.toolTip()[:40]!r}: {p}" for p in table_problems(table)]
    for widget in _visible(window, QLabel):
        problems += [f"{_name(widget)}: {p}" for p in label_problems(widget) + clipped_by_parent(widget)]
    for combo in _visible(window, QComboBox):
        problems += [f"drop-down {combo.toolTip()[:40]!r}: {p}" for p in combo_problems(combo) + clipped_by_parent(combo)]
    for tabs in _visible(window, QTabWidget):
        bar = tabs.tabBar()
        if bar.sizeHint().width() > tabs.width() + SLACK:
            names = [tabs.tabText(i) for i in range(tabs.count())]
            problems.append(f"tabs {names} need {bar.sizeHint().width()} px, have {tabs.width()}: some are hidden")
    for area in _visible(window, QScrollArea):
        if area.horizontalScrollBar().isVisible():
            problems.append(f"{_name(area)} scrolls sideways: its page needs {area.widget().minimumSizeHint().width()}"
                            f" px, has {area.viewport().width()}")
    return problems


@pytest.fixture
def trained_window(qtbot, tmp_path):
    """The main window on the sample project with one trained, evaluated, exported and used run."""
    window = MainWindow(warm_up=False)
    qtbot.addWidget(window)
    window.show()
    window.open_path(str(build_sample_project(tmp_path / "sample", size=32, per_class=20)))
    qtbot.waitUntil(lambda: window.session.split is not None, timeout=30_000)
    settings = window.session.project.settings
    settings.epochs, settings.strategy, settings.image_size, settings.batch_size = 1, "linear-probe", 32, 16
    settings.augmentation, settings.device = "none", "cpu"
    train = window.views["train"]
    train.form.load(settings)
    window.show_step("train")
    with qtbot.waitSignal(train.run_ended, timeout=180_000):
        train.start_button.click()
    window.show_step("evaluate")
    evaluate = window.views["evaluate"]
    qtbot.waitUntil(lambda: evaluate.metrics is not None, timeout=60_000)
    export = window.views["export"]
    window.show_step("export")
    export.out.setText(str(tmp_path / "digits.onnx"))
    export.button.click()
    qtbot.waitUntil(lambda: export.result is not None, timeout=120_000)
    predict = window.views["predict"]
    window.show_step("predict")
    predict.predict([str(window.session.project.source_path() / "digit_3")])
    qtbot.waitUntil(lambda: predict.results.rowCount() == 20, timeout=60_000)
    yield window
    window.close()


def _pages(window: MainWindow) -> list[tuple[str, callable]]:
    """(name, show it) for every step, and each tab of Evaluate."""
    steps = [key for key in window.views if key != "label" or not window.steps.item(2).isHidden()]
    pages = []
    for key in steps:
        if key == "evaluate":
            tabs: QTabWidget = window.views["evaluate"].tabs
            for index in range(tabs.count()):
                if tabs.isTabVisible(index):
                    pages.append((f"evaluate-{index}", lambda i=index, t=tabs: (window.show_step("evaluate"),
                                                                                t.setCurrentIndex(i))))
        else:
            pages.append((key, lambda k=key: window.show_step(k)))
    return pages


def _settle(qtbot, window: QWidget) -> None:
    """Let layouts and plots catch up (pyqtgraph lays out its items on resize events)."""
    qtbot.wait(150)
    for plot in _visible(window, pg.PlotWidget):
        plot.getPlotItem().getViewBox().prepareForPaint()
    window.grab()  # one full paint: pyqtgraph fixes its label sizes while painting
    qtbot.wait(50)


def test_every_step_fits(trained_window, qtbot):
    """Both sizes in one test: the trained window is built once (about 30 s)."""
    window = trained_window
    shots = os.environ.get("TL_SCREENSHOTS")
    problems = []
    for width, height in SIZES:
        window.resize(width, height)
        qtbot.wait(50)  # the resize is applied at once offscreen; this lets its events run
        assert (window.width(), window.height()) == (width, height), (
            f"the window cannot be made {width} x {height}: its minimum is {window.minimumSizeHint().toTuple()}")
        for name, show in _pages(window):
            show()
            _settle(qtbot, window)
            if shots:
                Path(shots).mkdir(parents=True, exist_ok=True)
                window.grab().save(str(Path(shots) / f"layout-{width}x{height}-{name}.png"))
            problems += [f"{width}x{height} {name}: {p}" for p in layout_problems(window)]
    assert not problems, f"{len(problems)} layout problems:\n" + "\n".join(problems)


def test_the_checks_see_clipping(qtbot):
    """The measures fail on a plot, table and label that are too small for their text."""
    from tl_desktop.ui.data.scan_report import make_table
    from tl_desktop.ui.widgets.themed_plot import make_plot

    host = QWidget()
    qtbot.addWidget(host)
    plot = make_plot("A rather long title that cannot fit in a small plot", "a y label that is long too", (-10, 10))
    plot.plot([1, 2], [1, 2], name="a legend entry far too long for this little plot")
    plot.setParent(host)
    plot.setGeometry(0, 0, 160, 120)
    table = make_table(["A long header text", "Another long header text", "A third one"])
    table.setParent(host)
    table.setGeometry(0, 130, 160, 80)
    squeezed = QLabel("A label with a long line of text", host)
    squeezed.setGeometry(0, 220, 60, 20)
    combo = QComboBox(host)
    combo.addItem("none: the most probable class")
    combo.setGeometry(0, 245, 120, 24)
    host.resize(200, 280)
    host.show()
    qtbot.waitExposed(host)
    host.grab()
    assert len(plot_problems(plot)) >= 2
    assert table_problems(table)
    assert label_problems(squeezed)
    assert combo_problems(combo)
    combo.setGeometry(0, 245, 400, 24)
    assert not combo_problems(combo)


def test_a_wrapped_caption_gives_its_height_back_when_widened(qtbot):
    """The Overview's confusion-matrix caption, laid out narrow first (as a tab is before it is shown), wraps
    onto many lines; widened, it takes two lines again and the matrix gets the room (it used to keep the narrow
    height and stand centred in a tall empty band above the matrix). The glossary line under the table too."""
    from tl_desktop.ui.evaluate.overview_panel import OverviewPanel

    panel = OverviewPanel()
    qtbot.addWidget(panel)
    classes = [f"digit_{k}" for k in range(10)]
    panel.matrix.set_matrix(classes, [[9 if i == j else 0 for j in range(10)] for i in range(10)])
    caption = panel.matrix.parentWidget().findChild(QLabel)
    line = caption.fontMetrics().lineSpacing()
    panel.resize(260, 460)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.waitUntil(lambda: caption.height() > 3 * line)
    panel.resize(1150, 460)
    qtbot.waitUntil(lambda: caption.height() <= 2 * line + 4)
    assert caption.minimumHeight() <= 2 * line + 4
    assert panel.matrix.height() > 460 - 4 * line - 60
    from tl_desktop.ui.glossary import TermLinks

    links = panel.findChild(TermLinks)  # the "What the words mean" line under the table, wrapped while narrow
    assert links is not None
    assert links.height() <= 2 * line + 4 and panel.table.height() > 460 - 4 * line - 60


def test_the_label_step_fits(qtbot, tmp_path):
    """The Label step (shown while a project is labelled in the app), one image and the grid, at both sizes,
    after a few labels so the progress, the class keys and the proposal lines hold text."""
    import shutil

    from tests.helpers import write_digits_folder
    from tl_desktop.ui.label.start import begin

    flat = tmp_path / "unsorted"
    flat.mkdir()
    for file in sorted(write_digits_folder(tmp_path / "sorted", per_class=6, size=32).rglob("*.png")):
        shutil.copy(file, flat / file.name)
    window = MainWindow(warm_up=False)
    qtbot.addWidget(window)
    window.show()
    session = window.session
    session.create(tmp_path / "project", "Labelling at the bedside").settings.image_size = 32
    begin(session, "images", flat, ["no finding", "pneumothorax (left or right)", "effusion"])
    window.show_step("label")
    view = window.views["label"]
    assert not window.steps.item(2).isHidden()
    qtbot.waitUntil(lambda: view.current is not None and view.picture.shown is not None, timeout=30_000)
    for index in range(4):
        qtbot.keyClick(view.picture.canvas, str(index % 3 + 1))
    shots = os.environ.get("TL_SCREENSHOTS")
    problems = []
    for width, height in SIZES:
        window.resize(width, height)
        qtbot.wait(50)
        assert (window.width(), window.height()) == (width, height)
        for grid in (False, True):
            view.grid_button.setChecked(grid)
            _settle(qtbot, window)
            if shots:
                Path(shots).mkdir(parents=True, exist_ok=True)
                window.grab().save(str(Path(shots) / f"layout-{width}x{height}-label{'-grid' if grid else ''}.png"))
            problems += [f"{width}x{height} {'grid' if grid else 'one image'}: {p}" for p in layout_problems(window)]
    view.shutdown()
    from tl_desktop.workers import Worker

    qtbot.waitUntil(lambda: not any(w.is_running() for w in Worker.live), timeout=30_000)
    assert not problems, f"{len(problems)} layout problems in the Label step:\n" + "\n".join(problems)
