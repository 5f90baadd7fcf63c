"""PyInstaller's QtNetwork hook without its plugins: favdesk uses QtNetwork only for the local
socket that brings up a running instance (no TLS, no network-information backends)."""

from PyInstaller.utils.hooks.qt import add_qt6_dependencies

hiddenimports, binaries, datas = add_qt6_dependencies(__file__)
binaries = [(src, dest) for src, dest in binaries if "/plugins/" not in src]
