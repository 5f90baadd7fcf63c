"""Started where there is no desktop, the app says so plainly instead of letting Qt abort."""

from __future__ import annotations

import os
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY is a Linux matter")
def test_app_without_a_display_says_what_to_do_and_exits_non_zero(favdesk_cli):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    result = favdesk_cli(env=env, timeout=60)
    assert result.returncode == 1
    assert "Aborted" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "favdesk: no desktop to show the window on (neither DISPLAY nor WAYLAND_DISPLAY is set): "
        "start favdesk from a desktop session, or use `favdesk-cli demo` and the other commands "
        "in a terminal (`favdesk-cli --help`)"
    )
