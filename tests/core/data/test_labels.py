"""Labels given in the app: the scan takes them, the project stores them, the CSV export reads back."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.helpers import write_digits_folder
from tl_desktop.core.data.labels import Labels, labels_problem, write_csv
from tl_desktop.core.data.scan import scan
from tl_desktop.core.errors import DataError, ProjectError
from tl_desktop.core.project import project_file


@pytest.fixture(scope="module")
def unsorted(tmp_path_factory):
    """Real digits 0, 1 and 2 (8 each) in one folder, per 'patient' sub-folder, with no class folders."""
    src = write_digits_folder(tmp_path_factory.mktemp("src"), classes=(0, 1, 2), per_class=8, size=24)
    root = tmp_path_factory.mktemp("unsorted")
    for i, path in enumerate(sorted(src.rglob("*.png"))):
        folder = root / f"patient_{i % 4}"
        folder.mkdir(exist_ok=True)
        shutil.copy(path, folder / f"img_{path.stem}.png")
    return root


def truth(path: str) -> str:
    return f"digit_{path.split('img_')[1][0]}"


def test_every_image_below_the_folder_is_to_label_and_folder_names_are_not_classes(unsorted):
    report = scan(unsorted, labels=Labels())
    assert report.samples == [] and len(report.unlabelled) == 24
    assert {s.label for s in report.unlabelled} == {""}
    assert "label images of at least 2 classes" in report.unusable
    assert scan(unsorted).classes == ["patient_0", "patient_1", "patient_2", "patient_3"]  # without labels


def test_labels_given_in_the_app_make_classes_and_the_rest_stays_to_label(unsorted):
    labels = Labels(classes=["digit_0", "digit_1", "digit_2"])
    paths = [s.path for s in scan(unsorted, labels=labels).unlabelled]
    for path in paths[:15]:
        labels.label(path, truth(path))
    labels.mark_not_sure(paths[15])
    report = scan(unsorted, labels=labels.to_dict())
    assert report.usable, report.unusable
    assert sorted(report.classes) == sorted({truth(p) for p in paths[:15]})
    assert sum(report.counts.values()) == 15 and len(report.unlabelled) == 9
    assert {s.path: s.label for s in report.samples} == {p: truth(p) for p in paths[:15]}
    assert paths[15] in {s.path for s in report.unlabelled}  # not sure: still unlabelled


def test_as_listed_keeps_class_folders_and_labels_the_loose_files(tmp_path):
    root = write_digits_folder(tmp_path / "d", classes=(0, 1), per_class=6, size=24)
    loose = sorted((root / "digit_1").glob("*.png"))[:2]
    for path in loose:
        shutil.move(path, root / path.name)
    report = scan(root, labels=Labels(layout="as-listed"))
    assert report.counts == {"digit_0": 6, "digit_1": 4}
    assert sorted(s.path for s in report.unlabelled) == sorted(p.name for p in loose)
    labels = Labels(layout="as-listed", classes=["digit_1"])
    labels.label(loose[0].name, "digit_1")
    labels.label("digit_0/0_000.png", "digit_1")  # an app label wins over the folder's
    report = scan(root, labels=labels)
    assert report.counts == {"digit_0": 5, "digit_1": 6} and len(report.unlabelled) == 1


def test_a_csv_with_empty_labels_lists_those_rows_to_label(tmp_path):
    root = write_digits_folder(tmp_path / "d", classes=(0, 1), per_class=5, size=24)
    rows = ["path,label"] + [f"{p.relative_to(root).as_posix()},{p.parent.name if i % 2 else ''}"
                             for i, p in enumerate(sorted(root.rglob("*.png")))]
    (root / "list.csv").write_text("\n".join(rows) + "\n")
    assert len(scan(root, csv=root / "list.csv").skipped) == 5  # without labels: empty labels are faults
    report = scan(root, csv=root / "list.csv", labels=Labels(layout="as-listed"))
    assert sum(report.counts.values()) == 5 and len(report.unlabelled) == 5 and not report.skipped


def test_the_csv_export_is_a_data_set_the_scan_reads_with_the_same_labels(unsorted, tmp_path):
    labels = Labels(classes=["digit_0", "digit_1", "digit_2"])
    for sample in scan(unsorted, labels=labels).unlabelled:
        labels.label(sample.path, truth(sample.path))
    report = scan(unsorted, labels=labels)
    assert write_csv(report, unsorted.parent / "labels.csv") == 24  # beside the images: absolute paths
    again = scan(unsorted.parent, csv=unsorted.parent / "labels.csv")
    assert {s.sha256: s.label for s in again.samples} == {s.sha256: s.label for s in report.samples}
    inside = unsorted / "labels.csv"
    write_csv(report, inside)
    assert "patient_0/img_" in inside.read_text()  # relative when the images lie below it
    assert scan(unsorted, csv=inside).counts == report.counts
    inside.unlink()


def test_undo_steps_restore_each_state_and_class_edits_follow_the_labels():
    labels = Labels(classes=["a", "b"])
    before = labels.state_of("x.png")
    labels.label("x.png", "a")
    mid = labels.state_of("x.png")
    labels.mark_not_sure("x.png")
    assert labels.state_of("x.png") == ("not-sure", None) and "x.png" not in labels.assigned
    labels.restore("x.png", mid)
    assert labels.assigned == {"x.png": "a"} and labels.not_sure == []
    labels.restore("x.png", before)
    assert labels.state_of("x.png") == ("open", None)
    labels.label("y.png", "b")
    labels.rename_class("b", "benign")
    assert labels.assigned == {"y.png": "benign"} and labels.classes == ["a", "benign"]
    assert labels.remove_class("benign") == 1 and labels.assigned == {}
    with pytest.raises(DataError, match="no class 'c'"):
        labels.label("z.png", "c")
    with pytest.raises(DataError, match="already"):
        labels.add_class("a")
    with pytest.raises(DataError, match="cannot be a class name"):
        labels.add_class("a/b")
    with pytest.raises(DataError, match="not a path inside"):
        labels.label("../outside.png", "a")


@pytest.mark.parametrize("data, words", [
    ([], "not an object"),
    ({"layout": "folders"}, "layout"),
    ({"assigned": ["a.png"]}, "'assigned'"),
    ({"assigned": {"/etc/passwd": "a"}}, "not a path inside"),
    ({"assigned": {"a.png": "a:b"}}, "cannot be a class name"),
    ({"classes": ["a", "a"]}, "named twice"),
    ({"assigned": {f"{i}.png": "a" for i in range(200_001)}}, "more than the 200,000"),
    ({"extra": 1}, "unknown key"),
])
def test_a_damaged_labels_section_is_named(data, words):
    assert words in labels_problem(data)


def test_the_project_keeps_the_labels_and_refuses_a_damaged_section(unsorted, tmp_path):
    project = project_file.create(tmp_path / "p", name="lab")
    project.set_source(unsorted)
    project.labels = Labels(classes=["digit_0", "digit_1"])
    path = next(iter(s.path for s in scan(unsorted, labels=project.labels).unlabelled))
    project.labels.label(path, "digit_1")
    project_file.save(project)
    again = project_file.load(tmp_path / "p")
    assert again.labels.assigned == {path: "digit_1"} and again.labels.layout == "images"
    assert again.data_source().labels == again.labels.to_dict()
    data = json.loads(again.file.read_text())
    assert data["schema_version"] == 4
    data["labels"]["assigned"] = {"../../x.png": "digit_1"}
    again.file.write_text(json.dumps(data))
    with pytest.raises(ProjectError, match="damaged.*not a path inside"):
        project_file.load(tmp_path / "p")


def test_a_format_3_project_opens_with_no_labels(tmp_path):
    project = project_file.create(tmp_path / "p", name="old")
    data = json.loads(project.file.read_text())
    data.pop("labels")
    data["schema_version"] = 3
    project.file.write_text(json.dumps(data))
    assert project_file.load(tmp_path / "p").labels is None
