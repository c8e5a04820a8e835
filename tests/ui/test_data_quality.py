"""The Data step's quality check and the review gallery: buttons and shortcuts write decisions into the
project file, Undo takes them back, and the next split applies them; screenshots of both for the docs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from tests.helpers import write_digits_folder
from tl_desktop.core.data.split import split_source

ORIGINAL, COPY = "digit_0/0_000.png", "digit_0/0_000_resaved.jpg"
SWAPPED = "digit_1/1_002.png"  # a real digit 1 that will be put in digit_2's folder


def _images(root: Path) -> Path:
    write_digits_folder(root, classes=(0, 1, 2), per_class=12)
    Image.open(root / ORIGINAL).convert("L").resize((30, 30)).save(root / COPY, quality=90)  # a re-saved copy
    (root / SWAPPED).rename(root / "digit_2" / "1_002.png")  # a label swapped on purpose
    return root


def _fake_audit(source, split, *, callback, cancel):
    """What the audit reports on this folder (the planted pair across parts, the swapped label): the window
    flow is tested here, the audit's findings in its own tests."""
    from tl_desktop.core.events import Progress

    callback(Progress("embeddings", 1, 2))
    cancel.raise_if_cancelled()
    parts = split.assignment
    return {"near_duplicates": [{"path_a": ORIGINAL, "path_b": COPY, "similarity": 0.991, "kind": "near",
                                 "split_a": parts[ORIGINAL], "split_b": parts[COPY],
                                 "crosses_splits": parts[ORIGINAL] != parts[COPY]},
                                {"path_a": "digit_2/2_003.png", "path_b": "digit_2/2_004.png", "similarity": 0.93,
                                 "kind": "near", "split_a": parts["digit_2/2_003.png"],
                                 "split_b": parts["digit_2/2_004.png"], "crosses_splits": False}],
            "label_issues": [{"path": "digit_2/1_002.png", "given_label": "digit_2", "suggested_label": "digit_1",
                              "score": 0.97},
                             {"path": "digit_0/0_005.png", "given_label": "digit_0", "suggested_label": "digit_2",
                              "score": 0.41},
                             {"path": "digit_1/1_007.png", "given_label": "digit_1", "suggested_label": "digit_0",
                              "score": 0.33}]}


@pytest.fixture
def data_view(qtbot, tmp_path, monkeypatch):
    from tl_desktop.core.data.split import Split
    from tl_desktop.ui.data import quality
    from tl_desktop.ui.data.view import DataView
    from tl_desktop.ui.session import Session

    monkeypatch.setattr(quality, "audit_task", _fake_audit)
    _images(tmp_path / "images")
    session = Session()
    view = DataView(session)
    qtbot.addWidget(view)
    view.resize(1280, 820)
    view.show()
    session.create(tmp_path / "p", "Quality")
    view.set_source(tmp_path / "images", "folder")
    qtbot.waitUntil(lambda: session.split is not None, timeout=60_000)
    split = session.split  # make the planted pair cross training and test, as a careless split would
    assignment = {**split.assignment, ORIGINAL: "train", COPY: "test"}
    session.set_split(Split(split.seed, split.val_fraction, split.test_fraction, None, assignment))
    yield view
    view.shutdown()


def _project_review(view) -> dict:
    return json.loads(view.session.project.file.read_text())["review"]


def _check(view, qtbot):
    panel = view.quality
    view.tabs.setCurrentWidget(panel)
    with qtbot.waitSignal(panel.worker.ended if panel.worker else panel.check_button.clicked, timeout=5_000):
        qtbot.mouseClick(panel.check_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.worker.is_running(), timeout=30_000)
    return panel


def test_pairs_keep_together_undo_and_exclude_reach_the_project_and_the_next_split(data_view, qtbot):
    panel = _check(data_view, qtbot)
    card = panel.pairs.cards[0]
    assert (card.pair.left, card.pair.right) == (ORIGINAL, COPY)
    def texts(widget) -> list[str]:
        return [w.text() for w in widget.findChildren(QLabel)]

    assert "In training and test: this inflates the results" in texts(card)
    assert "0_000_resaved.jpg\ntest images" in texts(card)
    assert not any("inflates" in t for t in texts(panel.pairs.cards[1]))
    assert "2 near-duplicate pairs" in panel.state.text() and "1 of them in two parts" in panel.state.text()
    line = data_view.split_panel.leak  # the split's own verdict names what the quality check found

    def crossing() -> int:
        parts = data_view.session.split.assignment
        return sum(parts[c.pair.left] != parts[c.pair.right] for c in panel.pairs.cards)

    before = crossing()
    assert before >= 1
    assert f"⚠ The data-quality check found {before} near-duplicate pair" in line.text(), line.text()

    qtbot.mouseClick(card.together_button, Qt.MouseButton.LeftButton)
    assert _project_review(data_view)["together"] == [[ORIGINAL, COPY]]
    qtbot.waitUntil(lambda: crossing() == before - 1, timeout=30_000)  # the new split keeps them together
    assert (f"⚠ The data-quality check found {before - 1} " in line.text() if before > 1
            else "data-quality check" not in line.text())
    assert card.status.text() == "Decided: kept together in one part of the split."
    assert panel.decided.text().startswith("1 decision; they apply from the next training")
    _, split = split_source(data_view.session.project.data_source())
    assert split.assignment[ORIGINAL] == split.assignment[COPY]

    qtbot.mouseClick(panel.decisions.undo_buttons[0], Qt.MouseButton.LeftButton)
    assert _project_review(data_view)["together"] == []
    qtbot.mouseClick(card.right_button, Qt.MouseButton.LeftButton)
    assert _project_review(data_view)["excluded"] == {COPY: {"reason": "near-duplicate", "of": ORIGINAL}}
    report, split = split_source(data_view.session.project.data_source())
    assert COPY not in split.assignment and COPY not in {s.path for s in report.samples}
    assert (Path(data_view.session.report.root) / COPY).is_file()  # the file itself stays

    qtbot.mouseClick(panel.pairs.all_button, Qt.MouseButton.LeftButton)  # the crossing pair, kept together too
    assert _project_review(data_view)["together"] == [[ORIGINAL, COPY]]


