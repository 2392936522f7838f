"""Child processes of the local stack that never outlive their parent."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence

_PR_SET_PDEATHSIG = 1
_children: list[subprocess.Popen[bytes]] = []


def _die_with_parent() -> None:  # runs in the child, before exec
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    args: Sequence[str], env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.Popen[bytes]:
    """Start a child in its own process group that gets SIGTERM when this process dies.

    The kernel's parent-death signal fires when the forking *thread* ends, so it is armed only from the main
    thread; a child started from another thread relies on the atexit handler below."""
    in_main = threading.current_thread() is threading.main_thread()
    proc: subprocess.Popen[bytes] = subprocess.Popen(  # noqa: S603 - arguments are ours, not user input
        list(args),
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent if in_main else None,
        **kwargs,  # type: ignore[call-overload]
    )
    _children.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate a child's whole process group, then kill it if it does not go."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
    if proc in _children:
        _children.remove(proc)


@atexit.register
def _stop_all() -> None:
    for proc in list(_children):
        stop(proc, timeout=5)
