"""The data audit on real images with planted changes: copies found across splits, ordinary images left alone,
swapped labels ranked first, DICOM identifiers shared across parts flagged without their values."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from tests.helpers import _photo, write_digits_folder
from tl_desktop.core.config import DataSource
from tl_desktop.core.events import Cancelled, CancelToken, Progress
from tl_desktop.core.insight.audit import audit, shared_identifiers

SIZE = 64  # embedding size where only the mechanics are tested (the calibrated size is AUDIT_IMAGE_SIZE)
SURE = ("jpeg95", "double", "darker", "flipped")  # changes every copy of which must be found
PHOTOS = ("astronaut", "camera", "coffee", "rocket", "chelsea", "immunohistochemistry", "moon", "coins", "clock",
          "page", "text", "colorwheel", "hubble_deep_field", "retina", "brick", "grass", "gravel", "cell")


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def _crop(im: Image.Image, share: float) -> Image.Image:
    dx, dy = round(im.width * share / 2), round(im.height * share / 2)
    return im.crop((dx, dy, im.width - dx, im.height - dy))


CHANGES = {  # name -> how a planted copy differs from its original
    "jpeg60": lambda im: _jpeg(im, 60),
    "jpeg95": lambda im: _jpeg(im, 95),
    "half": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR),
    "double": lambda im: im.resize((im.width * 2, im.height * 2), Image.Resampling.BICUBIC),
    "crop8": lambda im: _crop(im, 0.08),
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.15),
    "darker": lambda im: ImageEnhance.Brightness(im).enhance(0.85),
    "flipped": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One user home (embedding cache, salt) for the module-scoped audits."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("audit_home")
        mp.setenv("TL_DESKTOP_HOME", str(path))
        yield path


def write_planted(root: Path) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Photos and digits (originals in train), changed copies planted in the other class (in val or test).

    Returns (relative path -> part, copy -> (its original, the change)).
    """
    write_digits_folder(root, classes=(0, 1), per_class=30, size=32)
    assignment = {p.relative_to(root).as_posix(): "train" for p in root.rglob("*.png")}
    copies: dict[str, tuple[str, str]] = {}
    for n, name in enumerate(PHOTOS):
        folder = "digit_0" if n % 2 else "digit_1"
        original = _photo(name, 128).convert("RGB")
        original.save(root / folder / f"{name}.png")
        assignment[f"{folder}/{name}.png"] = "train"
        if n < 2 * len(CHANGES):
            change = list(CHANGES)[n % len(CHANGES)]
            other = "digit_1" if folder == "digit_0" else "digit_0"
            rel = f"{other}/{name}_{change}.png"
            CHANGES[change](original).save(root / rel)
            copies[rel], assignment[rel] = (f"{folder}/{name}.png", change), "test"
    for i, change in enumerate(("jpeg95", "double", "flipped", "darker")):
        src = f"digit_0/0_{i:03d}.png"
        rel = f"digit_1/copy_of_0_{i:03d}_{change}.png"
        CHANGES[change](Image.open(root / src).convert("L")).save(root / rel)
        copies[rel], assignment[rel] = (src, change), "val"
    shutil.copy(root / "digit_0/0_010.png", root / "digit_0/exact_copy.png")  # same class: not a label conflict
    assignment["digit_0/exact_copy.png"] = "test"
    return assignment, copies


