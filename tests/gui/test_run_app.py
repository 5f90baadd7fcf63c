"""`favdesk` with no command: the real process starts, opens its runtime and quits cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from favdesk.gui.single_instance import ask_running_instance, server_name
from favdesk.settings import load_settings

#: Builds and shows the window and the tray in a fresh interpreter, then says what it loaded.
FIRST_PAINT = """
import sys
from favdesk.gui.app import Desktop, application
from favdesk.settings import load_settings

app = application()
desktop = Desktop(load_settings(), opener=lambda settings, listener: sys.exit("not opened"))
desktop.window.show()
app.processEvents()
print(sorted({name.split(".")[0] for name in sys.modules} & {"redis", "rq"}))
desktop.close()
"""


@pytest.mark.slow
def test_the_app_starts_opens_its_runtime_and_quits_cleanly_on_sigterm(qtbot, redis_url, tmp_path):
    log = tmp_path / "favdesk.log"
    with log.open("w") as stderr:
        app = subprocess.Popen(
            [sys.executable, "-m", "favdesk"],
            env={**os.environ, "REDIS_URL": redis_url},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        qtbot.waitUntil(lambda: "favdesk is ready" in log.read_text(), timeout=30_000)
        assert ask_running_instance(server_name(load_settings().data_dir))
        app.send_signal(signal.SIGTERM)
        assert app.wait(timeout=30) == 0
    finally:
        app.kill()
        app.wait()
    text = log.read_text()
    assert "Traceback" not in text, text
    assert redis_url.split("?")[0].removeprefix("unix://") in text  # where, without secrets


def test_the_window_shows_before_redis_and_rq_are_loaded():
    """They load with the runtime, off the GUI thread: the first paint does not wait for them."""
    probe = subprocess.run(
        [sys.executable, "-c", FIRST_PAINT], capture_output=True, text=True, timeout=60
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"
