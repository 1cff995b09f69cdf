"""Worker processes end with their parent.

A pool worker is told by the kernel to die when its parent does (Linux `PR_SET_PDEATHSIG`), even when the
parent is killed outright (SIGKILL), so no orphan goes on parsing or writing after a killed `plate` or
`batch` and races the run that resumes it. Without it, forked pool workers of a killed parent wait for
work forever: each holds the task pipe's write end itself, so none ever sees it close.
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Pool initializer (pass `initargs=(os.getpid(),)`): die by SIGKILL when process `parent` ends.

    The parent may end before the request takes effect; the worker then already has another parent
    (init, or a container's sub-reaper: not always pid 1), so that is checked against the pid given."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)
