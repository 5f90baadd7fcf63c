"""Desktop entry, AppStream metadata, icons, the frozen app's spec and the worker's systemd unit
agree on one app id and the wheel's entry points, and pass their validators where installed."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from favdesk import APP_ID
from favdesk.cli import HANDLERS
from favdesk.gui.icons import APP_ICON, TRAY_ICONS, icon, resource_path
from favdesk.queue import IMPORT_FUNC

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
DESKTOP = PACKAGING / f"{APP_ID}.desktop"
METAINFO = PACKAGING / f"{APP_ID}.metainfo.xml"
SPEC = PACKAGING / "favdesk.spec"
WORKER_UNIT = PACKAGING / "favdesk-worker.service"


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def unit_section(path: Path, name: str) -> configparser.SectionProxy:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str
    unit.read(path)
    return unit[name]


def test_desktop_entry_launches_the_gui_script_with_the_app_icon():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(DESKTOP)
    section = entry["Desktop Entry"]
    assert section["Exec"] in pyproject()["gui-scripts"]
    assert section["Icon"] == APP_ID
    assert section["Type"] == "Application"


def test_metainfo_names_the_same_app_and_desktop_file():
    root = ET.parse(METAINFO).getroot()
    assert root.findtext("id") == APP_ID
    assert root.findtext("launchable") == DESKTOP.name


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstreamcli is not installed")
def test_metainfo_passes_appstream_validation():
    result = subprocess.run(
        ["appstreamcli", "validate", "--no-net", str(METAINFO)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="not installed")
def test_desktop_entry_passes_desktop_file_validate():
    result = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_worker_unit_runs_the_console_script_where_pipx_puts_it():
    service = unit_section(WORKER_UNIT, "Service")
    command, *arguments = service["ExecStart"].split()
    assert command.startswith("%h/.local/bin/")
    assert Path(command).name in pyproject()["scripts"]
    assert arguments == ["worker"] and "worker" in HANDLERS
    assert service["EnvironmentFile"] == "%h/.config/favdesk/worker.env"


def test_worker_unit_stops_with_one_sigterm_and_time_to_finish_the_job():
    service = unit_section(WORKER_UNIT, "Service")
    assert service["KillSignal"] == "SIGTERM"
    assert service["KillMode"] == "mixed"  # the signal goes to favdesk, not its Redis
    assert int(service["TimeoutStopSec"].removesuffix("min")) >= 5  # imports of 50k songs
    assert service["Restart"] == "on-failure"


def test_frozen_spec_takes_the_app_id_the_resources_and_every_favdesk_module():
    spec = SPEC.read_text()
    assert "from favdesk import APP_ID" in spec
    assert '"favdesk/resources"' in spec  # where importlib.resources looks when frozen
    assert 'collect_submodules("favdesk")' in spec
    assert (PACKAGING / "favdesk-frozen.py").is_file()


def test_names_imported_by_string_are_favdesk_modules_the_spec_collects():
    """The CLI's handlers and RQ's job function are imported by name, unseen by PyInstaller."""
    dotted = [IMPORT_FUNC.rpartition(".")[0], *(h.partition(":")[0] for h in HANDLERS.values())]
    assert all(name.startswith("favdesk.") for name in dotted)


@pytest.mark.parametrize("name", [APP_ICON, *TRAY_ICONS.values()])
def test_every_icon_renders(qtbot, name):
    pixmap = icon(name).pixmap(64, 64)
    assert not pixmap.isNull()
    assert pixmap.toImage().pixelColor(32, 40).alpha() > 0  # the heart covers the middle


def test_resource_names_cannot_leave_the_resources_folder():
    with pytest.raises(ValueError):
        resource_path("../pyproject.toml")
