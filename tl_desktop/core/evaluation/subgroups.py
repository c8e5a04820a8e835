"""Subgroup performance: the run's test figures broken down by a CSV column or a non-identifying DICOM tag.

What is offered (``offered_attributes``): the columns of the data set's CSV other than path, label and group,
and six DICOM tags that describe the acquisition or the population without naming anyone
(``DICOM_TAGS``: PatientSex, PatientAge in bands, Manufacturer, ManufacturerModelName, BodyPartExamined,
ViewPosition). Tags or columns that identify a patient or a study (``IDENTIFYING``) are never offered, read or
stored; nor is a column with more than ``MAX_VALUES`` distinct values, or one where every image has its own
value (it behaves like an identifier). DICOM headers are read with only the offered tags requested.

The figures (``subgroup_figures``) are computed from the evaluation artefact alone (``clinical.json``: the
stored per-image logits, the temperature and the decision rule) and the stored value of each test image, so the
window, the report, the CLI and the audit folder show the same numbers. Per value: images, accuracy, and for
two classes sensitivity and specificity at the run's decision rule and the AUC of the class of interest; for
more classes accuracy and each class's recall. Proportions carry Wilson 95% intervals, or, when the run's split
was grouped by patient and a patient has several images in the subgroup, a percentile cluster bootstrap over
patients (``statistics.bootstrap``); the AUC the engine's ``auc_ci`` (grouped likewise). Images the model
answers "not sure" are left out of the proportions (as in the operating point) and counted.

The flag rule (``RULE``): a figure of a subgroup is flagged when the upper end of its 95% interval lies below
the lower end of the same figure's 95% interval on the rest of the test images (every test image outside the
subgroup): the two intervals do not overlap and the subgroup is on the worse side. Comparing with the rest's
interval, not its point, keeps a subgroup with one mistake from being flagged against a small, perfect rest;
non-overlapping 95% intervals are a conservative test (a difference they show is significant well below 5%).
Subgroups of fewer than ``MIN_IMAGES`` images are shown but never flagged.
"""

from __future__ import annotations

import csv as csvlib
import io
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tl_desktop.core import runs
from tl_desktop.core.errors import ClinicalError
from tl_desktop.core.evaluation import statistics as clinical

FORMAT = 1
DICOM_TAGS = ("PatientSex", "PatientAge", "Manufacturer", "ManufacturerModelName", "BodyPartExamined",
              "ViewPosition")
# Never offered, read or stored: DICOM keywords and column names that name a person, a date of birth or a study.
IDENTIFYING = frozenset(re.sub(r"[^a-z0-9]", "", n.lower()) for n in (
    "PatientID", "PatientName", "PatientBirthDate", "PatientBirthTime", "OtherPatientIDs", "OtherPatientNames",
    "PatientAddress", "PatientTelephoneNumbers", "PatientMotherBirthName", "MedicalRecordLocator",
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "AccessionNumber", "StudyID", "StudyDate",
    "StudyTime", "AcquisitionDate", "ContentDate", "InstitutionName", "InstitutionAddress",
    "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName", "DeviceSerialNumber",
    "name", "patient", "mrn", "birthdate", "dob", "date_of_birth", "ssn", "address", "phone", "email"))
CSV_RESERVED = frozenset({"path", "label", "group"})
MAX_VALUES = 50
MIN_IMAGES = 10
UNKNOWN = "unknown"
AGE_BANDS = ((18, "<18"), (40, "18-39"), (60, "40-59"), (80, "60-79"))
RULE = ("A figure is flagged when the subgroup's whole 95% interval lies below the 95% interval of the same "
        "figure on the rest of the test images (the intervals do not overlap, the subgroup on the worse side). "
        f"Subgroups of fewer than {MIN_IMAGES} images are shown but never flagged.")


@dataclass(frozen=True)
class Attribute:
    """A subgroup attribute of the run's test images: ``source`` "csv" or "dicom"; ``reason`` why it is not
    offered (None: offered); ``values`` the number of distinct values among the test images."""

    name: str
    source: str
    values: int = 0
    reason: str | None = None

    @property
    def offered(self) -> bool:
        return self.reason is None


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def identifying(name: str) -> bool:
    """True for a tag or column name that identifies a patient or a study (never offered)."""
    return _norm(name) in IDENTIFYING


# --- values per image ------------------------------------------------------------------------------------

def age_band(value: Any) -> str:
    """A DICOM Age String ("067Y", "030M", "012W", "005D") or a number of years as a band; "unknown" otherwise."""
    text = str(value or "").strip().upper()
    match = re.fullmatch(r"(\d{1,3})\s*([DWMY]?)", text)
    if not match:
        return UNKNOWN
    years = int(match.group(1)) / {"D": 365.25, "W": 52.18, "M": 12.0, "Y": 1.0, "": 1.0}[match.group(2)]
    return next((band for limit, band in AGE_BANDS if years < limit), "80+")


