"""The model card form in the window: bounded boxes with examples, saved into the open project."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QDialog

from tl_desktop.core.project import project_file as proj
from tl_desktop.core.project.intended_use import LIMITS, IntendedUse
from tl_desktop.ui.model_card import QUESTIONS, ModelCardDialog, edit_model_card
from tl_desktop.ui.session import Session


def test_every_box_has_an_example_and_a_bound(qtbot):
    dialog = ModelCardDialog(IntendedUse(intended_use="Second reader"))
    qtbot.addWidget(dialog)
    assert set(dialog.boxes) == set(LIMITS) == set(QUESTIONS)
    for key, box in dialog.boxes.items():
        assert box.placeholderText().startswith("For example:"), key
    assert dialog.boxes["intended_use"].toPlainText() == "Second reader"
    assert dialog.counts["intended_use"].text() == f"13 / {LIMITS['intended_use']} characters"
    dialog.boxes["intended_users"].setPlainText("x" * (LIMITS["intended_users"] + 300))  # a long paste is cut
    assert len(dialog.boxes["intended_users"].toPlainText()) == LIMITS["intended_users"]
    dialog.boxes["out_of_scope"].setPlainText("  children\x07 under 16\n  ")
    card = dialog.card()
    assert card.out_of_scope == "children under 16" and len(card.intended_users) == LIMITS["intended_users"]


@pytest.mark.parametrize("answer", [QDialog.DialogCode.Accepted, QDialog.DialogCode.Rejected])
def test_saving_the_form_stores_it_in_the_project_file(qtbot, tmp_path, monkeypatch, answer):
    session = Session()
    session.create(tmp_path / "p")

    def fill(dialog: ModelCardDialog) -> int:
        dialog.boxes["intended_use"].setPlainText("Mark effusions <b>for</b> review")
        dialog.boxes["limitations"].setPlainText("One site.\nNo children.")
        return answer

    monkeypatch.setattr(ModelCardDialog, "exec", fill)
    assert edit_model_card(None, session) is (answer == QDialog.DialogCode.Accepted)
    stored = proj.load(tmp_path / "p").model_card
    if answer == QDialog.DialogCode.Accepted:
        assert stored == IntendedUse(intended_use="Mark effusions <b>for</b> review",
                                     limitations="One site.\nNo children.")
    else:
        assert stored is None  # Cancel keeps what the project had


def test_emptying_every_box_removes_the_card(qtbot, tmp_path, monkeypatch):
    session = Session()
    project = session.create(tmp_path / "p")
    project.model_card = IntendedUse(intended_use="old")
    session.save()
    monkeypatch.setattr(ModelCardDialog, "exec",
                        lambda d: (d.boxes["intended_use"].setPlainText("   "), QDialog.DialogCode.Accepted)[1])
    assert edit_model_card(None, session)
    assert proj.load(tmp_path / "p").model_card is None
