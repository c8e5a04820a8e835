"""``tl-desktop cache``: how much the prepared-image cache holds, its limit, and clearing it."""

from __future__ import annotations

import argparse

from tl_desktop.commands import UsageError


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit-gb", type=float, metavar="GB",
                        help="keep the prepared images under this size (0.5-10000 GB; default 20)")
    parser.add_argument("--clear", action="store_true", help="delete every prepared image (they are made again "
                        "from the source files when needed)")


def run_cache(args: argparse.Namespace) -> int:
    from tl_desktop.core.data.prepared import PreparedCache, cache_limit_gb, set_cache_limit_gb

    cache = PreparedCache()
    if args.limit_gb is not None:
        if args.clear:
            raise UsageError("give --limit-gb or --clear, not both")
        set_cache_limit_gb(args.limit_gb)
        freed = cache.evict(set(), int(args.limit_gb * 1e9))
        print(f"prepared-image cache limit set to {args.limit_gb:g} GB" +
              (f"; {freed / 1e9:.2f} GB of least recently used images deleted" if freed else ""))
    elif args.clear:
        freed = cache.clear()
        print(f"prepared-image cache cleared: {freed / 1e9:.2f} GB deleted")
    items = cache.usage()
    print(f"prepared images: {len(items):,} files, {sum(s for _, s, _ in items) / 1e9:.2f} GB of "
          f"{cache_limit_gb():g} GB, in {cache.folder}")
    return 0