def _csv_table(config: Any) -> tuple[Path, dict[str, dict[str, str]]] | None:
    """(CSV file, {relative path: {column: value}}) of the run's CSV, or None when the run has no CSV.

    Paths are made relative to the CSV's folder (the data root) as the scan does (``listing.read_csv``); the
    text and the delimiter are read with the listing's own helpers.
    """
    from tl_desktop.core.data.listing import _dialect, _read_text

    if not config.csv:
        return None
    path = Path(config.csv).expanduser()
    if not path.is_absolute() and not path.is_file():
        path = Path(config.data) / path
    if not path.is_file():
        return None
    text = _read_text(path)
    rows = list(csvlib.reader(io.StringIO(text, newline=""), _dialect(text)))
    if not rows:
        return path, {}
    header = [h.strip() for h in rows[0]]
    root = path.resolve().parent
    table: dict[str, dict[str, str]] = {}
    for row in rows[1:]:
        cells = {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}
        raw = cells.get(next((h for h in header if h.lower() == "path"), "path"), "")
        try:
            rel = Path(os.path.normpath(root / raw.replace("\\", "/"))).relative_to(root).as_posix()
        except ValueError:  # outside the CSV's folder: the scan left it out too
            continue
        if raw:
            table[unicodedata.normalize("NFC", rel)] = cells
    return path, table


def _dicom_values(root: Path, paths: Sequence[str]) -> dict[str, list[str]]:
    """The offered DICOM tags of each file ("unknown" where missing or not DICOM); no other tag is read."""
    import pydicom

    from tl_desktop.core.data.decode import is_dicom_header, read_head

    out: dict[str, list[str]] = {tag: [] for tag in DICOM_TAGS}
    for rel in paths:
        ds = None
        try:
            if is_dicom_header(read_head(root / rel)):
                ds = pydicom.dcmread(root / rel, stop_before_pixels=True, specific_tags=list(DICOM_TAGS))
        except (OSError, ValueError, pydicom.errors.InvalidDicomError):
            ds = None
        for tag in DICOM_TAGS:
            raw = str(getattr(ds, tag, "") or "").strip() if ds is not None else ""
            value = age_band(raw) if tag == "PatientAge" and raw else raw
            out[tag].append(value or UNKNOWN)
    return out


def _test_paths(run_dir: Path) -> tuple[Path, list[str]]:
    manifest = runs.load_manifest(run_dir)
    return Path(manifest["root"]), [f["path"] for f in manifest["files"] if f["subset"] == "test"]


def _all_values(run_dir: Path, paths: Sequence[str]) -> tuple[dict[str, list[str]], dict[str, str], dict[str, str]]:
    """(values per test image, source per attribute, refusals) of every candidate attribute."""
    config = runs.load_config(run_dir)
    root, _ = _test_paths(run_dir)
    values, sources, refused = {}, {}, {}
    found = _csv_table(config)
    if found is not None:
        csv_path, table = found
        columns = list(next(iter(table.values()), {}).keys())
        for column in columns:
            if column.lower() in CSV_RESERVED or column == config.group_by:
                continue
            if identifying(column):
                refused[column] = "identifies patients or studies: never offered"
                continue
            every = [row.get(column, "") for row in table.values()]
            distinct = {v for v in every if v}
            if len(distinct) > MAX_VALUES:
                refused[column] = f"{len(distinct)} different values (at most {MAX_VALUES})"
            elif len(every) >= MIN_IMAGES and len(distinct) == len(every):
                refused[column] = "every image has its own value: it looks like an identifier"
            else:
                values[column] = [(table.get(p, {}).get(column) or UNKNOWN) for p in paths]
                sources[column] = "csv"
    for tag, tag_values in _dicom_values(root, paths).items():
        if tag in values or all(v == UNKNOWN for v in tag_values):
            continue
        values[tag], sources[tag] = tag_values, "dicom"
    return values, sources, refused


def offered_attributes(run_dir: Path | str) -> list[Attribute]:
    """Every candidate attribute of the run's test images: offered ones first, then those refused with why.

    Raises:
        RunError: damaged run folder.
    """
    run_dir = Path(run_dir)
    _, paths = _test_paths(run_dir)
    values, sources, refused = _all_values(run_dir, paths)
    offered = [Attribute(n, sources[n], len(set(v))) for n, v in values.items()]
    return offered + [Attribute(n, "csv", 0, why) for n, why in refused.items()]


