"""The model card form's answers in the project file and in a --model-card file: round trip, bounds, refusals."""

from __future__ import annotations

import json

import pytest

from tl_desktop.cli import main
from tl_desktop.core.errors import ProjectError
from tl_desktop.core.project import project_file as proj
from tl_desktop.core.project.intended_use import LIMITS, IntendedUse, load_file

TEXT = IntendedUse(intended_use="Mark radiographs that may show an effusion,\nas a second reader.",
                   intended_users="Radiologists (ward 3 & 4) <not patients>",
                   out_of_scope="Children; CT; \"portable\" films", limitations="One site, 2018\u20132020 \u00e9")


def test_the_form_round_trips_through_the_project_file(tmp_path):
    project = proj.create(tmp_path / "p")
    assert proj.load(project.folder).model_card is None  # never filled in
    project.model_card = TEXT
    proj.save(project)
    assert json.loads(project.file.read_text())["model_card"]["intended_users"] == TEXT.intended_users
    assert proj.load(project.folder).model_card == TEXT
    project.model_card = None
    proj.save(project)
    assert proj.load(project.folder).model_card is None


def test_a_format_4_file_without_the_section_still_loads(tmp_path):
    project = proj.create(tmp_path / "p")
    data = json.loads(project.file.read_text())
    del data["model_card"]
    assert data["schema_version"] == proj.SCHEMA_VERSION == 4  # no new format number for an optional key
    project.file.write_text(json.dumps(data))
    assert proj.load(project.folder).model_card is None


@pytest.mark.parametrize(("section", "words"), [
    ({"intended_use": "x" * (LIMITS["intended_use"] + 1)}, "'intended_use' has 1,001 characters (at most 1,000)"),
    ({"limitations": "a" * 10_000_000}, "'limitations' has 10,000,000 characters"),
    ({"intended_users": ["radiologists"]}, "'intended_users' is list, not text"),
    ({"intended_use": "ok", "script": "<script>"}, "unknown key(s) script"),
    ({"out_of_scope": "bell\x07 and escape\x1b[31m"}, "'out_of_scope' holds control characters"),
    ("intended use", "the model card is str"),
    ([1, 2], "the model card is list"),
])
def test_a_hostile_section_is_refused_in_one_line(tmp_path, section, words):
    project = proj.create(tmp_path / "p")
    data = json.loads(project.file.read_text())
    data["model_card"] = section
    project.file.write_text(json.dumps(data))
    with pytest.raises(ProjectError) as caught:
        proj.load(project.folder)
    line = str(caught.value)
    assert words in line and "project.json is damaged" in line and "\n" not in line and len(line) < 300


def test_a_model_card_file_is_checked_like_the_project(tmp_path):
    good = tmp_path / "card.json"
    good.write_text(json.dumps(TEXT.to_dict()))
    assert load_file(good) == TEXT
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"intended_use": "  screening  "}))
    assert load_file(partial) == IntendedUse(intended_use="screening")
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"intended_use": "x" * 200_000}))
    with pytest.raises(ProjectError, match="big.json is .* bytes"):
        load_file(big)
    with pytest.raises(ProjectError, match="no such model card file"):
        load_file(tmp_path / "missing.json")


def test_the_cli_refuses_a_bad_model_card_file_in_one_line(tmp_path, capsys):
    """Refused before the run is even looked at: exit 2, one line naming the file, no traceback."""
    bad = tmp_path / "card.json"
    bad.write_text(json.dumps({"intended_use": 3}))
    assert main(["report", str(tmp_path / "no-run"), "--model-card", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "card.json is refused" in err and "'intended_use' is int" in err
    assert "Traceback" not in err
