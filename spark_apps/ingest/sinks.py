"""Where landed posts go: atomic JSONL files in a landing folder (the default); the TCP socket sink is in
:mod:`spark_apps.ingest.socket_sink`.

Both take whole lines (:func:`spark_apps.ingest.records.to_line`) with the source's position after each, and call
``on_commit(state)`` once everything up to that position is durable (file sink: renamed into place; socket sink:
handed to a connected client), so the saved position never runs ahead of the posts.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spark_apps.ingest.state import fsync_dir

log = logging.getLogger(__name__)

Commit = Callable[[Any], None]
_TEMP = re.compile(r"^\.part-\d+-(\d+)-\d+\.jsonl\.tmp$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FileSink:
    """Newline-delimited JSON files, each written under a hidden name and renamed into place when complete.

    A file is ``.part-<epoch_ms>-<pid>-<seq>.jsonl.tmp`` while it is written (Spark's file source skips names
    starting with ``.``), then flushed, fsynced and renamed to ``part-<epoch_ms>-<pid>-<seq>.jsonl`` (and the folder
    fsynced) once it holds ``max_bytes`` or ``max_seconds`` after its first post, whichever comes first. Files are
    opened only for a post: no empty files. ``<epoch_ms>`` is when the file was opened. A crash leaves at most one
    hidden temp file, whose posts the restart delivers again (its position was never saved); the next sink on the
    folder deletes temp files of processes that no longer run.

    Args:
        folder: The landing folder (created; flat, no subfolders).
        max_bytes: Rotate at this size.
        max_seconds: Rotate this long after the file's first post (see :meth:`tick`).
        on_commit: Called with the position of the last post of each renamed file.
    """

    kind = "file"

    def __init__(self, folder: Path, *, max_bytes: int = 1 << 20, max_seconds: float = 2.0,
                 on_commit: Commit | None = None):
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.on_commit = on_commit
        self.files = 0
        self.bytes = 0
        self.dropped = 0
        self.clients = None
        self._seq = 0
        self._fh: Any = None
        self._tmp: Path | None = None
        self._final: Path | None = None
        self._size = 0
        self._opened = 0.0
        self._pending: Any = None
        self._idle: Any = None
        self._last_commit = time.monotonic()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._remove_orphans()

    def _remove_orphans(self) -> None:
        for path in self.folder.iterdir():
            match = _TEMP.match(path.name)
            if match and (int(match.group(1)) == os.getpid() or not _pid_alive(int(match.group(1)))):
                log.warning("removing %s, left by an ingest that stopped before renaming it (its posts come again)",
                            path.name)
                path.unlink(missing_ok=True)

    # ---------------------------------------------------------------------------------------------- writing
    def write(self, line: bytes, state: Any = None) -> None:
        """Append one line; ``state`` is the source's position after it."""
        if self._fh is None:
            self._open()
        self._fh.write(line)
        self._size += len(line)
        if state is not None:
            self._pending = state
        if self._size >= self.max_bytes:
            self.rotate()

    def advance(self, state: Any) -> None:
        """The source moved on without a post (a filtered post, a delete): save ``state`` when it is safe."""
        if self._fh is not None:
            self._pending = state
        else:
            self._idle = state

    def next_deadline(self) -> float | None:
        """When (``time.monotonic``) :meth:`tick` has something to do; ``None``: nothing pending."""
        if self._fh is not None:
            return self._opened + self.max_seconds
        if self._idle is not None:
            return self._last_commit + self.max_seconds
        return None

    def tick(self) -> None:
        """Rotate a file that has been open ``max_seconds``; save a position reached without posts."""
        now = time.monotonic()
        if self._fh is not None and now >= self._opened + self.max_seconds:
            self.rotate()
        elif self._fh is None and self._idle is not None and now >= self._last_commit + self.max_seconds:
            self._commit(self._idle)

    def rotate(self) -> Path | None:
        """Close the current file and rename it into place; return its final path (``None`` if none was open)."""
        if self._fh is None:
            return None
        fh, tmp, final, state = self._fh, self._tmp, self._final, self._pending
        self._fh = self._tmp = self._final = self._pending = None
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        os.rename(tmp, final)
        fsync_dir(self.folder)
        self.files += 1
        self.bytes += self._size
        log.debug("landed %s (%d bytes)", final.name, self._size)
        self._idle = None
        if state is not None:
            self._commit(state)
        return final

    def close(self) -> None:
        """Rename the current file into place and save the last position."""
        self.rotate()
        if self._idle is not None:
            self._commit(self._idle)

    def _open(self) -> None:
        self._seq += 1
        stem = f"part-{time.time_ns() // 1_000_000}-{os.getpid()}-{self._seq}.jsonl"
        self._tmp = self.folder / f".{stem}.tmp"
        self._final = self.folder / stem
        self._fh = open(self._tmp, "xb")  # noqa: SIM115 - closed by rotate()
        self._size = 0
        self._opened = time.monotonic()

    def _commit(self, state: Any) -> None:
        self._idle = None
        self._last_commit = time.monotonic()
        if self.on_commit is not None:
            self.on_commit(state)
