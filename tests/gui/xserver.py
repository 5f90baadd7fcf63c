"""A private Xvfb and a small X11 client (libxcb through ctypes) for tests of the real window.

libxcb comes with Qt's xcb libraries, so no X tools (xdotool, xwininfo, ImageMagick) are needed:
the client lists top-level windows with their titles, reads their geometry, grabs the screen
and asks a window to close the way a window manager does (WM_DELETE_WINDOW).
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import subprocess
import time
from ctypes import (
    POINTER,
    Structure,
    c_char_p,
    c_int,
    c_int16,
    c_uint8,
    c_uint16,
    c_uint32,
    c_void_p,
)
from dataclasses import dataclass
from pathlib import Path

XVFB_START_TIMEOUT = 10.0
VIEWABLE = 2  # map_state of a window that is mapped and whose parents are too
ANY_PROPERTY_TYPE = 0
Z_PIXMAP = 2
CLIENT_MESSAGE = 33


class _Cookie(Structure):
    _fields_ = [("sequence", ctypes.c_uint)]


class _Screen(Structure):
    _fields_ = [
        ("root", c_uint32),
        ("default_colormap", c_uint32),
        ("white_pixel", c_uint32),
        ("black_pixel", c_uint32),
        ("current_input_masks", c_uint32),
        ("width_in_pixels", c_uint16),
        ("height_in_pixels", c_uint16),
        ("width_in_millimeters", c_uint16),
        ("height_in_millimeters", c_uint16),
        ("min_installed_maps", c_uint16),
        ("max_installed_maps", c_uint16),
        ("root_visual", c_uint32),
        ("backing_stores", c_uint8),
        ("save_unders", c_uint8),
        ("root_depth", c_uint8),
        ("allowed_depths_len", c_uint8),
    ]


class _ScreenIterator(Structure):
    _fields_ = [("data", POINTER(_Screen)), ("rem", c_int), ("index", c_int)]


class _AtomReply(Structure):
    _fields_ = [
        ("response_type", c_uint8),
        ("pad0", c_uint8),
        ("sequence", c_uint16),
        ("length", c_uint32),
        ("atom", c_uint32),
    ]


class _AttributesReply(Structure):
    _fields_ = [
        ("response_type", c_uint8),
        ("backing_store", c_uint8),
        ("sequence", c_uint16),
        ("length", c_uint32),
        ("visual", c_uint32),
        ("window_class", c_uint16),
        ("bit_gravity", c_uint8),
        ("win_gravity", c_uint8),
        ("backing_planes", c_uint32),
        ("backing_pixel", c_uint32),
        ("save_under", c_uint8),
        ("map_is_installed", c_uint8),
        ("map_state", c_uint8),
        ("override_redirect", c_uint8),
    ]


class _GeometryReply(Structure):
    _fields_ = [
        ("response_type", c_uint8),
        ("depth", c_uint8),
        ("sequence", c_uint16),
        ("length", c_uint32),
        ("root", c_uint32),
        ("x", c_int16),
        ("y", c_int16),
        ("width", c_uint16),
        ("height", c_uint16),
        ("border_width", c_uint16),
    ]


class _ClientMessage(Structure):
    _fields_ = [
        ("response_type", c_uint8),
        ("format", c_uint8),
        ("sequence", c_uint16),
        ("window", c_uint32),
        ("type", c_uint32),
        ("data", c_uint32 * 5),
    ]


def _library() -> ctypes.CDLL:
    xcb = ctypes.CDLL("libxcb.so.1")
    signatures = {
        "xcb_connect": ([c_char_p, POINTER(c_int)], c_void_p),
        "xcb_connection_has_error": ([c_void_p], c_int),
        "xcb_disconnect": ([c_void_p], None),
        "xcb_flush": ([c_void_p], c_int),
        "xcb_get_setup": ([c_void_p], c_void_p),
        "xcb_setup_roots_iterator": ([c_void_p], _ScreenIterator),
        "xcb_intern_atom": ([c_void_p, c_uint8, c_uint16, c_char_p], _Cookie),
        "xcb_intern_atom_reply": ([c_void_p, _Cookie, c_void_p], POINTER(_AtomReply)),
        "xcb_query_tree": ([c_void_p, c_uint32], _Cookie),
        "xcb_query_tree_reply": ([c_void_p, _Cookie, c_void_p], c_void_p),
        "xcb_query_tree_children": ([c_void_p], POINTER(c_uint32)),
        "xcb_query_tree_children_length": ([c_void_p], c_int),
        "xcb_get_property": (
            [c_void_p, c_uint8, c_uint32, c_uint32, c_uint32, c_uint32, c_uint32],
            _Cookie,
        ),
        "xcb_get_property_reply": ([c_void_p, _Cookie, c_void_p], c_void_p),
        "xcb_get_property_value": ([c_void_p], c_void_p),
        "xcb_get_property_value_length": ([c_void_p], c_int),
        "xcb_get_window_attributes": ([c_void_p, c_uint32], _Cookie),
        "xcb_get_window_attributes_reply": (
            [c_void_p, _Cookie, c_void_p],
            POINTER(_AttributesReply),
        ),
        "xcb_get_geometry": ([c_void_p, c_uint32], _Cookie),
        "xcb_get_geometry_reply": ([c_void_p, _Cookie, c_void_p], POINTER(_GeometryReply)),
        "xcb_get_image": (
            [c_void_p, c_uint8, c_uint32, c_int16, c_int16, c_uint16, c_uint16, c_uint32],
            _Cookie,
        ),
        "xcb_get_image_reply": ([c_void_p, _Cookie, c_void_p], c_void_p),
        "xcb_get_image_data": ([c_void_p], c_void_p),
        "xcb_get_image_data_length": ([c_void_p], c_int),
        "xcb_send_event": ([c_void_p, c_uint8, c_uint32, c_uint32, c_void_p], _Cookie),
    }
    for name, (arguments, result) in signatures.items():
        function = getattr(xcb, name)
        function.argtypes, function.restype = arguments, result
    return xcb


_libc = ctypes.CDLL(None)
_libc.free.argtypes = [c_void_p]


@dataclass(frozen=True)
class Window:
    id: int
    title: str
    x: int
    y: int
    width: int
    height: int


class Display:
    """A connection to one X server: windows, their titles and pixels, and closing them."""

    def __init__(self, name: str) -> None:
        self.xcb = _library()
        self.connection = self.xcb.xcb_connect(name.encode(), None)
        if self.xcb.xcb_connection_has_error(self.connection):
            self.xcb.xcb_disconnect(self.connection)
            raise ConnectionError(f"cannot connect to X display {name}")
        screens = self.xcb.xcb_setup_roots_iterator(self.xcb.xcb_get_setup(self.connection))
        screen = screens.data.contents
        self.root = screen.root
        self.size = (screen.width_in_pixels, screen.height_in_pixels)

    def close(self) -> None:
        self.xcb.xcb_disconnect(self.connection)

    def _reply(self, name: str, *arguments):
        """Send request `name` and wait for its reply (a pointer the caller frees)."""
        cookie = getattr(self.xcb, name)(self.connection, *arguments)
        reply = getattr(self.xcb, f"{name}_reply")(self.connection, cookie, None)
        if not reply:
            raise LookupError(f"{name}{arguments} got no reply (the window may be gone)")
        return reply

    def atom(self, name: str) -> int:
        reply = self._reply("xcb_intern_atom", 0, len(name), name.encode())
        try:
            return reply.contents.atom
        finally:
            _libc.free(reply)

    def _children(self) -> list[int]:
        reply = self._reply("xcb_query_tree", self.root)
        try:
            count = self.xcb.xcb_query_tree_children_length(reply)
            return list(self.xcb.xcb_query_tree_children(reply)[:count])
        finally:
            _libc.free(reply)

    def property(self, window: int, name: str) -> bytes:
        """A window property's raw value (b"" when it is not set)."""
        args = (0, window, self.atom(name), ANY_PROPERTY_TYPE, 0, 1024)
        reply = self._reply("xcb_get_property", *args)
        try:
            length = self.xcb.xcb_get_property_value_length(reply)
            return ctypes.string_at(self.xcb.xcb_get_property_value(reply), length)
        finally:
            _libc.free(reply)

    def _title(self, window: int) -> str:
        value = self.property(window, "_NET_WM_NAME") or self.property(window, "WM_NAME")
        return value.decode("utf-8", "replace")

    def wm_class(self, window: int) -> tuple[str, ...]:
        """WM_CLASS: (instance, class); docks match the class to StartupWMClass."""
        return tuple(part.decode() for part in self.property(window, "WM_CLASS").split(b"\0")[:2])

    def _viewable(self, window: int) -> bool:
        reply = self._reply("xcb_get_window_attributes", window)
        try:
            return reply.contents.map_state == VIEWABLE
        finally:
            _libc.free(reply)

    def _geometry(self, window: int) -> tuple[int, int, int, int]:
        reply = self._reply("xcb_get_geometry", window)
        try:
            g = reply.contents
            return g.x, g.y, g.width, g.height
        finally:
            _libc.free(reply)

    def windows(self) -> list[Window]:
        """The top-level windows on screen (mapped), with their titles and geometry."""
        shown = []
        for window in self._children():
            try:
                if self._viewable(window):
                    shown.append(Window(window, self._title(window), *self._geometry(window)))
            except LookupError:
                continue  # closed while we looked
        return shown

    def grab(self, x: int = 0, y: int = 0, width: int = 0, height: int = 0) -> tuple[bytes, int]:
        """The screen's pixels in a rectangle (the whole screen by default) as 32-bit BGRX rows;
        returns the bytes and the width."""
        width, height = width or self.size[0], height or self.size[1]
        reply = self._reply("xcb_get_image", Z_PIXMAP, self.root, x, y, width, height, 0xFFFFFFFF)
        try:
            length = self.xcb.xcb_get_image_data_length(reply)
            return ctypes.string_at(self.xcb.xcb_get_image_data(reply), length), width
        finally:
            _libc.free(reply)

    def ask_to_close(self, window: int) -> None:
        """What a window manager's close button sends: WM_PROTOCOLS / WM_DELETE_WINDOW."""
        event = _ClientMessage(CLIENT_MESSAGE, 32, 0, window, self.atom("WM_PROTOCOLS"))
        event.data[0] = self.atom("WM_DELETE_WINDOW")
        self.xcb.xcb_send_event(self.connection, 0, window, 0, ctypes.byref(event))
        self.xcb.xcb_flush(self.connection)


