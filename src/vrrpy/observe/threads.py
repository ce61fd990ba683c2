"""What the observability threads (``/metrics``, the control socket) share about themselves."""

from __future__ import annotations

import contextlib
import ctypes
import os
from typing import Final

__all__ = ["REAL_TIME_POLICIES", "is_real_time", "name_thread"]

REAL_TIME_POLICIES: Final = frozenset({os.SCHED_FIFO, os.SCHED_RR})
_PR_SET_NAME: Final = 15


def name_thread(name: str) -> None:
    """Give the calling thread ``name`` in the kernel too (``top -H``, ``/proc/*/task/*/comm``):
    Python's thread names stay inside Python before 3.14. Names are cut at 15 bytes."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


def is_real_time() -> bool:
    """Whether the calling thread runs under a real-time policy now."""
    try:
        return os.sched_getscheduler(0) in REAL_TIME_POLICIES
    except OSError:  # pragma: no cover - reading one's own policy always works
        return False
