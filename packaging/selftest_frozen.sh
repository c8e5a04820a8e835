#!/usr/bin/env bash
# `make selftest-frozen`: run the built app as a user would, with no network and no Python.
#   1. tl-desktop-cli --self-test: train, export, verify, predict on the bundled sample; must print PASS.
#   2. the window opens (offscreen) and the app quits: the GUI side of the bundle (Qt plugins, icons, style).
# Both run with a private TL_DESKTOP_HOME and, where `unshare` is permitted (root, as in CI), in namespaces with
# no network at all and with the machine's CUDA toolkit (/usr/local/cuda*) hidden, so that a hidden download or a
# library the bundle takes from the build machine fails here instead of on a lab PC.
set -euo pipefail
cd "$(dirname "$0")/.."
APP_DIR="${1:-dist/tl-desktop}"
CLI="$APP_DIR/tl-desktop-cli"
GUI="$APP_DIR/tl-desktop"
[[ -x "$CLI" && -x "$GUI" ]] || { echo "selftest-frozen: no build in $APP_DIR (run 'make package')"; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/home" "$WORK/empty"
export TL_DESKTOP_HOME="$WORK/home" QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 SELFTEST_EMPTY="$WORK/empty"
# Clear what could make the bundle lean on this machine's Python or libraries instead of its own files.
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV LD_LIBRARY_PATH

if unshare -m -n true 2>/dev/null; then
    echo "selftest-frozen: running without network and without /usr/local/cuda* (unshare -m -n)"
    isolated() {
        unshare -m -n bash -c 'for d in /usr/local/cuda /usr/local/cuda-*; do
                                   [[ -d "$d" ]] && mount --bind "$SELFTEST_EMPTY" "$d"; done; exec "$@"' bash "$@"
    }
elif unshare -n true 2>/dev/null; then
    echo "selftest-frozen: running without network (unshare -n)"
    isolated() { unshare -n "$@"; }
else
    echo "selftest-frozen: unshare not permitted here; running with the machine's network and libraries"
    isolated() { "$@"; }
fi

start=$(date +%s)
out="$(isolated "$CLI" --self-test 2>&1)" || { echo "$out"; echo "selftest-frozen: self-test exited non-zero"; exit 1; }
echo "$out"
[[ "$(tail -n 1 <<<"$out")" == PASS* ]] || { echo "selftest-frozen: no PASS line"; exit 1; }
echo "selftest-frozen: self-test took $(( $(date +%s) - start )) s"

start=$(date +%s)
probe="$(TL_DESKTOP_STARTUP_PROBE=1 isolated "$GUI" --offscreen 2>&1)" || { echo "$probe"; echo "selftest-frozen: GUI failed to start"; exit 1; }
grep -q "window shown" <<<"$probe" || { echo "$probe"; echo "selftest-frozen: the window did not open"; exit 1; }
echo "selftest-frozen: window opened and closed in $(( $(date +%s) - start )) s ($(grep 'window shown' <<<"$probe"))"
echo "selftest-frozen: bundle $(du -sh "$APP_DIR" | cut -f1) in $APP_DIR"
echo "selftest-frozen: 2 passed, 0 failed"