def test_gallery_shortcuts_keep_relabel_exclude_and_arrows(data_view, qtbot):
    panel = _check(data_view, qtbot)
    gallery = panel.gallery
    panel.tabs.setCurrentWidget(gallery)
    gallery.setFocus()
    assert gallery.current().path == "digit_2/1_002.png" and gallery.given.text() == "digit_2"
    assert gallery.relabel_button.text() == "Relabel to digit_1 (R)"
    qtbot.keyClick(gallery, Qt.Key.Key_R)
    assert _project_review(data_view)["relabelled"] == {"digit_2/1_002.png": "digit_1"}
    assert gallery.index == 1  # a decision moves on to the next image
    qtbot.keyClick(gallery, Qt.Key.Key_K)
    qtbot.keyClick(gallery, Qt.Key.Key_X)
    review = _project_review(data_view)
    assert review["kept"] == ["digit_0/0_005.png"]
    assert review["excluded"] == {"digit_1/1_007.png": {"reason": "label-error", "of": None}}
    qtbot.keyClick(gallery, Qt.Key.Key_Left)
    qtbot.keyClick(gallery, Qt.Key.Key_Left)
    assert gallery.index == 0 and gallery.status.text() == "Your decision: Relabelled to digit_1."
    qtbot.keyClick(gallery, Qt.Key.Key_Right)
    assert gallery.index == 1

    report, split = split_source(data_view.session.project.data_source())
    labels = {s.path: s.label for s in report.samples}
    assert labels["digit_2/1_002.png"] == "digit_1" and "digit_1/1_007.png" not in split.assignment
    assert panel.decisions.heading.text().startswith("3 decisions; they apply from the next training")


def test_screenshots_of_the_quality_panel_and_the_gallery(data_view, qtbot):
    panel = _check(data_view, qtbot)
    qtbot.mouseClick(panel.pairs.cards[1].left_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: all(p.pixmap() is not None and not p.pixmap().isNull()
                                for p in panel.pairs._pictures[ORIGINAL]), timeout=10_000)
    qtbot.waitUntil(lambda: data_view.split_worker is None or not data_view.split_worker.is_running(),
                    timeout=30_000)  # the split and class tables show the decision
    assert "your review changed it" in data_view.classes.item(data_view.classes.rowCount() - 1, 1).text()
    shots = Path(os.environ.get("TL_SCREENSHOTS") or tmp_shots(data_view))
    assert data_view.grab().save(str(shots / "data-quality.png"))
    panel.tabs.setCurrentWidget(panel.gallery)
    qtbot.waitUntil(lambda: panel.gallery.picture.pixmap() is not None
                    and not panel.gallery.picture.pixmap().isNull(), timeout=10_000)
    assert data_view.grab().save(str(shots / "review-gallery.png"))


def tmp_shots(view) -> Path:
    """Where the pictures go when TL_SCREENSHOTS (docs/screenshots, to renew the docs) is not set."""
    folder = Path(view.session.project.folder) / "shots"
    folder.mkdir(exist_ok=True)
    return folder


def test_review_these_images_from_a_confusion_cell(qtbot, tmp_path):
    from PySide6.QtWidgets import QApplication

    from tl_desktop.core.evaluation.stored_result import ImageResult
    from tl_desktop.ui.evaluate.view import EvaluateView
    from tl_desktop.ui.review.gallery import ReviewDialog
    from tl_desktop.ui.session import Session

    root = _images(tmp_path / "images")
    session = Session()
    session.create(tmp_path / "p", "Evaluate")
    session.project.set_source(root)
    view = EvaluateView(session)
    qtbot.addWidget(view)
    view.root = root
    view.images.set_run(None, root, ["digit_0", "digit_1", "digit_2"])
    cell = [ImageResult("digit_2/1_002.png", "digit_2", "digit_1", {"digit_1": 0.9, "digit_2": 0.1}),
            ImageResult("digit_2/2_001.png", "digit_2", "digit_1", {"digit_1": 0.6, "digit_2": 0.4})]
    view.images.show_cell(cell, "digit_2", "digit_1")
    assert view.images.review_button.isEnabled()
    qtbot.mouseClick(view.images.review_button, Qt.MouseButton.LeftButton)
    dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, ReviewDialog) and w.isVisible())
    gallery = dialog.gallery
    qtbot.waitUntil(lambda: QApplication.focusWidget() is gallery, timeout=5_000)
    assert gallery.score.text() == "The model said digit_1 (90 %)."
    qtbot.keyClick(gallery, Qt.Key.Key_R)
    qtbot.keyClick(gallery, Qt.Key.Key_X)
    review = json.loads(session.project.file.read_text())["review"]
    assert review["relabelled"] == {"digit_2/1_002.png": "digit_1"}
    assert review["excluded"] == {"digit_2/2_001.png": {"reason": "user", "of": None}}
    dialog.close()
    view.images.shutdown()
