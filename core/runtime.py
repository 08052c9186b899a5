"""Process-wide tuning that makes CPU inference faster.

glibc hands every allocation above its mmap threshold straight back to the kernel on
free, so each forward pass page-faults its activation buffers in afresh. Raising the
thresholds lets freed buffers be reused: on the 2-core dev machine the digits CNN's
forward over its eval split went from ~12 ms to ~6.5 ms, and capturing every layer
(which keeps all buffers alive) from ~1.2x to ~1.05x a plain forward
(``python -m bench.bench_workbench --no-tune`` shows the difference).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 256 * 1024 * 1024


def tune_allocator() -> bool:
    """Raise glibc's mmap/trim thresholds; returns whether it applied (Linux/glibc only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = (libc.mallopt(_M_MMAP_THRESHOLD, THRESHOLD_BYTES) == 1
              and libc.mallopt(_M_TRIM_THRESHOLD, THRESHOLD_BYTES) == 1)
    except (OSError, AttributeError):
        return False
    log.info("glibc allocator thresholds raised: %s", ok)
    return ok


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies (Linux).

    A sandbox child (probe, trial run) that hangs in a framework call would otherwise
    outlive the compute process the watchdog ended, and the compute process would
    outlive an app killed from outside — spinning at 100 % CPU, found by a newcomer's
    test (issue #10). Elsewhere the parent's own timeouts still end them.
    """
    if not sys.platform.startswith("linux"):
        return
    import os
    import signal

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
