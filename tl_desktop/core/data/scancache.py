"""Examine many files in parallel, with a SQLite cache of per-file results.

The cache is keyed by absolute path, size, mtime_ns and pixel limit.

Only what the scan derives from the bytes is stored (SHA-256 of the bytes and of the decoded pixels, width,
height, or the reason the file is unusable); never DICOM element values. SQLite writes are transactional, so a crash leaves the old cache or
the new one. A cache that cannot be opened or is corrupt is deleted and rebuilt, or ignored: the scan never
fails because of it.
"""

from __future__ import annotations

import itertools
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from tl_desktop.core.data.decode import inspect_file, is_candidate
from tl_desktop.core.errors import ImageDecodeError
from tl_desktop.core.events import CancelToken

log = logging.getLogger(__name__)

# Bump when the decoding or checking rules change, so old verdicts are not reused.
SCHEMA = "scan_v3"  # v3: pixel digests; v2: real JPEG sizes (v1 stored the 1/8 draft size), paths as bytes
CACHE_NAME = "scan-cache.sqlite3"


@dataclass(frozen=True)
class CachedResult:
    sha256: str | None
    width: int
    height: int
    error: str | None
    pixel_sha256: str | None = None


Key = tuple[str, int, int, int]  # absolute path, size, mtime_ns, max_pixels


class ScanCache:
    """Read everything needed up front, write all new results in one transaction at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        try:
            self._conn = self._connect()
        except sqlite3.DatabaseError as exc:
            log.warning("scan cache %s is unusable (%s); rebuilding it", path, exc)
            self._rebuild()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=10)
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA} (path BLOB NOT NULL, size INTEGER NOT NULL, "
            "mtime_ns INTEGER NOT NULL, max_pixels INTEGER NOT NULL, sha256 TEXT, width INTEGER, "
            "height INTEGER, error TEXT, pixel_sha256 TEXT, PRIMARY KEY (path, size, mtime_ns, max_pixels))"
        )
        conn.commit()
        return conn

    def _rebuild(self) -> None:
        try:
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self._conn = self._connect()
        except (OSError, sqlite3.Error) as exc:
            log.warning("scan cache disabled: %s", exc)
            self._conn = None

    def get_many(self, keys: list[Key]) -> dict[Key, CachedResult]:
        """Cached results for those of ``keys`` that have one."""
        if self._conn is None or not keys:
            return {}
        wanted = set(keys)
        found: dict[Key, CachedResult] = {}
        try:
            paths = sorted({os.fsencode(k[0]) for k in keys})  # any file name, even one not valid UTF-8
            for start in range(0, len(paths), 500):
                chunk = paths[start: start + 500]
                rows = self._conn.execute(
                    f"SELECT path, size, mtime_ns, max_pixels, sha256, width, height, error, pixel_sha256 FROM {SCHEMA} "
                    f"WHERE path IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                for row in rows:
                    key = (os.fsdecode(row[0]), int(row[1]), int(row[2]), int(row[3]))
                    if key in wanted:
                        found[key] = CachedResult(row[4], int(row[5] or 0), int(row[6] or 0), row[7], row[8])
        except sqlite3.Error as exc:
            log.warning("scan cache read failed: %s", exc)
            return {}
        return found

    def put_many(self, items: dict[Key, CachedResult]) -> None:
        """Store new results; older entries for the same paths (other size/mtime) are replaced."""
        if self._conn is None or not items:
            return
        try:
            with self._conn:
                self._conn.executemany(f"DELETE FROM {SCHEMA} WHERE path = ?", [(os.fsencode(k[0]),) for k in items])
                self._conn.executemany(
                    f"INSERT OR REPLACE INTO {SCHEMA} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(os.fsencode(k[0]), *k[1:], v.sha256, v.width, v.height, v.error, v.pixel_sha256)
                     for k, v in items.items()],
                )
        except sqlite3.Error as exc:
            log.warning("scan cache write failed: %s", exc)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ScanCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- examining many files ------------------------------------------------------------------------------

Progress = Callable[[int, int], None]


def _examine(path: Path, max_pixels: int, cancel: CancelToken | None) -> CachedResult | None:
    if cancel is not None and cancel.cancelled:
        return None
    try:
        if not is_candidate(path):
            suffix = path.suffix.lower() or "no extension"
            return CachedResult(None, 0, 0, f"not an image ({suffix})")
        info = inspect_file(path, max_pixels=max_pixels)
        return CachedResult(info.sha256, info.width, info.height, None, info.pixel_sha256)
    except ImageDecodeError as exc:
        return CachedResult(None, 0, 0, str(exc))
    except Exception as exc:  # noqa: BLE001 - a bad file must never stop the scan
        return CachedResult(None, 0, 0, f"unreadable ({type(exc).__name__})")


def _cache_key(path: Path, max_pixels: int) -> Key | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path.absolute()), st.st_size, st.st_mtime_ns, max_pixels)


def _cache_path() -> Path:
    from tl_desktop.paths import cache_dir

    return cache_dir() / CACHE_NAME


def examine_files(
    paths: dict[int, Path], *, max_pixels: int, progress: Progress | None = None,
    cancel: CancelToken | None = None, cache: bool = True,
) -> dict[int, CachedResult]:
    """Hash and check every file of ``paths`` (id -> path) in a thread pool, reusing cached results.

    Raises:
        Cancelled: when ``cancel`` is set; nothing is written to the cache then.
    """
    keys = {i: _cache_key(p, max_pixels) for i, p in paths.items()}
    store = ScanCache(_cache_path()) if cache else None
    try:
        hits = store.get_many([k for k in keys.values() if k]) if store else {}
        results = {i: hits[k] for i, k in keys.items() if k in hits}
        todo = {i: p for i, p in paths.items() if i not in results}
        fresh = _run_pool(todo, max_pixels, progress, cancel, len(paths), len(results))
        results.update(fresh)
        if store:
            store.put_many({k: r for i, r in fresh.items() if (k := keys[i]) is not None})
    finally:
        if store:
            store.close()
    return results


def _run_pool(
    todo: dict[int, Path], max_pixels: int, progress: Progress | None, cancel: CancelToken | None,
    total: int, done: int,
) -> dict[int, CachedResult]:
    results: dict[int, CachedResult] = {}
    if progress:
        progress(done, total)
    if not todo:
        return results
    last = time.monotonic()
    workers = min(32, (os.cpu_count() or 4) * 2, len(todo))
    queue = iter(todo.items())
    window = workers * 8  # files in flight: waiting on every pending future at once is quadratic
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tl-scan") as pool:
        futures: dict[Future, int] = {}

        def refill() -> None:
            for i, p in itertools.islice(queue, window - len(futures)):
                futures[pool.submit(_examine, p, max_pixels, cancel)] = i

        try:
            refill()
            while futures:
                finished, _ = wait(futures, timeout=0.1, return_when=FIRST_COMPLETED)
                if cancel is not None:
                    cancel.raise_if_cancelled()
                for f in finished:
                    if (r := f.result()) is not None:
                        results[futures[f]] = r
                    del futures[f]
                done += len(finished)
                refill()
                if progress and (time.monotonic() - last > 0.05 or not futures):
                    progress(done, total)
                    last = time.monotonic()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results
