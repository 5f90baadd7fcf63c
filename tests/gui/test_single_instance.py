"""One favdesk per user: a second launch brings up the running window and exits."""

from __future__ import annotations

import subprocess
import sys

from favdesk.gui.single_instance import (
    LOCK_FILE,
    InstanceServer,
    ask_running_instance,
    lock_data_dir,
    server_name,
)
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


def test_a_second_server_leaves_the_name_of_a_live_one_alone(qtbot, tmp_path):
    name = server_name(tmp_path)
    running = InstanceServer(name)
    assert running.listen()
    second = InstanceServer(name)
    assert not second.listen()
    assert "another favdesk" in second.failure
    with qtbot.waitSignal(running.show_requested):
        assert ask_running_instance(name)
    running.close()


def test_the_data_dir_lock_is_held_once_and_a_crashed_holders_lock_is_taken_over(tmp_path):
    held = lock_data_dir(tmp_path)
    assert held is not None
    assert lock_data_dir(tmp_path) is None
    held.unlock()
    crash = (
        "import os, sys; from PySide6.QtCore import QLockFile; "
        "lock = QLockFile(sys.argv[1]); assert lock.tryLock(0); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", crash, str(tmp_path / LOCK_FILE)], check=True)
    assert (tmp_path / LOCK_FILE).exists()
    again = lock_data_dir(tmp_path)
    assert again is not None
    again.unlock()


def test_a_launch_while_a_silent_favdesk_holds_the_lock_exits_saying_so(favdesk_cli):
    settings = load_settings()
    held = lock_data_dir(settings.data_dir)  # running, but not (yet) answering on its socket
    try:
        result = favdesk_cli(timeout=30)
    finally:
        held.unlock()
    assert result.returncode != 0
    assert "already running" in result.stderr and "did not answer" in result.stderr
