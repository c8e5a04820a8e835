"""One small finished run with subgroup attributes, shared by the subgroup tests (trained once per session).

80 synthetic 32 px DICOM radiographs (``sample.write_radiographs``: normal / opacity) listed in a CSV with a
``site`` column (A and B, and a rare C), a column where every image has its own value (``ref``) and one named
like an identifier (``mrn``); each file carries PatientSex, PatientAge, Manufacturer and, to prove they are
never read, PatientID and PatientName.
"""

from __future__ import annotations

from pathlib import Path

SECRET_ID, SECRET_NAME = "SECRET-ID-4711", "Doe^Jane"
_RUNS: dict[str, Path] = {}


def site_of(index: int) -> str:
    return "C" if index % 13 == 5 else ("A" if index % 2 else "B")


def write_subgroup_data(base: Path) -> tuple[Path, Path]:
    """(data folder, CSV) of the radiographs with their tags and columns."""
    import pydicom

    from tl_desktop.sample import write_radiographs

    data = base / "data"
    files = write_radiographs(data, per_class=40, side=32, seed=2)
    lines = ["path,label,site,ref,mrn"]
    for i, path in enumerate(files):
        ds = pydicom.dcmread(path)
        ds.PatientSex = "F" if i % 3 else "M"
        ds.PatientAge = f"{(17 + 9 * i) % 95:03d}Y"
        ds.Manufacturer = "Acme" if i % 4 else "Globex"
        ds.PatientID, ds.PatientName = f"{SECRET_ID}-{i}", SECRET_NAME
        ds.save_as(path)
        lines.append(f"{path.relative_to(data).as_posix()},{path.parent.name},{site_of(i)},r{i},{1000 + i % 5}")
    csv = data / "labels.csv"
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return data, csv


def subgroup_run(tmp_path_factory) -> Path:
    """RUN_DIR of a finished linear-probe run on the radiographs, 25% test images (the same for the session)."""
    if "run" not in _RUNS:
        from tl_desktop.core.training.run import TrainConfig, train

        base = tmp_path_factory.mktemp("subgroups")
        data, csv = write_subgroup_data(base)
        train(TrainConfig(data=str(data), csv=str(csv), out=str(base / "run"), strategy="linear-probe", epochs=2,
                          image_size=32, batch_size=16, lr=2e-2, seed=1, workers=0, patience=0,
                          test_fraction=0.25))
        _RUNS["run"] = base / "run"
    return _RUNS["run"]
