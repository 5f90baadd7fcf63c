#!/usr/bin/env bash
# Runs the test suite: under a private D-Bus session with an unlocked gnome-keyring when the
# machine has them (so the real Secret Service is tested), plainly otherwise.
# Extra arguments go to pytest. Fails when no test ran.
set -uo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=offscreen PYTEST_QT_API=pyside6
export VENV=${VENV:-.venv}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -m 700 "$WORK/run"

if command -v dbus-run-session >/dev/null && command -v gnome-keyring-daemon >/dev/null; then
  XDG_DATA_HOME="$WORK/data" XDG_RUNTIME_DIR="$WORK/run" dbus-run-session -- bash -c \
    'printf favdesk-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null &&
     FAVDESK_REAL_KEYRING=1 exec "$VENV"/bin/python -m pytest "$@"' pytest "$@" 2> >(grep -v "fd limit" >&2)
  rc=$?
else
  "$VENV"/bin/python -m pytest "$@"
  rc=$?
fi
if [ $rc -eq 5 ]; then
  echo "run-tests: no tests were collected" >&2
  exit 1
fi
exit $rc
