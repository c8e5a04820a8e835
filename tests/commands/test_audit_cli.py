"""``tl-desktop audit`` through the real dispatcher: JSON shape, the text summary, DICOM identifiers that
cross parts flagged without their values, and one-line refusals (exit 2)."""

from __future__ import annotations

import json

import pytest

from tl_desktop import cli

STUDY = "1.2.826.0.1.3680043.99.424242"
PATIENT = "DOE^JANE-7781"


@pytest.fixture(autouse=True)
def _only_audit(monkeypatch):
    """The dispatcher imports every command module; test audit even while others are being written."""
    monkeypatch.setattr(cli, "COMMANDS", {k: v for k, v in cli.COMMANDS.items() if k == "audit"})


@pytest.fixture(scope="module")
def radiographs(tmp_path_factory):
    """12 small synthetic DICOMs in two classes, all of one study and one patient; one file also as a PNG."""
    import pydicom
    from PIL import Image

    from tl_desktop.core.data.decode import load_image
    from tl_desktop.sample import write_radiographs

    root = tmp_path_factory.mktemp("radiographs")
    for path in write_radiographs(root, per_class=6, side=48):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.PatientID = STUDY, PATIENT
        ds.save_as(path)
    image: Image.Image = load_image(root / "normal" / "normal_0000.dcm")
    image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "normal" / "exported_view.png")
    return root


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_pairs_issues_counts_and_no_identifier_values(radiographs, capsys):
    code, out, err = _run(capsys, "audit", str(radiographs), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert {"near_duplicates", "label_issues", "shared_identifiers", "counts", "split_rule", "threshold"} <= set(doc)
    assert doc["counts"]["near_duplicates"] == len(doc["near_duplicates"])
    assert doc["counts"]["label_issues"] == len(doc["label_issues"])
    kinds = {s["kind"] for s in doc["shared_identifiers"]}
    assert kinds == {"same patient", "same study"}, doc["shared_identifiers"]
    assert all(s["crosses_splits"] and len(s["subsets"]) > 1 for s in doc["shared_identifiers"])
    assert STUDY not in out and PATIENT not in out and "DOE" not in out
    mirror = [p for p in doc["near_duplicates"] if "normal/exported_view.png" in (p["a"], p["b"])]
    assert mirror and mirror[0]["kind"] == "near", doc["near_duplicates"][:3]
    assert {"a", "b", "similarity", "subset_a", "subset_b", "crosses_splits"} <= set(mirror[0])
    for issue in doc["label_issues"]:
        assert {"path", "given", "suggested", "score"} <= set(issue)
    assert doc["split_rule"].startswith("a new split as training makes it: seed 0")


def test_text_summary_marks_leaks_and_names_the_split_rule(radiographs, capsys):
    code, out, err = _run(capsys, "audit", str(radiographs), "--seed", "4")
    assert code == 0, err
    assert "parts: a new split as training makes it: seed 4" in out
    assert "LEAK same study StudyInstanceUID#" in out and STUDY not in out
    assert "Likely label errors" in out and "Duplicate pairs" in out


def test_grouping_by_the_study_keeps_it_in_one_part(radiographs, capsys):
    code, out, err = _run(capsys, "audit", str(radiographs), "--group-by", "dicom:StudyInstanceUID", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert "grouped by dicom:StudyInstanceUID" in doc["split_rule"]
    assert [s for s in doc["shared_identifiers"] if s["kind"] in ("same study", "same patient")] == []
    assert doc["label_issues"] == [] and doc["label_method"].startswith("not checked")


@pytest.mark.parametrize("argv, words", [
    (["audit", "{missing}"], "folder not found"),
    (["audit", "{data}", "--threshold", "1.5"], "--threshold"),
    (["audit", "{data}", "--group-by", "nonsense"], "unknown grouping"),
])
def test_bad_input_is_one_line_exit_2(radiographs, tmp_path, capsys, argv, words):
    argv = [a.format(missing=tmp_path / "nowhere", data=radiographs) for a in argv]
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
    assert err.startswith("tl-desktop audit: ")


def test_audit_is_listed_in_the_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "audit" in capsys.readouterr().out
