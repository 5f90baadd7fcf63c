"""One favdesk per user: a second launch brings up the running window and exits."""

from __future__ import annotations

import subprocess
import sys

from favdesk.gui.single_instance import InstanceServer, ask_running_instance, server_name
from favdesk.settings import load_settings


def test_a_second_launch_shows_the_running_window_and_exits(qtbot):
    settings = load_settings()
    server = InstanceServer(server_name(settings.data_dir))
    assert server.listen()
    second = subprocess.Popen(
        [sys.executable, "-m", "favdesk"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        with qtbot.waitSignal(server.show_requested, timeout=20_000):
            pass
        _out, err = second.communicate(timeout=20)
    finally:
        second.kill()
        server.close()
    assert second.returncode == 0
    assert "already running" in err


def test_nobody_answers_when_no_favdesk_runs(qtbot, tmp_path):
    assert ask_running_instance(server_name(tmp_path / "elsewhere")) is False


def test_a_socket_left_by_a_crashed_favdesk_is_taken_over(qtbot, tmp_path):
    name = server_name(tmp_path)
    crashed = InstanceServer(name)
    assert crashed.listen()
    crashed.server.close()  # the process died: nothing answers, the socket file may remain
    again = InstanceServer(name)
    assert again.listen()
    with qtbot.waitSignal(again.show_requested):
        assert ask_running_instance(name)
    again.close()


def test_each_data_dir_is_its_own_favdesk(tmp_path):
    assert server_name(tmp_path / "a") != server_name(tmp_path / "b")
    assert server_name(tmp_path / "a") == server_name(tmp_path / "a")
