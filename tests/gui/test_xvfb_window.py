"""`python -m favdesk` on a real X server (a private Xvfb): the window appears, and the app quits
cleanly on SIGTERM or when its window is closed (plain Xvfb has no system tray).

Demo mode with fresh data and config dirs: the app starts its own Redis, which must be gone
when it exits. Screenshots of the real window go to artifacts/screenshots/.
"""

from __future__ import annotations

import configparser
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from favdesk import APP_ID
from tests.gui.conftest import SCREENSHOTS
from tests.gui.xserver import Display, Window, Xvfb

#: Each test starts a real X server (Xvfb) and the app on it.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Xvfb.available(), reason="Xvfb is not installed (scripts/system-deps.sh --test adds it)"
    ),
]

SCREEN = (2560, 1440)  # a common 2x screen: 1280 x 720 logical pixels at QT_SCALE_FACTOR=2
START_TIMEOUT = 30.0
READY_TITLE = "No Spotify account linked"
SETTLED_GRABS = 10  # equal grabs in a row, 50 ms apart: nothing changed for half a second


def wait_for(condition: Callable[[], object], what: str, timeout: float = START_TIMEOUT):
    """Poll `condition` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def redis_servers_under(folder: Path) -> list[int]:
    """Running redis-server processes whose working directory is inside `folder`.

    redis-server rewrites its command line, so it is found by name and by the folder it serves.
    """
    found = []
    for entry in Path("/proc").iterdir():
        try:
            is_redis = (entry / "comm").read_text().strip() == "redis-server"
            if is_redis and (entry / "cwd").resolve().is_relative_to(folder.resolve()):
                found.append(int(entry.name))
        except OSError:
            continue  # not a process, one that just ended, or one we may not inspect
    return found


class App:
    """One `python -m favdesk` process on the test's X server."""

    def __init__(self, display: Display, display_name: str, home: Path, **env: str) -> None:
        self.display = display
        self.data_dir = home / "data"
        self.config_dir = home / "config"
        self.log = home / "favdesk.log"
        environment = {
            **os.environ,
            "QT_QPA_PLATFORM": "xcb",
            "DISPLAY": display_name,
            "FAVDESK_DATA_DIR": str(self.data_dir),
            "FAVDESK_CONFIG_DIR": str(self.config_dir),
            **env,
        }
        environment.pop("WAYLAND_DISPLAY", None)
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "favdesk"], env=environment, stdout=log, stderr=log
            )

    def window(self, title_part: str) -> Window:
        """Wait until a window of this app whose title contains `title_part` is on screen."""

        def shown() -> Window | None:
            if self.process.poll() is not None:
                raise AssertionError(f"favdesk exited early:\n{self.log.read_text()}")
            found = [w for w in self.display.windows() if w.title.endswith("favdesk")]
            return next((w for w in found if title_part in w.title), None)

        return wait_for(shown, f"a favdesk window titled ...{title_part}...")

    def exit_code(self) -> int:
        return self.process.wait(timeout=START_TIMEOUT)

    def stop(self) -> None:
        """After a failed test: end the app, then any redis-server it left behind."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=START_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in redis_servers_under(self.data_dir):
            os.kill(pid, signal.SIGTERM)


@pytest.fixture(scope="module")
def xserver(tmp_path_factory):
    with Xvfb(tmp_path_factory.mktemp("xvfb"), *SCREEN) as server:
        display = Display(server.name)
        yield server.name, display
        display.close()


@pytest.fixture
def launch(xserver, tmp_path):
    name, display = xserver
    started: list[App] = []

    def start(**env: str) -> App:
        app = App(display, name, tmp_path, **env)
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()


def save_screenshot(display: Display, window: Window, name: str) -> QImage:
    """The window's pixels once they stop changing (startup has settled), saved as a PNG."""
    rect = (window.x, window.y, window.width, window.height)
    grabs = [display.grab(*rect)[0]]

    def settled() -> bool:
        grabs.append(display.grab(*rect)[0])
        return len(grabs) > SETTLED_GRABS and len(set(grabs[-SETTLED_GRABS:])) == 1

    wait_for(settled, "the window to stop changing", timeout=10)
    image = QImage(grabs[-1], window.width, window.height, QImage.Format.Format_RGB32).copy()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert image.save(str(SCREENSHOTS / name)), name
    return image


def colours(image: QImage) -> int:
    """How many colours a sample of the image has (a blank window has one or two)."""
    step = 7
    columns, rows = range(0, image.width(), step), range(0, image.height(), step)
    return len({image.pixel(x, y) for x in columns for y in rows})


def startup_wm_class() -> str:
    """The window class the desktop entry promises (docks group windows by it)."""
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(Path(__file__).resolve().parents[2] / "packaging" / f"{APP_ID}.desktop")
    return entry["Desktop Entry"]["StartupWMClass"]


def assert_exited_cleanly(app: App) -> None:
    assert app.exit_code() == 0, app.log.read_text()
    text = app.log.read_text()
    assert "Traceback" not in text, text
    assert "favdesk is ready" in text
    assert redis_servers_under(app.data_dir) == [], "the embedded redis-server was left running"
    assert (app.config_dir / "window.ini").is_file(), "the window's geometry is saved at exit"


def test_the_window_appears_on_a_real_x_server_and_sigterm_quits_cleanly(launch):
    app = launch()
    window = app.window(READY_TITLE)
    assert redis_servers_under(app.data_dir), "demo mode runs its own redis-server"
    assert app.display.wm_class(window.id) == ("favdesk", startup_wm_class())
    image = save_screenshot(app.display, window, "xvfb-window.png")
    assert colours(image) > 20, "the window painted its dashboard"
    app.process.send_signal(signal.SIGTERM)
    assert_exited_cleanly(app)


def test_with_no_system_tray_closing_the_window_quits_the_app(launch):
    app = launch()
    window = app.window(READY_TITLE)
    app.display.ask_to_close(window.id)  # what the window manager's close button sends
    assert_exited_cleanly(app)
    assert not [w for w in app.display.windows() if w.id == window.id]


def test_at_twice_the_scale_the_window_fits_a_1280_by_720_screen(launch):
    app = launch(QT_SCALE_FACTOR="2")
    window = app.window(READY_TITLE)
    width, height = SCREEN
    assert window.x >= 0 and window.y >= 0
    assert window.x + window.width <= width and window.y + window.height <= height, window
    assert window.width >= 1280, "scaled: wider than the 1x window could be"
    save_screenshot(app.display, window, "xvfb-window-2x.png")
    app.display.ask_to_close(window.id)
    assert_exited_cleanly(app)
