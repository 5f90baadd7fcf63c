"""A `BROWSER` command for tests: headless Chromium opens the login URL, follows the Spotify
stand-in's redirect to favdesk's loopback page, and saves that page's DOM.

Run as `python -m tests.support.chromium_browser %s`; the DOM goes to $FAVDESK_TEST_BROWSER_DOM.
Chromium runs headless as root (no sandbox), with a throwaway profile, nothing in the
background, away from the tests' D-Bus session and keyring, and every host name unresolvable:
only loopback addresses are reached.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
#: How long Chromium may take: favdesk holds the callback until the link is done.
LOAD_SECONDS = 60


def command(url: str, profile: str) -> list[str]:
    return [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--password-store=basic",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={profile}",
        "--dump-dom",
        url,
    ]


def main(argv: list[str]) -> int:
    """Load `argv[1]`, save the final DOM (and Chromium's stderr beside it); always exit 0."""
    target = Path(os.environ["FAVDESK_TEST_BROWSER_DOM"])
    profile = tempfile.mkdtemp(prefix="favdesk-chromium-")
    try:
        done = subprocess.run(
            command(argv[1], profile),
            capture_output=True,
            timeout=LOAD_SECONDS,
            check=False,
            env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"},  # not the tests' bus
        )
        target.with_suffix(".stderr").write_bytes(done.stderr)
        target.write_bytes(done.stdout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
