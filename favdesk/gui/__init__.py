"""The desktop app: a thin Qt shell that renders the core's state and turns clicks into calls."""

from favdesk.gui.refcounts import SINGLETONS_PROTECTED

__all__ = ["SINGLETONS_PROTECTED"]