def attribute_values(run_dir: Path | str, names: Sequence[str], paths: Sequence[str]) -> dict[str, Any]:
    """The value of each chosen attribute for each of ``paths`` (the evaluation's test images).

    Returns ``{"values": {name: [value per path]}, "sources": {name: "csv" | "dicom"}}``.

    Raises:
        ClinicalError: an attribute is identifying, refused or not found (the message lists what is offered).
    """
    values, sources, refused = _all_values(Path(run_dir), paths)
    for name in names:
        if identifying(name):
            raise ClinicalError(f"'{name}' identifies patients or studies and is never used as a subgroup")
        if name in refused:
            raise ClinicalError(f"'{name}' cannot be a subgroup: {refused[name]}")
        if name not in values:
            offered = ", ".join(values) or "none (no CSV columns besides path/label/group, no DICOM tags)"
            raise ClinicalError(f"no subgroup attribute '{name}' in this run's test images; offered: {offered}")
    return {"values": {n: values[n] for n in names}, "sources": {n: sources[n] for n in names}}


# --- figures ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Cases:
    """The stored test predictions under the evaluation's decision rule."""

    y: np.ndarray
    probs: np.ndarray
    pred: np.ndarray  # class index, -1 "not sure"
    positive: int | None  # the class of interest (two classes)
    groups: np.ndarray | None
    n_boot: int
    seed: int


def _cases(data: dict[str, Any], groups: np.ndarray | None) -> _Cases:
    names = data["class_names"]
    preds = data["predictions"]["test"]
    y = np.asarray(preds["labels"], dtype=int)
    logits = np.asarray(preds["logits"], dtype=np.float64).reshape(len(y), -1)
    probs = clinical.softmax(logits, float(data.get("temperature") or 1.0)) if len(y) else logits
    name, threshold = data.get("positive_class"), data.get("decision_threshold")
    positive = names.index(name) if name is not None else None
    pred = clinical.decide(probs, positive, threshold if positive is not None else None,
                           data.get("abstain_threshold"))
    if len(names) == 2 and positive is None:
        positive = 1  # no rule stored: the most probable class answers; AUC of the second class
    boot = data.get("bootstrap") or {}
    return _Cases(y, probs, pred, positive if len(names) == 2 else None, groups,
                  int(boot.get("n_boot", 1000)), int(boot.get("seed", 0)))


def _grouped(groups: np.ndarray | None) -> bool:
    return groups is not None and len(set(groups.tolist())) < len(groups)


def _share(success: np.ndarray, groups: np.ndarray | None, c: _Cases) -> dict[str, Any]:
    """A proportion with its 95% interval: Wilson, or a cluster bootstrap when a patient has several images."""
    k, n = int(success.sum()), len(success)
    low, high = clinical.wilson_interval(k, n)
    method = "Wilson"
    if n and _grouped(groups):
        values, method = clinical.bootstrap(lambda index: success[index].mean(axis=1), np.zeros(n, dtype=int),
                                            n_boot=c.n_boot, seed=c.seed, groups=groups)
        low, high = (float(v) for v in np.percentile(values, [2.5, 97.5]))
    return {"value": k / n if n else None, "k": k, "n": n, "low": low, "high": high, "method": method}


def _figures_of(mask: np.ndarray, c: _Cases, names: list[str]) -> dict[str, Any]:
    """Accuracy (+ sensitivity, specificity, AUC for two classes; per-class recall for more) of the masked cases."""
    decided = mask & (c.pred >= 0)
    groups = c.groups[decided] if c.groups is not None else None
    right = (c.pred == c.y)

    def share(sub: np.ndarray) -> dict[str, Any]:
        g = c.groups[sub] if c.groups is not None else None
        return _share(right[sub], g, c)

    out: dict[str, Any] = {"n": int(mask.sum()), "n_not_sure": int((mask & (c.pred < 0)).sum()),
                           "accuracy": _share(right[decided], groups, c)}
    if c.positive is not None:
        out["sensitivity"] = share(decided & (c.y == c.positive))
        out["specificity"] = share(decided & (c.y != c.positive))
        out["auc"] = _auc(mask, c)
    else:
        out["recall"] = {name: share(decided & (c.y == i)) for i, name in enumerate(names)}
    return out


def _auc(mask: np.ndarray, c: _Cases) -> dict[str, Any] | None:
    truth = (c.y[mask] == c.positive).astype(int)
    if not (truth.any() and not truth.all()):
        return None
    groups = c.groups[mask] if c.groups is not None else None
    return clinical.auc_ci(truth, c.probs[mask, c.positive], n_boot=c.n_boot, seed=c.seed, groups=groups)


