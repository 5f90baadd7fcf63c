"""PyInstaller's QtGui hook without the Qt plugins a desktop widget app never loads.

Kept: the xcb, wayland, offscreen and minimal platforms, the SVG icon engine and image format,
input methods and the desktop portal theme. Dropped: embedded-device platforms and their EGL and
evdev helpers, bitmap formats favdesk has no files in, and the GTK3 theme (it alone would pull
GTK, GDK, cairo, pango and ATK into the folder).
"""

from PyInstaller.utils.hooks.qt import add_qt6_dependencies

UNUSED = (
    "/egldeviceintegrations/",
    "/generic/",
    "/platforms/libqeglfs.so",
    "/platforms/libqlinuxfb.so",
    "/platforms/libqminimalegl.so",
    "/platforms/libqvkkhrdisplay.so",
    "/platforms/libqvnc.so",
    "/platformthemes/libqgtk3.so",
    "/imageformats/libqicns.so",
    "/imageformats/libqjpeg.so",
    "/imageformats/libqtga.so",
    "/imageformats/libqtiff.so",
    "/imageformats/libqwbmp.so",
    "/imageformats/libqwebp.so",
)

hiddenimports, binaries, datas = add_qt6_dependencies(__file__)
binaries = [(src, dest) for src, dest in binaries if not any(part in src for part in UNUSED)]
