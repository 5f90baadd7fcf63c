"""Whether a local process still runs: how favdesk tells a live peer from one that died."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """Whether a local process exists; on Windows `os.kill` would terminate it, so assume yes."""
    if os.name != "posix" or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
