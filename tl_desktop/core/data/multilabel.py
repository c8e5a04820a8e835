"""Several labels (findings) per image: counting them, and what a scan says about them.

A multi-label data set (a CSV whose label column holds ``a;b``, or one 0/1 column per label: ``listing``) gives
each sample ``findings``: the labels present, sorted (empty: no finding), and ``label``: those joined by ``;``
(so identical files with different findings are a label conflict, as in a single-label set). A single-label
sample has ``findings`` None. Everything here takes any object with ``label`` and ``findings`` attributes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from tl_desktop.core.data.listing import split_labels

TASKS = ("single-label", "multi-label")
NO_FINDING = "(no finding)"  # the stratum of images without any label when a multi-label set is split


def labels_of(sample: Any) -> tuple[str, ...]:
    """The labels a sample counts under: its findings (multi-label), else its one label."""
    findings = getattr(sample, "findings", None)
    return tuple(findings) if findings is not None else (sample.label,)


def is_multilabel(samples: Iterable[Any]) -> bool:
    return any(getattr(s, "findings", None) is not None for s in samples)


def count_labels(samples: Iterable[Any]) -> dict[str, int]:
    """Images per label (a multi-label image counts once under each of its labels), sorted by name."""
    return dict(sorted(Counter(label for s in samples for label in labels_of(s)).items()))


def strata_of(sample: Any) -> tuple[str, ...]:
    """What a split balances a sample under: its labels, or ``NO_FINDING`` for an image without any."""
    return labels_of(sample) or (NO_FINDING,)


def relabelled(sample: Any, new: str) -> dict[str, Any]:
    """The fields a review's relabelling changes: a multi-label sample takes ``new`` as ``a;b`` findings."""
    if getattr(sample, "findings", None) is None:
        return {"label": new}
    findings = split_labels(new)
    return {"label": ";".join(findings), "findings": list(findings)}


def summary(samples: Sequence[Any], classes: Sequence[str], source: str) -> dict[str, Any]:
    """What a multi-label scan reports: how the labels were read, images per label, images without a finding,
    labels per image, and how often each pair of labels occurs on one image (``co_occurrence[a][b]``)."""
    pairs: Counter = Counter()
    per_image: Counter = Counter()
    for s in samples:
        found = labels_of(s)
        per_image[len(found)] += 1
        pairs.update((a, b) for a in found for b in found if a != b)
    return {"source": source, "no_finding": per_image.get(0, 0),
            "labels_per_image": {str(k): v for k, v in sorted(per_image.items())},
            "co_occurrence": {a: {b: pairs[a, b] for b in classes if b != a and pairs[a, b]} for a in classes}}


def summary_lines(info: dict[str, Any], counts: dict[str, int], n_images: int) -> list[str]:
    """The scan report's sentences on a multi-label set: labels and frequencies, no finding, co-occurrence."""
    lines = [f"Multi-label: {len(counts)} finding{'s' if len(counts) != 1 else ''} read as {info['source']}; an "
             "image may show several or none."]
    share = ", ".join(f"{name} {n} ({n / max(n_images, 1):.0%})" for name, n in counts.items())
    lines.append(f"Images per finding: {share}.")
    none = info.get("no_finding", 0)
    lines.append(f"Images without any finding: {none} of {n_images} ({none / max(n_images, 1):.0%}).")
    several = sum(v for k, v in info.get("labels_per_image", {}).items() if int(k) >= 2)
    pairs = sorted(((n, a, b) for a, row in info.get("co_occurrence", {}).items() for b, n in row.items() if a < b),
                   reverse=True)
    if pairs:
        shown = "; ".join(f"{a} + {b}: {n}" for n, a, b in pairs[:5])
        lines.append(f"Images with two or more findings: {several}. Most frequent together: {shown}.")
    else:
        lines.append("No image shows two findings together.")
    return lines


__all__ = ["TASKS", "NO_FINDING", "labels_of", "is_multilabel", "count_labels", "strata_of", "relabelled",
           "summary", "summary_lines"]