def _flags(row: dict[str, Any], rest: dict[str, Any]) -> list[str]:
    """The figures of a subgroup that are worse than the rest's beyond its interval (``RULE``)."""
    flags = []
    pairs = [(k, row.get(k), rest.get(k)) for k in ("accuracy", "sensitivity", "specificity")]
    pairs += [(f"recall of {n}", f, rest["recall"][n]) for n, f in (row.get("recall") or {}).items()]
    for key, mine, theirs in pairs:
        if mine and theirs and mine.get("high") is not None and theirs.get("low") is not None \
                and mine["high"] < theirs["low"]:
            flags.append(key)
    auc, rest_auc = row.get("auc"), rest.get("auc")
    if auc and rest_auc and auc["high"] < rest_auc["low"]:
        flags.append("AUC")
    return flags


def _order(value: str) -> tuple[int, int, str]:
    """Unknown last; age bands in age order; other values alphabetically."""
    bands = [band for _, band in AGE_BANDS] + ["80+"]
    return (value == UNKNOWN, bands.index(value) if value in bands else len(bands), value)


def _rows(values: Sequence[str], c: _Cases, names: list[str]) -> list[dict[str, Any]]:
    array = np.asarray(values, dtype=object)
    rows = []
    for value in sorted(set(values), key=_order):
        mask = array == value
        row = {"value": value, **_figures_of(mask, c, names)}
        rest_mask = ~mask
        row["rest"] = _figures_of(rest_mask, c, names) if rest_mask.any() else None
        row["too_few"] = row["n"] < MIN_IMAGES
        row["flags"] = [] if row["too_few"] or row["rest"] is None else _flags(row, row["rest"])
        row["flagged"] = bool(row["flags"])
        row["note"] = ("too few images: never flagged" if row["too_few"] else
                       "every test image has this value" if row["rest"] is None else "")
        rows.append(row)
    return rows


def subgroup_figures(data: dict[str, Any], values: dict[str, Sequence[str]],
                     groups: np.ndarray | None = None) -> dict[str, list[dict[str, Any]]]:
    """Per attribute, one row per value: the figures of its test images and of the rest, and its flags.

    Args:
        data: a clinical.json dict (its test predictions, temperature, decision rule and bootstrap settings).
        values: the value of each test image per attribute, in the order of ``predictions["test"]["paths"]``.
        groups: the patient of each test image (``statistics.case_groups``), None when the split was not grouped.

    Raises:
        ClinicalError: a value list does not match the test images.
    """
    c = _cases(data, groups)
    for name, column in values.items():
        if len(column) != len(c.y):
            raise ClinicalError(f"the stored subgroup '{name}' has {len(column)} values for {len(c.y)} test "
                                "images; choose the subgroups again")
    return {name: _rows(list(column), c, list(data["class_names"])) for name, column in values.items()}


def decision_words(data: dict[str, Any]) -> str:
    """The decision rule the subgroup figures use, in words, with whose it is (``decision.point_words``)."""
    from tl_desktop.core.evaluation.decision import point_words

    rule = point_words(data)
    if data.get("abstain_threshold") is not None:
        rule += f"; “not sure” below {float(data['abstain_threshold']):.3f} (left out of the figures)"
    return rule


def attach(data: dict[str, Any], chosen: dict[str, Any], groups: np.ndarray | None) -> dict[str, Any]:
    """Store the chosen attributes (``attribute_values``' result) and their figures as ``data["subgroups"]``."""
    grouped = _grouped(groups)
    data["subgroups"] = {
        "format": FORMAT, "attributes": list(chosen["values"]), "sources": dict(chosen["sources"]),
        "values": {n: list(v) for n, v in chosen["values"].items()}, "grouped": grouped,
        "rule": RULE, "min_images": MIN_IMAGES, "level": 0.95, "decision": decision_words(data),
        "interval": ("cluster bootstrap over patients where a patient has several images in a subgroup, else "
                     "Wilson" if grouped else "Wilson score interval (proportions), bootstrap (AUC)"),
        "figures": subgroup_figures(data, chosen["values"], groups),
    }
    return data


def refresh(data: dict[str, Any], groups: np.ndarray | None) -> dict[str, Any]:
    """Recompute stored subgroup figures (after the decision rule changed); nothing when none are stored."""
    stored = data.get("subgroups")
    if stored and stored.get("attributes"):
        attach(data, {"values": stored["values"], "sources": stored.get("sources") or {}}, groups)
    return data


def stored_attributes(data: dict[str, Any] | None) -> list[str]:
    """The attributes an evaluation's subgroups were computed for ([] when none)."""
    return list(((data or {}).get("subgroups") or {}).get("attributes") or [])

