"""Reproducible train/validation/test splits of a scan: stratified, seeded, optionally grouped by patient.

No group (CSV group column, DICOM element such as PatientID, or a file-name pattern) and no set of identical
images (same bytes or same decoded pixels, ``data/identity.py``) ever straddles two parts. Group values are
stored only as keyed hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tl_desktop.core.config import DataSource
from tl_desktop.core.data import multilabel
from tl_desktop.core.data.decode import read_dicom_value
from tl_desktop.core.data.identity import by_pixels_only, components, identical_images
from tl_desktop.core.data.review import Review, apply_review, merge_together
from tl_desktop.core.data.scan import SUBSETS, Sample, ScanReport
from tl_desktop.core.errors import DataError
from tl_desktop.core.events import LeakageCheck, LeakageFinding, SplitFinding

MIN_TEST_IMAGES = 5  # fewer test images of a class than this give a "small-test-class" warning
_JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe")


@dataclass
class Split:
    """A reproducible train/val/test assignment of a report's files.

    ``groups`` (relative path -> group) records the grouping used, so ``leakage`` can re-check it without
    the files; groups taken from DICOM elements are salted hashes, never the values.
    """

    seed: int
    val_fraction: float
    test_fraction: float
    group_by: str | None
    assignment: dict[str, str]  # relative path -> "train" | "val" | "test"
    groups: dict[str, str] | None = field(default=None)

    def samples(self, report: ScanReport, subset: str) -> list[Sample]:
        if subset not in SUBSETS:
            raise ValueError(f"unknown subset '{subset}'; choose one of {', '.join(SUBSETS)}")
        return [s for s in report.samples if self.assignment.get(s.path) == subset]

    def counts(self, report: ScanReport | None = None) -> dict[str, Any]:
        """Files per subset; with a report, files per subset and class (``{"train": {"cat": 12}}``)."""
        if report is None:
            tally = Counter(self.assignment.values())
            return {s: tally.get(s, 0) for s in SUBSETS}
        return {s: multilabel.count_labels(self.samples(report, s)) for s in SUBSETS}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Split:
        return cls(int(d["seed"]), float(d["val_fraction"]), float(d["test_fraction"]), d.get("group_by"),
                   dict(d["assignment"]), dict(d["groups"]) if d.get("groups") is not None else None)


def _salt() -> bytes:
    """A per-installation secret for hashing DICOM-derived groups (kept in the user data folder)."""
    from tl_desktop.core.fsutil import atomic_write_bytes
    from tl_desktop.paths import data_dir

    path = data_dir() / "group-salt.key"
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except OSError:
        pass
    atomic_write_bytes(path, os.urandom(32))
    return path.read_bytes()


def _hashed(keyword: str, value: str, salt: bytes) -> str:
    digest = hmac.new(salt, f"{keyword}={value}".encode(), hashlib.sha256).hexdigest()
    return f"{keyword}#{digest[:16]}"


def _dicom_groups(report: ScanReport, keyword: str) -> dict[str, str | None]:
    from concurrent.futures import ThreadPoolExecutor

    from pydicom.datadict import tag_for_keyword

    if tag_for_keyword(keyword) is None:
        raise DataError(f"'{keyword}' is not a DICOM element keyword (e.g. PatientID, StudyInstanceUID)")
    salt = _salt()
    with ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 4) * 2)) as pool:
        values = list(pool.map(lambda s: read_dicom_value(report.abspath(s), keyword), report.samples))
    if not any(values):
        raise DataError(f"no file has the DICOM element {keyword}; choose another grouping")
    return {s.path: (_hashed(keyword, v, salt) if v else None) for s, v in zip(report.samples, values, strict=True)}


def group_values(report: ScanReport, group_by: str | None) -> dict[str, str | None]:
    """Relative path -> group for every sample (None: the file is its own group).

    Raises:
        DataError: unknown ``group_by``, bad regex, no CSV group column, or no file with the DICOM element.
    """
    if group_by is None:
        return {s.path: None for s in report.samples}
    kind, _, arg = group_by.partition(":")
    if kind == "csv" and not arg:
        if not any(s.group for s in report.samples):
            raise DataError("grouping by 'csv' needs a 'group' column in the CSV")
        salt = _salt()  # a CSV group column is often a patient ID: stored only as a keyed hash
        return {s.path: _hashed("group", s.group, salt) if s.group else None for s in report.samples}
    if kind == "dicom" and arg:
        return _dicom_groups(report, arg)
    if kind == "regex" and arg:
        try:
            pattern = re.compile(arg)
        except re.error as exc:
            raise DataError(f"the grouping pattern '{arg}' is not a valid pattern (regular expression: {exc}); "
                            "a pattern that works: (P\\d+)_ takes P001 from P001_scan.png") from exc
        found = {s.path: pattern.search(s.path) for s in report.samples}
        salt = _salt()  # a file-name pattern usually captures a patient ID: stored only as a keyed hash
        return {p: _hashed("name", m.group(1) if m.re.groups else m.group(0), salt) if m else None
                for p, m in found.items()}
    raise DataError(f"unknown grouping '{group_by}'; use csv, dicom:<Keyword> or regex:<pattern>")


def _components(samples: list[Sample], groups: dict[str, str | None]) -> list[list[Sample]]:
    """Samples that must stay together: same group, or the same image (identical bytes or pixels)."""
    return components(samples, lambda s: groups.get(s.path))


def _targets(counts: dict[str, int], val_fraction: float, test_fraction: float) -> dict[str, dict[str, int]]:
    """Images per subset and class; classes of 3+ images get at least one in each non-empty subset."""
    out: dict[str, dict[str, int]] = {s: {} for s in SUBSETS}
    for label, n in counts.items():
        test, val = round(n * test_fraction), round(n * val_fraction)
        if n >= 3:
            test, val = max(test, int(test_fraction > 0)), max(val, int(val_fraction > 0))
        elif n == 2:
            test, val = int(test_fraction > 0), int(test_fraction == 0 and val_fraction > 0)
        else:
            test, val = 0, 0
        while n - test - val < 1 and test + val > 0:
            if val >= test:
                val -= 1
            else:
                test -= 1
        out["train"][label], out["val"][label], out["test"][label] = n - test - val, val, test
    return out


def _score(need: dict[str, int], have: Counter, add: Counter) -> tuple[int, float]:
    fill = sum(min(k, max(0, need.get(c, 0) - have[c])) for c, k in add.items())
    over = sum(max(0, have[c] + k - need.get(c, 0)) - max(0, have[c] - need.get(c, 0)) for c, k in add.items())
    relative = sum((need.get(c, 0) - have[c]) / max(need.get(c, 0), 1) for c in add)
    return fill - over, relative


def make_split(
    report: ScanReport, *, val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 0,
    group_by: str | None = None, together: Sequence[Sequence[str]] = (),
) -> Split:
    """A stratified, seeded split that keeps each group and each set of identical files in one subset.

    Components (groups / identical files / the review's keep-together groups ``together``) are visited in a
    seeded random order and each goes to the subset whose per-class quota it fills best, so quotas are met
    exactly when every component is one file.

    A multi-label set is split by iterative stratification (Sechidis, Tsoumakas and Vlahavas, 2011) over the
    same components: each label (and the images without a finding) has its own quota, and the components
    holding the rarest labels are placed first, while every part still wants them.

    Raises:
        DataError: unusable report, bad fractions or bad ``group_by``.
    """
    if not report.usable:
        raise DataError(str(report.unusable))
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise DataError("validation and test fractions must be >= 0 and add up to less than 1")
    groups = group_values(report, group_by)
    strata = Counter(label for s in report.samples for label in multilabel.strata_of(s))
    targets = _targets(dict(strata), val_fraction, test_fraction)
    components = _components(report.samples, merge_together(groups, together))
    random.Random(seed).shuffle(components)
    if report.is_multilabel:  # iterative stratification: the rarest labels first (a stable sort keeps the seed)
        components.sort(key=lambda comp: min(strata[label] for s in comp for label in multilabel.strata_of(s)))
    have: dict[str, Counter] = {s: Counter() for s in SUBSETS}
    assignment: dict[str, str] = {}
    for comp in components:
        add = Counter(label for s in comp for label in multilabel.strata_of(s))
        subset = max(("test", "val", "train"), key=lambda s: _score(targets[s], have[s], add))
        have[subset].update(add)
        assignment.update({s.path: subset for s in comp})
    ordered = {s.path: assignment[s.path] for s in report.samples}
    stored = {p: g for p, g in groups.items() if g is not None} if group_by else None
    return Split(seed, val_fraction, test_fraction, group_by, ordered, stored)


def split_source(source: DataSource) -> tuple[ScanReport, Split]:
    """Scan a data source and divide it (``divide``): its review decisions applied, by its stored split when
    it has one, else by a new seeded one. See ``split_source_reviewed``."""
    report, split, _ = split_source_reviewed(source)
    return report, split


def split_source_reviewed(source: DataSource) -> tuple[ScanReport, Split, dict[str, Any] | None]:
    """``split_source`` plus the record of the review decisions it applied (None: the source has none): the
    one way training, the transfer check, the label budget and jobs get their images and parts (``divide``).

    Raises:
        DataError: the images are unusable, the split settings are, or the review is damaged.
    """
    from tl_desktop.core.data.scan import scan

    divided = divide(scan(source.data, csv=source.csv, labels=source.labels, label_columns=source.label_columns),
                     source.review, stored=source.split,
                     val_fraction=source.val_fraction, test_fraction=source.test_fraction, seed=source.seed,
                     group_by=source.group_by)
    return divided.report, divided.split, divided.applied


@dataclass(frozen=True)
class Divided:
    """A scan divided as training divides it (``divide``). Attributes:
        report: the scan with the review decisions applied.
        split: the parts of ``report``'s files, as training, the Data step's table and the audit use them.
        applied: what the decisions changed (``review.apply_review``'s record plus ``moved``: the files a
            keep-together group moved in a stored split, ``{"path", "from", "to"}``); None without decisions.
        stored: what the project keeps as its split: ``split`` when it is new; else the stored split with the
            moves made, excluded files still in their parts (taking an exclusion back puts a file back there).
    """

    report: ScanReport
    split: Split
    applied: dict[str, Any] | None
    stored: Split


def divide(
    report: ScanReport, review: Review | dict[str, Any] | None = None, *,
    stored: Split | dict[str, Any] | None = None, val_fraction: float = 0.15, test_fraction: float = 0.15,
    seed: int = 0, group_by: str | None = None,
) -> Divided:
    """The scan with its review decisions applied (``review.apply_review``) and divided: by the ``stored``
    split (``Split.to_dict()``) when given, else by a new seeded ``make_split``.

    Excluded files leave the scan and the split, relabelled ones take their new label, and each keep-together
    group lands in one part: in a new split through its components, in a stored one by moving the group (and
    its patients' files) to the part most of them are in (ties: test, then validation).

    Raises:
        DataError: the images are unusable, the split settings are, or the review is damaged.
    """
    if not report.usable:
        raise DataError(str(report.unusable))
    reviewed, applied = report, None
    if review:
        reviewed, applied = apply_review(report, review if isinstance(review, Review) else Review.from_dict(review))
    together = applied["together"] if applied else []
    if stored is None:
        split = kept = make_split(reviewed, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
                                  group_by=group_by, together=together)
        moved: list[dict[str, str]] = []
    else:
        base = stored if isinstance(stored, Split) else Split.from_dict(stored)
        kept = _keep_together(base, report, together)
        split = _restricted(kept, reviewed)
        moved = [{"path": p, "from": base.assignment[p], "to": part} for p, part in split.assignment.items()
                 if base.assignment[p] != part]
    if applied is not None:
        applied = {**applied, "moved": moved, "counts": {**applied["counts"], "moved": len(moved)}}
    return Divided(reviewed, split, applied, kept)


def covers(split: Split, report: ScanReport) -> bool:
    """Whether ``split`` gives a part to every file of ``report`` (a reviewed scan): a file it lacks (added
    later, or taken back from the excluded ones) would be left out of training."""
    return all(s.path in split.assignment for s in report.samples)


def _restricted(split: Split, report: ScanReport) -> Split:
    """The stored split without the files the (reviewed) scan no longer holds."""
    present = {s.path for s in report.samples}
    if present >= set(split.assignment):
        return split
    groups = {p: g for p, g in split.groups.items() if p in present} if split.groups is not None else None
    assignment = {p: part for p, part in split.assignment.items() if p in present}
    return Split(split.seed, split.val_fraction, split.test_fraction, split.group_by, assignment, groups)


def _keep_together(split: Split, report: ScanReport, together: Sequence[Sequence[str]]) -> Split:
    """The stored split with each keep-together component (``merge_together`` of its groups) moved whole to
    the part most of its files of ``report`` are in (ties: test, then validation, then training)."""
    if not together:
        return split
    samples = [s for s in report.samples if s.path in split.assignment]
    assignment = dict(split.assignment)
    rank = {"test": 0, "val": 1, "train": 2}
    for component in _components(samples, merge_together(split.groups or {}, together)):
        parts = Counter(assignment[s.path] for s in component)
        if len(parts) > 1:
            subset = min(parts, key=lambda part: (-parts[part], rank[part]))
            assignment.update({s.path: subset for s in component})
    return Split(split.seed, split.val_fraction, split.test_fraction, split.group_by, assignment, split.groups)


def _subsets_of(paths: list[str], assignment: dict[str, str]) -> list[str]:
    return sorted({assignment[p] for p in paths if p in assignment}, key=SUBSETS.index)


def _identical_crossing(group: list[Sample], subsets: list[str]) -> LeakageFinding:
    n = len(group)
    paths = ", ".join(s.path for s in group[:3]) + (", ..." if n > 3 else "")
    parts = " and ".join(subsets)
    if by_pixels_only(group):
        key = next((s.pixel_sha256 for s in group if s.pixel_sha256), "")
        return LeakageFinding("identical-pixels-cross-splits",
                              f"{n} files with identical pixels (stored differently) are in {parts}: {paths}", n, key)
    return LeakageFinding("identical-files-cross-splits", f"{n} identical files are in {parts}: {paths}", n,
                          group[0].sha256)


def _crossing(members: dict[str, list[str]], assignment: dict[str, str]) -> list[tuple[str, list[str], int]]:
    out = []
    for key, paths in sorted(members.items()):
        if len(subsets := _subsets_of(paths, assignment)) > 1:
            out.append((key, subsets, len(paths)))
    return out


def leakage(report: ScanReport, split: Split) -> list[LeakageFinding]:
    """What crosses subsets: the same image, or a group, in more than one part ("identical-files-cross-splits",
    "identical-pixels-cross-splits" for differently stored files, "group-crosses-splits"), and files that got no
    group value ("no-group-value", a caution: each was split as a patient of its own). ``[]``: nothing to report.
    """
    problems = [_identical_crossing(group, subsets) for group in identical_images(report.samples)
                if len(subsets := _subsets_of([s.path for s in group], split.assignment)) > 1]
    groups = split.groups if split.groups is not None else (
        group_values(report, split.group_by) if split.group_by else {})
    by_group: dict[str, list[str]] = defaultdict(list)
    for path, group in groups.items():
        if group is not None:
            by_group[group].append(path)
    for group, subsets, n in _crossing(by_group, split.assignment):
        problems.append(LeakageFinding("group-crosses-splits",
                                       f"group '{group}' ({n} files) is in {' and '.join(subsets)}", n, group))
    uncovered = sum(1 for path in split.assignment if split.group_by and groups.get(path) is None)
    if uncovered:
        problems.append(LeakageFinding(
            "no-group-value", f"{uncovered} files have no value for '{split.group_by}' and were split as if each "
            "were a patient of its own; check them or group them another way", uncovered, str(split.group_by)))
    return problems


def checks_made(report: ScanReport, split: Split) -> tuple[str, ...]:
    """What ``leakage`` compares for this report and split, in the words the user reads."""
    items = ["identical files"]
    missing = [s.path for s in report.samples if s.path in split.assignment and s.pixel_sha256 is None]
    if len(missing) < len(split.assignment):
        n, plural = len(missing), "s" if len(missing) != 1 else ""
        if not missing:
            items.append("identical pixels")
        elif all(p.lower().endswith(_JPEG_SUFFIXES) for p in missing):
            items.append(f"identical pixels (not for the {n} JPEG file{plural}, compared by their bytes)")
        else:
            items.append(f"identical pixels (not for {n} file{plural} from an earlier scan: scan again)")
    items.append(_grouping_words(split.group_by))
    return tuple(items)


def _grouping_words(group_by: str | None) -> str:
    kind, _, arg = (group_by or "").partition(":")
    if kind == "dicom":
        return f"groups by {arg}"
    if kind == "csv":
        return "groups by the CSV group column"
    if kind == "regex":
        return f"groups by the file-name pattern {arg}"
    return "no patient grouping chosen"


def small_test_classes(report: ScanReport, split: Split) -> list[SplitFinding]:
    """A "small-test-class" warning for each class with fewer than ``MIN_TEST_IMAGES`` test images."""
    test = multilabel.count_labels(split.samples(report, "test"))
    if not test:
        return [SplitFinding("small-test-class", "the test part is empty: the model cannot be evaluated on images "
                             "it never saw (choose a test share above 0)")]
    out = []
    for label in report.classes:
        n = test.get(label, 0)
        if n < MIN_TEST_IMAGES:
            out.append(SplitFinding(
                "small-test-class", f"the test part has only {n} image{'s' if n != 1 else ''} of class '{label}': "
                f"its figures will be very uncertain (at least {MIN_TEST_IMAGES} are needed, 20+ is better)", label, n))
    return out


def leakage_check(report: ScanReport, split: Split) -> LeakageCheck:
    """``leakage``, what it checked, and the small-test-class warnings: what every front end shows of a split."""
    return LeakageCheck(checks_made(report, split), tuple(leakage(report, split)),
                        tuple(small_test_classes(report, split)))


def keep_earlier_subsets(report: ScanReport, split: Split, earlier: dict[str, str]) -> Split:
    """The split with every group or set of identical files that an earlier run used kept in that run's subset.

    Args:
        earlier: sha256 -> subset of the earlier run's files.

    A whole component moves, so a patient with an old test image and a new image stays in test: test wins
    over validation, validation over training.
    """
    samples = [s for s in report.samples if s.path in split.assignment]
    groups = split.groups or {}
    assignment = dict(split.assignment)
    rank = {"test": 0, "val": 1, "train": 2}
    for component in _components(samples, groups):
        old = [earlier[s.sha256] for s in component if s.sha256 in earlier]
        if old:
            subset = min(old, key=rank.__getitem__)
            for s in component:
                assignment[s.path] = subset
    return Split(split.seed, split.val_fraction, split.test_fraction, split.group_by, assignment, split.groups)


# --- the minimum per class ------------------------------------------------------------------------------

_SUBSET_WORDS = {"train": "training", "val": "validation", "test": "test"}


def check_minimum_per_class(report: ScanReport, split: Split) -> None:
    """Refuse a split in which a class has no training or no validation image, or no test image while the
    split has a test part: the best epoch would be chosen on zero images of it, its test figures would be empty.

    Raises:
        DataError: one line naming the classes short of images, their split counts and what to do.
    """
    counts = split.counts(report)
    needed = [s for s in SUBSETS if s != "test" or split.test_fraction > 0]
    labels = sorted(report.classes if report.is_multilabel else
                    {s.label for s in report.samples if s.path in split.assignment})
    short = [label for label in labels if any(not counts[s].get(label) for s in needed)]
    if report.is_multilabel:
        _check_negatives(report, split, needed)
    if not short:
        return

    def shown(label: str) -> str:
        return f"'{label}' ({', '.join(f'{counts[s].get(label, 0)} {_SUBSET_WORDS[s]}' for s in SUBSETS)})"

    names = ", ".join(shown(label) for label in short[:3]) + (f" and {len(short) - 3:,} more" if len(short) > 3 else "")
    which = "class has" if len(short) == 1 else "classes have"
    words = [f"one {_SUBSET_WORDS[s]}" for s in needed]
    parts = ", ".join(words[:-1]) + f" and {words[-1]}"
    if report.is_multilabel:
        which = "finding is" if len(short) == 1 else "findings are"
        raise DataError(f"{len(short):,} {which} on too few images to split: {names}; every finding needs at "
                        f"least {parts} image showing it: add images (20+ per finding is better) or leave it out")
    raise DataError(f"{len(short):,} {which} too few images to split: {names}; every class needs at least "
                    f"{parts} image: add images (3 per class at least, 20+ is better) or leave such classes out")


def _check_negatives(report: ScanReport, split: Split, needed: list[str]) -> None:
    """A multi-label finding present on every validation (or training, test) image leaves nothing to tell it
    apart from: refused like a finding with no images.

    Raises:
        DataError: one line naming the finding and the part.
    """
    for subset in needed:
        samples = split.samples(report, subset)
        for label in report.classes:
            if samples and all(label in multilabel.labels_of(s) for s in samples):
                raise DataError(f"finding '{label}' is present on every {_SUBSET_WORDS[subset]} image: the model "
                                "cannot learn or be checked on telling it apart; add images without it")
