"""Multi-label data sets: the CSV readings (``a;b`` labels, 0/1 columns), the scan's report, the split."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.helpers import FINDINGS, write_findings_csv
from tl_desktop.core.data.scan import scan
from tl_desktop.core.data.split import check_minimum_per_class, leakage, make_split
from tl_desktop.core.errors import DataError


@pytest.fixture(scope="module")
def findings(tmp_path_factory):
    root = tmp_path_factory.mktemp("findings")
    return write_findings_csv(root, n=80), write_findings_csv(root, n=80, columns=True, name="columns.csv")


def _expected(csv_text: str) -> dict[str, list[str]]:
    rows = [line.split(",") for line in csv_text.strip().splitlines()[1:]]
    return {path: sorted(filter(None, label.split(";"))) for path, label, _ in rows}


def test_separated_labels_make_a_multilabel_scan_with_counts_and_co_occurrence(findings):
    labels_csv, _ = findings
    report = scan(labels_csv, cache=False)
    expected = _expected(labels_csv.read_text())
    assert report.usable and report.task == "multi-label" and report.classes == list(FINDINGS)
    assert {s.path: s.findings for s in report.samples} == expected
    assert report.counts == dict(Counter(f for fs in expected.values() for f in fs))
    none = sum(not fs for fs in expected.values())
    both = sum(len(fs) == 2 for fs in expected.values())
    assert none == 20 and both == 20  # write_findings_csv: a quarter each
    assert report.multilabel["no_finding"] == none
    assert report.multilabel["co_occurrence"]["seven"] == {"zero": both}
    assert all(s.label == ";".join(s.findings) for s in report.samples)
    text = "\n".join(report.multilabel_lines())
    assert f"Images without any finding: {none} of 80" in text and f"seven + zero: {both}" in text


def test_zero_one_columns_read_as_the_same_findings(findings):
    labels_csv, columns_csv = findings
    by_labels = {s.path: s.findings for s in scan(labels_csv, cache=False).samples}
    auto = scan(columns_csv, cache=False)  # no label column: the 0/1 columns are the findings
    asked = scan(columns_csv, cache=False, label_columns=["zero", "seven"])
    assert auto.task == asked.task == "multi-label"
    assert {s.path: s.findings for s in auto.samples} == by_labels == {s.path: s.findings for s in asked.samples}
    one = scan(columns_csv, cache=False, label_columns=["zero"])
    assert one.classes == ["zero"] and one.counts == {"zero": 40}
    assert "0/1 column per label (zero)" in one.multilabel_lines()[0]


def test_bad_label_columns_and_values_are_named(findings, tmp_path):
    _, columns_csv = findings
    with pytest.raises(DataError, match="has no column 'effusion'"):
        scan(columns_csv, cache=False, label_columns=["effusion"])
    text = columns_csv.read_text().splitlines()
    text[3] = text[3].rsplit(",", 1)[0] + ",maybe"
    broken = columns_csv.parent / "broken.csv"
    broken.write_text("\n".join(text) + "\n")
    report = scan(broken, cache=False, label_columns=["seven", "zero"])
    assert len(report.samples) == 79
    assert [s.reason for s in report.skipped] == ["CSV line 4: column 'zero' is 'maybe', not 0 or 1"]


def test_single_label_csv_is_unchanged(tmp_path):
    report = scan(write_findings_csv(tmp_path, n=8), cache=False)
    assert report.task == "multi-label"
    plain = tmp_path / "plain.csv"
    plain.write_text("path,label\n" + "".join(f"images/img_{i:03d}.png,{'a' if i % 2 else 'b'}\n" for i in range(8)))
    single = scan(plain, cache=False)
    assert single.task == "single-label" and single.multilabel is None and single.counts == {"a": 4, "b": 4}
    assert all(s.findings is None for s in single.samples)


def test_split_is_stratified_per_finding_and_keeps_patients_together(findings):
    labels_csv, _ = findings
    report = scan(labels_csv, cache=False)
    split = make_split(report, val_fraction=0.2, test_fraction=0.2, seed=4, group_by="csv")
    counts = split.counts(report)
    for finding in FINDINGS:  # 40 images each: 8 validation and 8 test are wanted, patients are pairs
        assert abs(counts["val"][finding] - 8) <= 2 and abs(counts["test"][finding] - 8) <= 2, counts
    parts = Counter(split.assignment.values())
    assert abs(parts["test"] - 16) <= 2 and abs(parts["val"] - 16) <= 2
    none = [s for s in report.samples if not s.findings]
    assert {split.assignment[s.path] for s in none} == {"train", "val", "test"}  # no-finding images spread too
    assert not [f for f in leakage(report, split) if f.leaks]
    patients = {}
    for s in report.samples:
        patients.setdefault(s.group, set()).add(split.assignment[s.path])
    assert all(len(parts) == 1 for parts in patients.values())
    check_minimum_per_class(report, split)


def test_a_finding_on_every_validation_image_is_refused(findings, tmp_path):
    labels_csv, _ = findings
    rows = [line.split(",") for line in labels_csv.read_text().splitlines()[1:]]
    everywhere = labels_csv.parent / "zero_everywhere.csv"
    everywhere.write_text("path,label,group\n" + "".join(f"{p},{';'.join(sorted({*filter(None, lab.split(';')), 'zero'}))},"
                                                          f"{g}\n" for p, lab, g in rows))
    report = scan(everywhere, cache=False)
    assert report.counts["zero"] == 80
    assert any("present in every image" in w.message for w in report.warnings)
    with pytest.raises(DataError, match="finding 'zero' is present on every"):
        check_minimum_per_class(report, make_split(report, seed=0))


def test_a_listed_finding_without_images_is_refused_before_training(findings):
    _, columns_csv = findings
    rows = [line.split(",") for line in columns_csv.read_text().splitlines()[1:]]
    empty = columns_csv.parent / "no_sevens.csv"
    empty.write_text("path,group,seven,zero\n" + "".join(f"{p},{g},0,{z}\n" for p, g, _, z in rows))
    report = scan(empty, cache=False, label_columns=["seven", "zero"])
    assert report.counts == {"seven": 0, "zero": 40}
    assert any("'seven' is present in only 0 usable images" in w.message for w in report.warnings)
    with pytest.raises(DataError, match="1 finding is on too few images to split: 'seven' \\(0 training"):
        check_minimum_per_class(report, make_split(report, seed=0))
