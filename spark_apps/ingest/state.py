"""Durable state and status of one stream's ingest, under ``<home>/stream/<name>/``::

    landing/              the sink's files (the Spark job's input)
    ingest/state.json     where each source stopped: {"version": 1, "updated_at": ..., "replay": {...},
                          "bluesky": {...}}; a section is saved only once the posts before it are durable.
                          While a landing file is renamed into place it also holds the intent
                          ``"pending": {"section", "file", "value"}``; a restart settles it (see
                          :meth:`StateStore.settle`), so a crash between the rename and the save neither loses
                          nor repeats a post
    ingest/status.json    what the ingest is doing, for the dashboard and the supervisor (see :class:`Status`)
    ingest/ingest.lock    held (``flock``) by the running ingest: a second one on the same stream refuses to start

Both JSON files are written atomically (a hidden temp file in the same folder, fsync, rename, fsync of the folder),
so a reader sees the old or the new version, never a torn one.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spark_apps.ingest.records import now_iso

log = logging.getLogger(__name__)

STATE_VERSION = 1


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; ``None`` when missing or unreadable (logged)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s (%s)", path, exc)
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class StreamPaths:
    """The ingest's files of one stream."""

    root: Path

    @classmethod
    def of(cls, settings: Any, name: str | None = None) -> StreamPaths:
        return cls(settings.stream_dir(name))

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def ingest(self) -> Path:
        return self.root / "ingest"

    @property
    def state(self) -> Path:
        return self.ingest / "state.json"

    @property
    def status(self) -> Path:
        return self.ingest / "status.json"

    @property
    def lock(self) -> Path:
        return self.ingest / "ingest.lock"


@contextmanager
def stream_lock(path: Path) -> Iterator[None]:
    """Hold ``path`` exclusively while the ingest runs (released by the kernel if the process dies).

    Raises:
        IngestError: another ingest of the stream holds it.
    """
    import fcntl

    from spark_apps.ingest.errors import IngestError

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            raise IngestError(f"another ingest of this stream is running (pid {holder}; lock {path})") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fh.truncate(0)


class StateStore:
    """``state.json``: one section per source (``replay``, ``bluesky``), each replaced whole when saved.

    A file sink lands a file in three durable steps: :meth:`intend` (the position the file reaches and its name),
    the rename, :meth:`save`. :meth:`settle`, run before a restart reads its position, finishes a landing a crash
    interrupted: the position is taken if the file is in place and dropped if it is not.
    """

    def __init__(self, path: Path):
        self.path = path
        self._data = read_json(path) or {}
        if self._data.get("version", STATE_VERSION) != STATE_VERSION:
            log.warning("%s has version %s, not %s: starting afresh", path, self._data.get("version"), STATE_VERSION)
            self._data = {}

    def get(self, section: str) -> dict[str, Any] | None:
        value = self._data.get(section)
        return dict(value) if isinstance(value, dict) else None

    def intend(self, section: str, value: dict[str, Any], file: str) -> None:
        """Record that landing ``file`` moves ``section`` to ``value`` (before the rename)."""
        pending = {"section": section, "file": file, "value": value}
        self._write({**self._data, "pending": pending})

    def save(self, section: str, value: dict[str, Any]) -> None:
        if self._data.get(section) == value and "pending" not in self._data:
            return
        data = {k: v for k, v in self._data.items() if k != "pending"}
        self._write({**data, section: value})

    def settle(self, landed: Callable[[str], bool]) -> None:
        """Finish a landing that a crash interrupted: keep its position if ``landed(file)``, else forget it."""
        pending = self._data.get("pending")
        if not isinstance(pending, dict):
            return
        section, file, value = pending.get("section"), str(pending.get("file")), pending.get("value")
        if section and isinstance(value, dict) and landed(file):
            log.warning("%s was landed before a crash saved its position: taking its position", file)
            self.save(section, value)
        else:
            log.warning("%s was never landed before a crash: its posts come again", file)
            self._write({k: v for k, v in self._data.items() if k != "pending"})

    def _write(self, data: dict[str, Any]) -> None:
        self._data = {**data, "version": STATE_VERSION, "updated_at": now_iso()}
        write_json_atomic(self.path, self._data)

    def snapshot(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k != "pending"}


class Status:
    """Counters of a running ingest, written to ``status.json`` at most every ``interval`` seconds.

    Keys: ``stream``, ``source``, ``sink``, ``pid``, ``running``, ``started_at``, ``updated_at``, ``stopped_at``,
    ``stop_reason``, ``posts`` (landed), ``files`` (landing files renamed into place), ``bytes``, ``filtered``
    (no keyword matched), ``skipped`` (events that are not posts), ``bad`` (unreadable rows or events),
    ``dropped`` (posts lost, e.g. by the socket sink's full buffer), ``errors`` (connection and HTTP errors),
    ``last_error``, ``last_post_at`` (``ingest_ts`` of the newest landed post), ``clients`` (socket sink),
    ``state`` (the saved position).
    """

    COUNTERS = ("posts", "files", "bytes", "filtered", "skipped", "bad", "dropped", "errors")

    def __init__(self, path: Path | None, *, stream: str, source: str, sink: str, interval: float = 1.0):
        self.path = path
        self.interval = interval
        self._written = 0.0
        self.data: dict[str, Any] = {
            "stream": stream, "source": source, "sink": sink, "pid": os.getpid(), "running": True,
            "started_at": now_iso(), "updated_at": None, "stopped_at": None, "stop_reason": None,
            **dict.fromkeys(self.COUNTERS, 0), "last_error": None, "last_post_at": None, "clients": None,
            "state": None,
        }

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def add(self, key: str, n: int = 1) -> None:
        self.data[key] += n

    def set(self, **values: Any) -> None:
        self.data.update(values)

    def error(self, message: str) -> None:
        self.data["errors"] += 1
        self.data["last_error"] = message

    def write(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.path is None or (not force and now - self._written < self.interval):
            return
        self._written = now
        self.data["updated_at"] = now_iso()
        try:
            write_json_atomic(self.path, self.data)
        except OSError as exc:  # the status is informative: never stop the ingest for it
            log.warning("could not write %s: %s", self.path, exc)
