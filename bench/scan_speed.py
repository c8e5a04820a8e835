"""Scan speed: files/s for N small real PNGs (scikit-learn digits), cache off, cold cache and warm cache.

    .venv/bin/python bench/scan_speed.py [--files 10000] [--size 64]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tl-scan-"))
    os.environ["TL_DESKTOP_HOME"] = str(tmp / "home")
    try:
        from tests.helpers import write_digits_folder
        from tl_desktop.core.data.scan import scan

        src = write_digits_folder(tmp / "src", classes=(0, 1), per_class=150, size=args.size)
        root = tmp / "many"
        per_class = args.files // 2
        for cls in ("digit_0", "digit_1"):
            (root / cls).mkdir(parents=True)
            pngs = sorted((src / cls).glob("*.png"))
            for i in range(per_class):  # distinct bytes: a trailing counter after IEND
                (root / cls / f"{i:05d}.png").write_bytes(pngs[i % len(pngs)].read_bytes() + i.to_bytes(4, "big"))
        for label, kwargs in (("cache off", {"cache": False}), ("cold cache", {}), ("warm cache", {})):
            start = time.perf_counter()
            report = scan(root, **kwargs)
            seconds = time.perf_counter() - start
            print(f"{label:>10}: {report.files_seen} files in {seconds:.2f} s = {report.files_seen / seconds:,.0f} files/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
