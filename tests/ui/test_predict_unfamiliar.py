"""The Predict step marks images unlike the training images: a column, its tooltip, the summary and the CSV;
a model exported before the reference existed shows no such column. Rendered to $TL_SCREENSHOTS when set."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from PySide6.QtCore import Qt

from tests.core.export.test_unfamiliar import _edited, foreign_images
from tests.onnx_run import exported
from tl_desktop.ui.predict_view import HEADERS, UNFAMILIAR, PredictView
from tl_desktop.ui.session import Session

COLUMN = HEADERS.index("Unfamiliar")


def _predicted(qtbot, model: Path, files: list[Path]) -> PredictView:
    view = PredictView(Session())
    qtbot.addWidget(view)
    view.resize(1200, 640)
    view.show()
    view.set_model(str(model))
    qtbot.waitUntil(lambda: view.model_worker is not None and not view.model_worker.is_running(), timeout=30_000)
    view.predict([str(f) for f in files])
    qtbot.waitUntil(lambda: view.results.rowCount() == len(files), timeout=120_000)
    qtbot.waitUntil(lambda: not view.worker.is_running(), timeout=30_000)
    return view


def test_unfamiliar_rows_are_marked_with_score_and_reason(qtbot, tmp_path_factory, digits_dir, tmp_path):
    model = exported(tmp_path_factory, digits_dir).path
    foreign = foreign_images(tmp_path / "foreign")
    files = sorted(digits_dir.rglob("*.png"))[::10] + foreign["photos"][:3] + foreign["noise"][:2]
    view = _predicted(qtbot, model, files)
    rows = view.results.rows
    assert not view.table.isColumnHidden(COLUMN)
    marked = [i for i, p in enumerate(rows) if p.unfamiliar]
    assert set(range(len(rows) - 5, len(rows))) <= set(marked)  # the photos and the noise
    for i, p in enumerate(rows):
        text = view.results.data(view.results.index(i, COLUMN))
        assert text == (f"{UNFAMILIAR} (score {p.unfamiliarity:.2f})" if p.unfamiliar else "")
    tip = view.results.data(view.results.index(marked[0], 2), Qt.ItemDataRole.ToolTipRole)
    assert "unlike the images the model was trained on" in tip and "Check the image yourself" in tip
    assert view.results.data(view.results.index(marked[0], COLUMN), Qt.ItemDataRole.ForegroundRole) is not None
    assert f"{len(marked)} unlike the training images" in view.summary.text()
    if os.environ.get("TL_SCREENSHOTS"):
        view.table.scrollTo(view.results.index(len(rows) - 1, 0))
        view.grab().save(str(Path(os.environ["TL_SCREENSHOTS"]) / "predict-unfamiliar.png"))
    view.write_csv(tmp_path / "p.csv")
    with (tmp_path / "p.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["unfamiliar"] == "yes" for r in table] == [bool(p.unfamiliar) for p in rows]
    assert all(float(r["unfamiliarity"]) > 0 for r in table)
    view.shutdown()


def test_an_old_model_shows_no_unfamiliar_column(qtbot, tmp_path_factory, digits_dir, tmp_path):
    keys = {k: None for k in ("unfamiliar_threshold", "unfamiliar_action", "feature_dim", "unfamiliar_reference")}
    old = _edited(exported(tmp_path_factory, digits_dir).path, tmp_path / "old.onnx",
                  drop_outputs=("features", "unfamiliarity"), **keys)
    view = _predicted(qtbot, old, foreign_images(tmp_path / "foreign")["noise"][:2])
    assert view.table.isColumnHidden(COLUMN) and "unlike" not in view.summary.text()
    view.write_csv(tmp_path / "p.csv")
    assert "unfamiliar" not in (tmp_path / "p.csv").read_text().splitlines()[0]
    view.shutdown()
