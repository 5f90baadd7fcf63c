#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages favdesk needs: Qt's runtime libraries and Python's venv;
# with --test also Redis, a headless Secret Service, Xvfb, Chromium and the desktop-file/AppStream
# validators for the test suite; with --freeze what PyInstaller needs (objdump, and the shared
# libpython of Debian's own python3); with --installs all that scripts/check-installs.sh uses.
# Does nothing when everything is already there; uses sudo when not run as root.
set -euo pipefail

packages=(python3-venv libegl1 libgl1 libxkbcommon0 libfontconfig1 fonts-dejavu-core libglib2.0-0
  libdbus-1-3 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0
  libxcb-shape0 libxkbcommon-x11-0 xdg-utils)
freeze_packages() {
  packages+=(binutils)
  local python=${PYTHON:-python3} lib
  command -v "$python" >/dev/null || return 0
  lib=$("$python" -c 'import sysconfig as s; print(s.get_config_var("LIBDIR"), s.get_config_var("INSTSONAME"), sep="/")')
  # Debian's python3 is linked statically; PyInstaller bundles the shared library instead.
  [ -e "$lib" ] || packages+=("libpython$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')")
}
for option in "$@"; do
  case "$option" in
    --test) packages+=(redis-server dbus-daemon gnome-keyring xvfb xauth chromium desktop-file-utils appstream) ;;
    --freeze) freeze_packages ;;
    --installs)
      freeze_packages
      packages+=(redis-server xvfb xauth desktop-file-utils appstream systemd)
      ;;
    *) echo "system-deps: unknown option $option (use --test, --freeze or --installs)" >&2; exit 2 ;;
  esac
done

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "system-deps: not a Debian/Ubuntu system; install the equivalents of: ${packages[*]}" >&2
  exit 0
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