class Xvfb:
    """A private X server on a free display number (`Xvfb -displayfd`), stopped on exit."""

    def __init__(self, workdir: Path, width: int = 1280, height: int = 800) -> None:
        self.workdir = workdir
        self.screen = f"{width}x{height}x24"
        self.process: subprocess.Popen[bytes] | None = None
        self.name = ""

    @staticmethod
    def available() -> bool:
        return shutil.which("Xvfb") is not None

    def start(self) -> Xvfb:
        reader, writer = os.pipe()
        command = ["Xvfb", "-displayfd", str(writer), "-screen", "0", self.screen]
        log = (self.workdir / "xvfb.log").open("wb")
        try:
            self.process = subprocess.Popen(
                [*command, "-nolisten", "tcp"],
                pass_fds=(writer,),
                stdout=log,
                stderr=log,
            )
        finally:
            os.close(writer)
            log.close()
        try:
            self.name = f":{self._read_display(reader)}"
        finally:
            os.close(reader)
        return self

    def _read_display(self, reader: int) -> str:
        """Xvfb writes its display number to the fd once it accepts connections."""
        deadline = time.monotonic() + XVFB_START_TIMEOUT
        number = b""
        while not number.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([reader], [], [], left)[0]:
                self.stop()
                raise TimeoutError(f"Xvfb did not start: see {self.workdir / 'xvfb.log'}")
            chunk = os.read(reader, 16)
            if not chunk:
                self.stop()
                raise RuntimeError(f"Xvfb exited: see {self.workdir / 'xvfb.log'}")
            number += chunk
        return number.decode().strip()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Xvfb:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
