"""The login in a real browser: headless Chromium (Debian's package) follows the authorize URL
on the Spotify stand-in to favdesk's loopback page, which says the sync started."""

from __future__ import annotations

import shlex
import sys

import pytest

from favdesk.sandbox import SpotifySandbox
from tests.support.chromium_browser import CHROMIUM
from tests.test_ingest import spotify_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no {CHROMIUM}: install Debian's chromium (scripts/system-deps.sh --test)",
    ),
]

BROWSER = f"{shlex.quote(sys.executable)} -m tests.support.chromium_browser %s"


def test_chromium_follows_the_login_to_the_page_that_says_the_sync_started(
    redis_url, monkeypatch, tmp_path, favdesk_cli
):
    dom = tmp_path / "page.html"
    with SpotifySandbox(tracks=5, user_id="zoe", display_name="Zoë Listener") as spotify:
        for name, value in {
            **spotify_env(spotify),
            "REDIS_URL": redis_url,
            "BROWSER": BROWSER,
            "FAVDESK_TEST_BROWSER_DOM": str(dom),
        }.items():
            monkeypatch.setenv(name, value)
        result = favdesk_cli("link", "--timeout", "90")
        assert spotify.stats.authorize_requests == 1
    assert result.returncode == 0, result.stderr
    assert "Linked Zoë Listener (zoe)" in result.stdout
    page = dom.read_text(encoding="utf-8")
    stderr = dom.with_suffix(".stderr").read_text(errors="replace")
    assert "<h1>Spotify is linked</h1>" in page, stderr[-2000:]
    assert "Spotify is linked, sync started. You can close this tab." in page
