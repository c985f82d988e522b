"""One run directory, one writer: an exclusive lock file held for the whole run.

Re-running a command resumes in the same directory, so two identical commands started at once
would both write it (checkpoints with ``-v1`` duplicates, interleaved logs). The first run holds
``<run dir>/.lock`` with ``fcntl.flock``: the kernel drops the lock when the process ends, however
it ends (``kill -9`` included), so a stale file never blocks a later run. The file also records the
holder's PID, host and start time, for the message the second run prints.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import time
import weakref
from pathlib import Path
from typing import ClassVar

LOCK_NAME = ".lock"


class RunDirectoryInUse(RuntimeError):
    """Another process holds the run directory's lock."""


def _release(key: str) -> None:
    """Drop one reference to the lock on ``key``; the last one unlocks and closes the file."""
    held = RunLock.held.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] <= 0:
        del RunLock.held[key]
        os.close(held[0])  # closing the descriptor releases the flock


class RunLock:
    """Exclusive lock on a run directory, taken by :meth:`acquire`, dropped by :meth:`release`.

    Re-entrant within a process (a notebook may set up the same run twice); exclusive between
    processes, also across hosts where the shared filesystem supports ``flock`` (NFSv4, Lustre with
    ``flock`` mounted). Released when the object is garbage collected, and by the OS on exit.

    Args:
        run_dir: The run directory (``paths.output_dir``); created if needed.
    """

    held: ClassVar[dict[str, list[int]]] = {}  # resolved lock path -> [fd, references]

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._finalizer: weakref.finalize | None = None

    def acquire(self) -> RunLock:
        """Take the lock, or refuse naming the holder.

        Raises:
            RunDirectoryInUse: another process holds it; the message says which and what to do.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        key = str(self.path.resolve())
        if self._finalizer is not None and self._finalizer.alive:
            return self
        if key not in RunLock.held:
            RunLock.held[key] = [self._lock_file(), 0]
        RunLock.held[key][1] += 1
        self._finalizer = weakref.finalize(self, _release, key)
        return self

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._finalizer is not None:
            self._finalizer()

    def _lock_file(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunDirectoryInUse(self._refusal()) from None
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %z")
        info = f"pid={os.getpid()}\nhost={socket.gethostname()}\nstarted={stamp}\ncommand={' '.join(sys.argv)}\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        return fd

    def holder(self) -> dict[str, str]:
        """What the lock file says about its holder (``pid``, ``host``, ``started``, ``command``)."""
        try:
            lines = self.path.read_text(errors="replace").splitlines()
        except OSError:
            return {}
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def _refusal(self) -> str:
        info = self.holder()
        who = (
            f"PID {info.get('pid', '?')} on {info.get('host', '?')}, started {info.get('started', '?')}"
            if info
            else "its holder has not written its PID yet"
        )
        return (
            f"run directory {self.run_dir} is in use by another run ({who}): wait for it to finish, "
            "or give this run its own directory, e.g. name=<another name>"
        )
