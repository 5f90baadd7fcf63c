#!/usr/bin/env bash
# Builds the frozen one-folder app DIST/favdesk (default: dist/favdesk) from favdesk's wheel,
# never from the checkout: the wheel (built here unless --wheel gives one) goes into a throwaway
# build venv with PyInstaller, pinned by requirements.lock, and PyInstaller runs outside the
# checkout on packaging/favdesk.spec. Needs `scripts/system-deps.sh --freeze` (objdump, libpython).
# Usage: packaging/build-frozen.sh [--wheel WHEEL] [--dist DIST]    PYTHON picks the interpreter.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
dist=$REPO/dist
wheel=""
while [ $# -gt 0 ]; do
  case "$1" in
    --wheel) wheel=$(realpath "$2"); shift 2 ;;
    --dist) dist=$(realpath -m "$2"); shift 2 ;;
    *) echo "usage: $0 [--wheel WHEEL] [--dist DIST]" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d -t favdesk-freeze.XXXXXX)
trap 'rm -rf "$work"' EXIT
pip() { "$work/venv/bin/python" -m pip --disable-pip-version-check "$@"; }

"$PYTHON" -m venv "$work/venv"
mkdir -p "$dist"
if [ -z "$wheel" ]; then
  pip wheel -q --no-deps -w "$dist" "$REPO"
  wheel=$(ls -t "$dist"/favdesk-*.whl | head -n 1)
fi
echo "build-frozen: freezing $wheel"
pip install -q -c "$REPO/requirements.lock" "$wheel[freeze]"
rm -rf "$dist/favdesk"
cd "$work"  # from the checkout, PyInstaller would freeze ./favdesk instead of the wheel's
"$work/venv/bin/pyinstaller" --noconfirm --log-level WARN \
  --distpath "$dist" --workpath "$work/build" "$REPO/packaging/favdesk.spec"
echo "build-frozen: $dist/favdesk/favdesk ($(du -sh "$dist/favdesk" | cut -f1))"
