"""The report of a real run: PDF + HTML + audit folder, with no patient data and no local folder in it."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil

import pytest

from tests.evaluation_run import two_digit_run
from tests.helpers import dicom_copy
from tl_desktop.cli import main

PATIENT = "Doe^Jane^Secretname"
PATIENT_ID = "PID-99887766"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A copy of the shared run whose test split also holds a DICOM file with a patient name, exported to
    ONNX, then reported through the CLI."""
    from tl_desktop.core.export.onnx_export import export_onnx

    source = two_digit_run(tmp_path_factory)
    base = tmp_path_factory.mktemp("reported")
    data, run = base / "data", base / "run"
    shutil.copytree(source.parent / "data", data)
    shutil.copytree(source, run, ignore=shutil.ignore_patterns("clinical.json", "report"))
    dcm = dicom_copy("MR_small.dcm", data / "digit_8" / "scan_0001.dcm", PatientName=PATIENT, PatientID=PATIENT_ID)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["root"] = str(data)
    manifest["files"].append({"path": "digit_8/scan_0001.dcm", "label": "digit_8", "subset": "test",
                              "sha256": hashlib.sha256(dcm.read_bytes()).hexdigest(), "width": 64, "height": 64})
    (run / "manifest.json").write_text(json.dumps(manifest))
    export_onnx(run, run / "export" / "model.onnx")
    (run / "transfer.json").write_text(json.dumps({  # the shape core/transfer.py writes (another issue)
        "verdict": "positive", "difference": {"value": 0.05, "low": 0.01, "high": 0.09}, "best_transfer": "fine-tune",
        "best_no_transfer": "scratch", "test_images": 19, "summary": "Transfer helped.", "rule": "2 points",
        "data": str(data), "out_dir": str(run)}))
    out = base / "report"
    assert main(["report", str(run), "--out", str(out), "--abstain", "0.6", "--positive", "digit_8"]) == 0
    return run, out, manifest


