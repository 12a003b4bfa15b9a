"""One writer per run folder: an OS file lock that the binaries which write into WORKDIR hold.

`train`, `cluster`, `export` and `evaluate` call `hold(workdir, stage)` first. The lock is
`fcntl.flock` on WORKDIR/.xplore_tf.lock, held until the process exits: the kernel releases
it on any exit, `kill -9` included, so a stale file never blocks the next run. The file
names the holder (stage, PID, host, start time) for the one line a second writer gets.
(flock works across processes on one machine and on local disks; on network file systems
it depends on the server: two machines that both think they are the chief of one
multi-worker run are caught where the file system supports it.)
"""

from __future__ import annotations

import datetime
import fcntl
import os
import socket
from typing import IO

LOCK_FILE = ".xplore_tf.lock"
_HELD: dict[str, IO[str]] = {}  # real path of a workdir -> its open, locked file


class WorkdirBusyError(ValueError):
    """Another process writes into this workdir (one line naming it)."""


def hold(workdir: str, stage: str) -> None:
    """Takes `workdir`'s lock for this process (a no-op when it holds it already).

    Raises:
        WorkdirBusyError: another process holds it; the message names that process.
    """
    path = os.path.realpath(workdir)
    if path in _HELD:
        return
    os.makedirs(path, exist_ok=True)
    f = open(os.path.join(path, LOCK_FILE), "a+", encoding="utf-8")  # noqa: SIM115 - kept open
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise WorkdirBusyError(
            f"{workdir} is in use by {holder}: wait for it to finish (or stop it), or pass "
            "another --workdir"
        ) from None
    f.seek(0)
    f.truncate()
    since = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    f.write(f"xplore_tf.{stage} (PID {os.getpid()} on {socket.gethostname()}, since {since})\n")
    f.flush()
    _HELD[path] = f


def release(workdir: str) -> None:
    """Gives the lock back before the process ends (tests; the binaries simply exit)."""
    f = _HELD.pop(os.path.realpath(workdir), None)
    if f is not None:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()
