"""Hostile track data (very long names, right-to-left overrides, emoji, control characters,
markup, a lone surrogate) goes through a real import into the day's file unchanged."""

from __future__ import annotations

import copy
import json

import pytest

from favdesk.runtime import Runtime
from favdesk.sandbox import SpotifySandbox, follow_login
from favdesk.settings import load_settings
from favdesk.storage import BUCKET
from tests.test_ingest import Recorder, spotify_env

#: The imports run a real worker against the stand-in.
pytestmark = pytest.mark.slow

HOSTILE = {
    "very long": "Ω" * 60_000 + " end",
    "right to left": "\u202etxt.exe\u202c שלום عليكم \u200f(\u200e1\u200e)",
    "emoji": "👩🏽‍🚀 🏳️‍🌈 \U0001f600 e\u0301 \U0001f1ef\U0001f1f5",
    "control characters": "a\x00b\x07c\x1b[31mred\x1b[0m\r\nforged log line\t\x85\u2028\u2029\x7f",
    "markup": "<b>bold</b><img src=x onerror=alert(1)>&amp;</p>",
    "odd code points": "\ufeffbom \ufffe\uffff \U0010ffff \u00ad\u200b",
}


@pytest.fixture
def spotify(redis_url, monkeypatch):
    with SpotifySandbox(tracks=120, user_id="zoe", display_name="Zoë") as sandbox:
        for name, value in {**spotify_env(sandbox), "REDIS_URL": redis_url}.items():
            monkeypatch.setenv(name, value)
        yield sandbox


def make_hostile(sandbox: SpotifySandbox, names: dict[str, str]) -> None:
    """Give tracks at the top of the library (on the first and a later page) hostile names,
    in the track, its album and its artist."""
    items = sandbox.items()
    positions = [
        i for i, item in enumerate(items) if item["track"] and not item["track"]["is_local"]
    ]
    chosen = positions[: len(names) // 2] + positions[60 : 60 + len(names) - len(names) // 2]
    for at, text in zip(chosen, names.values(), strict=True):
        item = copy.deepcopy(items[at])
        track = item["track"]
        track["name"] = text
        track["album"]["name"] = text[::-1]
        track["artists"][0]["name"] = f"{text} & co"
        sandbox.library.replace_item(at, item)


def import_library(sandbox: SpotifySandbox) -> bytes:
    """Link, run the first import on this process's worker, and read the day's file."""
    recorder = Recorder()
    settings = load_settings()
    with Runtime(settings, listener=recorder) as runtime:
        runtime.link(open_browser=lambda url: follow_login(url).status_code == 200)
        _job, ok, error = recorder.wait_finished(timeout=60)
        assert ok, error
        (stored,) = runtime.files("zoe")
    return (settings.storage_dir / BUCKET / stored.key).read_bytes()


def test_hostile_names_are_stored_byte_for_byte(spotify):
    make_hostile(spotify, HOSTILE)
    stored = import_library(spotify)
    served = spotify.items()
    assert json.loads(stored) == served
    assert stored == json.dumps(served, ensure_ascii=False, separators=(",", ":")).encode()
    for text in HOSTILE.values():  # as the stand-in served them: UTF-8, controls escaped
        assert json.dumps(text, ensure_ascii=False).encode() in stored


def test_a_lone_surrogate_in_a_name_does_not_break_the_import(spotify):
    """Half an emoji (`\\ud83d`, valid JSON but not valid Unicode) cannot be written as UTF-8:
    favdesk keeps it as the JSON escape Spotify sent, and every other name as it was."""
    make_hostile(spotify, {"half an emoji": "\ud83d cut", "whole": "\U0001f600 whole"})
    stored = import_library(spotify)
    assert json.loads(stored) == spotify.items()
    assert b'"\\ud83d cut"' in stored
    assert "\U0001f600 whole".encode() in stored