@pytest.fixture(scope="module")
def planted(home, tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    assignment, copies = write_planted(root)
    events: list = []
    report = audit(DataSource(data=str(root)), split=assignment, callback=events.append)
    return report, copies, events


def _pair_set(report) -> dict[frozenset, object]:
    return {frozenset((p.a, p.b)): p for p in report.near_duplicates}


def test_planted_copies_are_found_across_splits(planted):
    report, copies, _ = planted
    pairs = _pair_set(report)
    found = [rel for rel, (src, _) in copies.items() if frozenset((rel, src)) in pairs]
    missed = sorted(set(copies) - set(found))
    assert len(found) >= 0.75 * len(copies), f"missed: {missed}"
    assert not [rel for rel in missed if copies[rel][1] in SURE], missed
    for rel in found:
        pair = pairs[frozenset((rel, copies[rel][0]))]
        assert pair.kind == "near" and pair.crosses_splits and pair.similarity >= report.threshold
    flipped = [rel for rel in found if copies[rel][1] == "flipped"]
    assert flipped and all(pairs[frozenset((r, copies[r][0]))].flipped for r in flipped)


def test_ordinary_images_are_not_flagged(planted):
    report, copies, _ = planted
    planted_pairs = {frozenset((rel, src)) for rel, (src, _) in copies.items()}
    planted_pairs.add(frozenset(("digit_0/0_010.png", "digit_0/exact_copy.png")))
    false = [p for p in report.near_duplicates if frozenset((p.a, p.b)) not in planted_pairs]
    ordinary = 60 + len(PHOTOS)
    assert len(false) <= 3, f"{len(false)} of {ordinary * (ordinary - 1) // 2} ordinary pairs flagged: {false}"


def test_exact_copies_come_from_identity_and_json_is_complete(planted):
    report, _, events = planted
    exact = [p for p in report.near_duplicates if p.kind == "exact"]
    assert [(p.a, p.b, p.similarity) for p in exact] == [("digit_0/0_010.png", "digit_0/exact_copy.png", 1.0)]
    assert exact[0].crosses_splits and (exact[0].subset_a, exact[0].subset_b) == ("train", "test")
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["counts"]["near_duplicates"] == len(report.near_duplicates)
    assert doc["split_rule"] == "the given assignment of files to parts"
    assert {"a", "b", "similarity", "kind", "subset_a", "subset_b", "crosses_splits"} <= set(doc["near_duplicates"][0])
    assert any(isinstance(e, Progress) and e.phase == "embedding" for e in events)


@pytest.fixture(scope="module")
def swapped(home, tmp_path_factory):
    """150 digits (3 classes of 50), 5 of them moved into a wrong class folder."""
    root = write_digits_folder(tmp_path_factory.mktemp("swapped"), classes=(0, 1, 2), per_class=50, size=32)
    moves = {"digit_0/0_007.png": "digit_1", "digit_0/0_031.png": "digit_2", "digit_1/1_012.png": "digit_2",
             "digit_2/2_044.png": "digit_0", "digit_1/1_040.png": "digit_0"}
    moved = []
    for rel, target in moves.items():
        dest = root / target / f"moved_{Path(rel).name}"
        shutil.move(root / rel, dest)
        moved.append(dest.relative_to(root).as_posix())
    return audit(DataSource(data=str(root), seed=1)), moved


def test_swapped_labels_rank_at_the_top(swapped):
    report, moved = swapped
    top = [i.path for i in report.label_issues[:8]]
    assert len(set(moved) & set(top)) >= 4, (top, moved)
    assert report.label_issues[0].path in moved
    issue = next(i for i in report.label_issues if i.path in moved)
    assert issue.suggested != issue.given and issue.suggested == f"digit_{Path(issue.path).name.split('_')[1][0]}"
    assert len(report.label_issues) <= 15  # ordinary digits are mostly not accused
    assert all(a.score <= b.score for a, b in zip(report.label_issues, report.label_issues[1:], strict=False))
    assert report.split_rule.startswith("a new split as training makes it: seed 1")
    assert {i.subset for i in report.label_issues} <= {"train", "val", "test"}


def test_audit_honours_the_cancel_token(home, digits_dir):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        audit(DataSource(data=str(digits_dir)), cancel=token, image_size=SIZE)


def _radiographs(root: Path) -> dict[str, str]:
    """Six small synthetic DICOMs; two share a PatientID, two a StudyInstanceUID. Returns path -> part."""
    import pydicom

    from tl_desktop.sample import write_radiographs

    paths = write_radiographs(root, per_class=3, side=48)
    tags = [dict(PatientID="PAT-SECRET-1"), dict(PatientID="PAT-SECRET-1"), dict(StudyInstanceUID="1.2.3.999.1"),
            dict(StudyInstanceUID="1.2.3.999.1"), dict(PatientID="PAT-OTHER"), dict(SeriesInstanceUID="1.2.3.777")]
    for path, values in zip(paths, tags, strict=True):
        ds = pydicom.dcmread(path)
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        ds.save_as(path)
    rels = [p.relative_to(root).as_posix() for p in paths]
    return dict(zip(rels, ["train", "test", "train", "val", "train", "test"], strict=True))


def test_dicom_identifiers_shared_across_parts_are_flagged_without_values(home, tmp_path):
    from tl_desktop.core.data.scan import scan

    parts = _radiographs(tmp_path / "dicom")
    found = shared_identifiers(scan(tmp_path / "dicom"), parts)
    assert sorted((f.kind, tuple(f.subsets)) for f in found) == [("same patient", ("train", "test")),
                                                                 ("same study", ("train", "val"))]
    patient = next(f for f in found if f.kind == "same patient")
    assert patient.paths == sorted(list(parts)[:2]) and patient.key.startswith("PatientID#")
    text = json.dumps([f.to_dict() for f in found])
    assert "SECRET" not in text and "999" not in text
    parts = dict.fromkeys(parts, "train")
    assert shared_identifiers(scan(tmp_path / "dicom"), parts) == []


def test_no_dicom_means_no_identifier_findings(planted):
    assert planted[0].shared_identifiers == []


def test_similarity_of_a_pair_is_symmetric_under_order(planted):
    report, _, _ = planted
    assert all(p.a < p.b for p in report.near_duplicates)
    assert len({(p.a, p.b) for p in report.near_duplicates}) == len(report.near_duplicates)
    assert np.all([0 < p.similarity <= 1 for p in report.near_duplicates])


def _stack(t: np.ndarray) -> np.ndarray:
    """A thumbnail as ``thumbnails`` stacks it: (2, 1, side, side), [as is, mirrored], no zoom."""
    t = t - t.mean()
    t = t / np.linalg.norm(t)
    return np.stack([t[None], t[None, :, ::-1]])


def test_pixels_must_confirm_an_embedding_match():
    from tl_desktop.core.data.scan import Sample
    from tl_desktop.core.insight.audit import PIXEL_THRESHOLD, near_duplicates, pixel_similarity

    samples = [Sample(f"c/{n}.png", "c", f"sha{n}", 64, 64) for n in range(3)]
    vectors = np.tile(np.eye(4, dtype=np.float32)[0], (3, 1))  # three equal embeddings
    rng = np.random.default_rng(0)
    base = rng.normal(size=(24, 24)).astype(np.float32)
    thumbs = np.stack([_stack(base), _stack(base[:, ::-1]), _stack(rng.normal(size=(24, 24)).astype(np.float32))])
    assert pixel_similarity(thumbs[0], thumbs[1]) == pytest.approx(1.0, abs=1e-5)  # a mirror image
    assert abs(pixel_similarity(thumbs[0], thumbs[2])) < 0.5
    unconfirmed = near_duplicates(samples, vectors, vectors)
    assert len(unconfirmed) == 3 and all(p.pixel_similarity is None for p in unconfirmed)
    confirmed = near_duplicates(samples, vectors, vectors, confirm=lambda idx: thumbs[idx])
    assert [(p.a, p.b) for p in confirmed] == [("c/0.png", "c/1.png")]
    assert confirmed[0].pixel_similarity >= PIXEL_THRESHOLD


def test_thumbnails_are_two_dimensional_and_line_up_crops(home, tmp_path):
    """Same row profile, different picture: not confirmed; an 8 % centre crop of a photo: confirmed."""
    from tl_desktop.core.insight.audit import PIXEL_THRESHOLD, pixel_similarity, thumbnails

    rng = np.random.default_rng(1)
    blocks = rng.uniform(0, 255, (12, 12))
    shuffled = np.stack([rng.permutation(row) for row in blocks])  # each row's blocks in another order
    noisy, shuffled = (np.kron(b, np.ones((8, 8))).astype(np.uint8) for b in (blocks, shuffled))
    photo = _photo("chelsea", 128).convert("RGB")
    files = {"a.png": Image.fromarray(noisy), "b.png": Image.fromarray(shuffled), "photo.png": photo,
             "photo_crop8.png": _crop(photo, 0.08)}
    for name, im in files.items():
        im.convert("RGB").save(tmp_path / name)
    t = thumbnails([tmp_path / name for name in files])
    assert t.shape[:2] == (4, 2) and t.shape[-2:] == (24, 24)
    assert pixel_similarity(t[0], t[1]) < 0.5
    assert pixel_similarity(t[2], t[3]) >= PIXEL_THRESHOLD
    assert pixel_similarity(t[2], t[3]) > pixel_similarity(t[2, :, :1], t[3, :, :1])  # the zooms are what lines it up


def test_box_matrix_matches_pil_box_on_whole_ratios():
    from tl_desktop.core.insight.audit import _box_matrix

    grey = np.random.default_rng(0).uniform(0, 255, (96, 96)).astype(np.float32)
    box = _box_matrix(96, 24)
    expected = np.asarray(Image.fromarray(grey, mode="F").resize((24, 24), Image.Resampling.BOX))
    np.testing.assert_allclose(box @ grey @ box.T, expected, atol=1e-3)


def test_found_near_pairs_were_confirmed_by_the_pixels(planted):
    from tl_desktop.core.insight.audit import PIXEL_THRESHOLD

    near = [p for p in planted[0].near_duplicates if p.kind == "near"]
    assert near and all(p.pixel_similarity is not None and p.pixel_similarity >= PIXEL_THRESHOLD for p in near)


def test_probe_in_principal_components_on_large_sets_keeps_groups_and_finds_flipped_labels():
    """From PCA_FROM images the probe works in fold-fitted principal components; flipped labels still stand out
    and a group never straddles the held-out fold."""
    from tl_desktop.core.insight import label_issues as li

    rng = np.random.default_rng(0)
    n, classes = li.PCA_FROM, 3
    labels = np.arange(n) % classes
    centres = rng.normal(size=(classes, li.PCA_DIMS + 64))
    vectors = centres[labels] + rng.normal(scale=2.0, size=(n, li.PCA_DIMS + 64))
    flipped = rng.choice(n, 20, replace=False)
    given = labels.copy()
    given[flipped] = (labels[flipped] + 1) % classes
    groups = np.arange(n) // 2  # pairs of images: one patient each
    probs = li.out_of_fold_probabilities(vectors, given, 5, groups)
    assert np.isfinite(probs).all()
    own = probs[np.arange(n), given]
    assert set(np.argsort(own)[:20]) == set(flipped.tolist())
    for train, held in li._folds(given, groups, 5, 0):
        assert not set(groups[train]) & set(groups[held])


@pytest.mark.parametrize("shape", [(109, 109, 3), (109, 150, 3), (60, 120, 3)])
def test_grey_crop_is_the_evaluation_crop_in_grey(shape):
    import torch

    from tl_desktop.core.data.datasets import CentreCrop
    from tl_desktop.core.insight.audit import _centre_crop, _grey

    image = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    mirrored = np.ascontiguousarray(image[:, ::-1])
    expected = CentreCrop(96)(torch.from_numpy(image)).numpy().mean(axis=0)
    expected_mirrored = CentreCrop(96)(torch.from_numpy(mirrored)).numpy().mean(axis=0)
    np.testing.assert_allclose(_centre_crop(_grey(image), 96), expected, atol=1e-3)
    np.testing.assert_allclose(_centre_crop(_grey(image)[:, ::-1], 96), expected_mirrored, atol=1e-3)
