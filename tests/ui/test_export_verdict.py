"""The Export step's verdict column uses today's limits of each precision (issue 13): an int8 file whose stored
figures say "passed" under the old agreement-only rule, with probabilities 0.365 apart, is not verified."""

from __future__ import annotations

from pathlib import Path

from tests.core.export.test_variant_verdict import WALKTHROUGH_INT8
from tl_desktop.ui.export_view import _row


def test_row_of_the_walkthrough_int8_file_is_not_verified():
    row = _row(Path("m.int8.onnx"), WALKTHROUGH_INT8)
    assert row[2] == "0.365" and row[3] == "98.4 % of 64 images"
    assert row[4] == "difference ≤ 0.05, same answer ≥ 95 %"
    assert row[5].startswith("✘ not verified")
    assert _row(Path("m.int8.onnx"), {**WALKTHROUGH_INT8, "max_abs_diff": 0.01})[5] == "✔ verified"