def test_report_files_and_contents(report):
    run, out, manifest = report
    pdf = (out / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 4
    html = (out / "report.html").read_text(encoding="utf-8")
    for heading in ("Summary", "Data", "Model and training", "Results on the test split", "Discrimination",
                    "Calibration and abstaining", "Where the model looked (Grad-CAM)", "Audit folder"):
        assert f">{heading}<" in html, heading
    for src in re.findall(r"src='(figures/[^']+)'", html):
        assert (out / src).read_bytes().startswith(b"\x89PNG"), src
    assert "roc.png" in html and "calibration.png" in html and "heatmap_0.png" in html
    clinical = json.loads((out / "audit" / "clinical.json").read_text())
    assert clinical["positive_class"] == "digit_8" and clinical["abstain_threshold"] == 0.6
    auc = clinical["curves"]["digit_8"]["auc"]
    assert f"{auc['auc']:.3f}" in html and f"{auc['low']:.3f}" in html  # the interval is printed
    assert "tf_efficientnet_lite0" in html and "ImageNet-1k" in html and "torch 2." in html
    assert "model.onnx" in html and "passed" in html
    # page 1 leads with accuracy; the operating point chosen with --positive is the user's, in the exported model
    page1 = _page_one(html)
    assert "<td>Accuracy</td>" in page1 and "<td>Balanced accuracy</td>" in page1
    assert "(in the exported model)" in page1 and "suggested" not in page1
    # exported before this evaluation chose its threshold: the report says the file does not decide as reported
    assert "NO: export again" in html
    assert "Transfer helped" in html and "+5.0" in html and "+1.0 to +9.0" in html


def _page_one(html: str) -> str:
    """The HTML of the report's first page (up to the first page break, as QTextDocument lays it out)."""
    from tl_desktop.report.document import page_break

    return html.split(page_break())[0]


def _text(html: str) -> str:
    import html as html_module

    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_page_one_of_a_three_class_report_leads_with_accuracy_and_names_no_positive_class(tmp_path_factory,
                                                                                          digits_dir, tmp_path):
    from tests.onnx_run import trained_run
    from tl_desktop.core.evaluation.stored_result import class_figures, summary
    from tl_desktop.report import write_report

    run = shutil.copytree(trained_run(tmp_path_factory, digits_dir), tmp_path / "run")
    result = write_report(run, tmp_path / "report", heatmaps=False)
    html = result.html.read_text(encoding="utf-8")
    page1, figures = _page_one(html), summary(json.loads((result.audit / "clinical.json").read_text()))
    text = _text(page1)
    right = sum(figures["confusion_matrix"][i][i] for i in range(3))
    assert f"Accuracy {100 * figures['accuracy']:.1f}%" in text and f"{right}/{figures['n']}" in text
    assert f"Balanced accuracy {100 * figures['balanced_accuracy']:.1f}%" in text
    assert "Decision rule none: each image gets its most probable class" in text
    assert "positive class" not in text.lower() and "decision threshold" not in text.lower()
    assert "Operating point" not in text and "Sensitivity for" not in text
    for name, f in class_figures(figures).items():  # each class's sensitivity and precision with intervals
        row = (f"{name} {f['recall']['n']} {100 * f['recall']['value']:.1f}% ({100 * f['recall']['low']:.1f}%–"
               f"{100 * f['recall']['high']:.1f}%)")
        assert row in text, row
    assert "At threshold" not in html and "confusion_threshold.png" not in html  # no operating point anywhere


def test_audit_folder_lists_every_file_with_hash_and_label(report):
    run, out, manifest = report
    audit = out / "audit"
    with open(audit / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(manifest["files"])
    expected = {f["path"]: (f["sha256"], f["label"], f["subset"]) for f in manifest["files"]}
    assert {r["file"]: (r["sha256"], r["label"], r["subset"]) for r in rows} == expected
    sums = (audit / "SHA256SUMS").read_text().splitlines()
    assert len(sums) >= 9
    for line in sums:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((audit / name).read_bytes()).hexdigest() == digest
    assert (audit / "model" / "model.onnx").is_file() and (audit / "model" / "model.verification.json").is_file()
    config = json.loads((audit / "run_config.json").read_text())
    assert config["data"] == "data" and config["out"] == "run"  # folder names only
    env = json.loads((audit / "environment.json").read_text())
    assert env["training_versions"]["torch"] and env["report_computer"]["cpu_count"]


def test_no_patient_data_and_no_local_folder_anywhere(report):
    run, out, manifest = report
    forbidden = [PATIENT.encode(), b"Secretname", PATIENT_ID.encode(), str(run.parent).encode(),
                 str(run.resolve()).encode(), manifest["root"].encode()]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 20
    for path in files:
        data = path.read_bytes()
        for needle in forbidden:
            assert needle not in data, f"{needle!r} in {path.relative_to(out)}"
    # the DICOM image was evaluated (it is in the test predictions), only its pixels were used
    clinical = json.loads((out / "audit" / "clinical.json").read_text())
    assert "digit_8/scan_0001.dcm" in clinical["predictions"]["test"]["paths"]


def test_hidden_file_names_and_no_heatmaps(report, tmp_path):
    run, _, manifest = report
    assert main(["report", str(run), "--out", str(tmp_path), "--hide-file-names", "--no-heatmaps"]) == 0
    everything = "".join(p.read_text(encoding="utf-8", errors="replace") for p in tmp_path.rglob("*")
                         if p.suffix in (".html", ".csv", ".json"))
    assert "scan_0001" not in everything and "3_0" not in everything
    assert "sha256:" in everything and "heatmap_" not in (tmp_path / "report.html").read_text()


def test_unfinished_run_is_refused(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"class_names": ["a", "b"]}))
    assert main(["report", str(tmp_path)]) == 2
    assert "not finished" in capsys.readouterr().err


def test_a_report_refused_for_a_local_folder_leaves_nothing_behind(report, tmp_path, monkeypatch, capsys):
    import tl_desktop.report as reporting

    run, _, _ = report
    real_html = reporting._html
    monkeypatch.setattr(reporting, "_html", lambda data, files: real_html(data, files) + str(run.resolve()))
    out = tmp_path / "refused"
    assert main(["report", str(run), "--out", str(out), "--no-heatmaps"]) == 2
    assert "\n" == capsys.readouterr().err[-1:] and not out.exists()
    assert not list(tmp_path.glob(".*partial"))
