"""Desktop entry, AppStream metadata and icons agree on one app id and are all present."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from favdesk import APP_ID
from favdesk.gui.icons import APP_ICON, TRAY_ICONS, icon, resource_path

REPO = Path(__file__).resolve().parents[2]
DESKTOP = REPO / "packaging" / f"{APP_ID}.desktop"
METAINFO = REPO / "packaging" / f"{APP_ID}.metainfo.xml"


def test_desktop_entry_launches_the_gui_script_with_the_app_icon():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(DESKTOP)
    section = entry["Desktop Entry"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["gui-scripts"]
    assert section["Exec"] in scripts
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


@pytest.mark.parametrize("name", [APP_ICON, *TRAY_ICONS.values()])
def test_every_icon_renders(qtbot, name):
    pixmap = icon(name).pixmap(64, 64)
    assert not pixmap.isNull()
    assert pixmap.toImage().pixelColor(32, 40).alpha() > 0  # the heart covers the middle


def test_resource_names_cannot_leave_the_resources_folder():
    with pytest.raises(ValueError):
        resource_path("../pyproject.toml")
