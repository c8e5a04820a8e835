"""Which scanned files are the same image: identical bytes or identical decoded pixels (``pixelhash``).

One union-find serves the scan (duplicates and label conflicts), the split (what must stay in one part) and
the leakage check (what crossed parts), so all three agree on what "the same image" means.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar


class ImageFile(Protocol):
    """What identity needs of a scanned file (``scan.Sample`` has it)."""

    path: str
    sha256: str
    pixel_sha256: str | None


T = TypeVar("T", bound=ImageFile)


def components(samples: Sequence[T], extra: Callable[[T], str | None] | None = None) -> list[list[T]]:
    """Samples linked by identical bytes, identical pixels or an equal ``extra`` key (e.g. the patient).

    Returns:
        Every sample in exactly one component; each sorted by path, components by their first path.
    """
    parent = list(range(len(samples)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, s in enumerate(samples):
        keys = (("bytes", s.sha256), ("pixels", s.pixel_sha256), ("extra", extra(s) if extra else None))
        for kind, value in keys:
            if value is not None:
                parent[find(i)] = find(first.setdefault((kind, value), i))
    members: dict[int, list[T]] = defaultdict(list)
    for i, s in enumerate(samples):
        members[find(i)].append(s)
    return sorted((sorted(c, key=lambda s: s.path) for c in members.values()), key=lambda c: c[0].path)


def identical_images(samples: Sequence[T]) -> list[list[T]]:
    """Groups of two or more files that hold the same image (same bytes or same pixels)."""
    return [c for c in components(samples) if len(c) > 1]


def by_pixels_only(group: Sequence[ImageFile]) -> bool:
    """True when a group of identical images is not all one file's bytes: only the pixels showed it."""
    return len({s.sha256 for s in group}) > 1
