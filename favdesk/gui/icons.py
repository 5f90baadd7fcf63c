"""Icons from favdesk's resources: inside the package when installed, `resources/` in a checkout."""

from __future__ import annotations

import posixpath
from functools import cache
from importlib import resources
from pathlib import Path

from PySide6.QtGui import QIcon

#: The tray icon for each look; `describe.tray_look` picks the look from the app's state.
TRAY_ICONS = {
    "idle": "tray-idle.svg",
    "syncing": "tray-syncing.svg",
    "paused": "tray-paused.svg",
    "error": "tray-error.svg",
}
APP_ICON = "favdesk.svg"
CHECKOUT_RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def resource_path(name: str) -> Path:
    """The file `name` from the installed package's resources, else from the checkout."""
    if posixpath.pardir in name.split(posixpath.sep):
        raise ValueError(f"resource names stay inside the resources folder: {name!r}")
    installed = resources.files("favdesk").joinpath("resources", name)
    if installed.is_file():
        return Path(str(installed))
    return CHECKOUT_RESOURCES / name


@cache
def icon(name: str) -> QIcon:
    """A scalable icon (SVG): sharp at any device pixel ratio."""
    path = resource_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"favdesk resource missing: {path}")
    return QIcon(str(path))


def app_icon() -> QIcon:
    return icon(APP_ICON)


def tray_icon(look: str) -> QIcon:
    return icon(TRAY_ICONS[look])
