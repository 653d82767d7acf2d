"""One driver per stream: an exclusive ``flock`` on ``<stream>/driver.lock`` held for the driver's lifetime.

The file names its holder (pid, host, start time). The kernel drops the lock when the holder dies, however it
dies, so a lock left by a dead driver (SIGKILL, OOM, a crashed machine's local disk) is simply taken over, and
the takeover is logged with the dead holder's details. A clean exit empties the file before unlocking. The file is
never deleted (deleting a lock file that another process has open lets two processes lock two different files).

``flock`` is per host: on a cluster, put the stream folder on storage whose locks are shared (NFSv4 maps
``flock`` to byte-range locks) or run one supervisor that starts the driver.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class LockHeld(RuntimeError):
    """Another live driver holds the stream's lock."""

    def __init__(self, path: Path, holder: dict[str, Any]) -> None:
        self.path = path
        self.holder = holder
        who = (f"driver pid {holder.get('pid', '?')} on host {holder.get('host', '?')} since "
               f"{holder.get('started_utc', '?')}") if holder else "another process"
        super().__init__(f"stream {holder.get('stream', '?')!s} is already running: {who} holds {path}; stop it "
                         "first (python -m spark_apps.stream stop) or wait for it to exit")


def read_holder(path: Path) -> dict[str, Any]:
    """What the lock file says about its (last) holder; ``{}`` when empty or unreadable."""
    try:
        text = Path(path).read_text().strip()
        return json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}


def is_locked(path: Path) -> bool:
    """Whether a live process holds the lock at ``path`` (probed without taking it over)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


class DriverLock:
    """``with DriverLock(path, stream="tweets"):`` holds the stream's lock or raises :class:`LockHeld`."""

    def __init__(self, path: Path, stream: str, **details: Any) -> None:
        self.path = Path(path)
        self.stream = stream
        self.details = details
        self.fd: int | None = None
        #: The holder recorded by a driver that died without releasing the lock (None if there was none).
        self.recovered: dict[str, Any] | None = None

    def acquire(self) -> DriverLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(self.path, {"stream": self.stream, **read_holder(self.path)}) from None
        stale = read_holder(self.path)
        if stale:
            self.recovered = stale
            log.warning("recovered the stale lock %s of driver pid %s on host %s (started %s): that driver is gone",
                        self.path, stale.get("pid"), stale.get("host"), stale.get("started_utc"))
        holder = {"stream": self.stream, "pid": os.getpid(), "host": socket.gethostname(),
                  "started_utc": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                  **self.details}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> DriverLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
