"""The supervisor's record of a stream, ``<home>/stream/<name>/supervisor.json``: restarts and their causes.

``{"restarts": n, "events": [{"at": ISO-8601 UTC, "cause": "...", "action": ...}, ...], "launch": {...},
"stop_requested": {...}}``, rewritten atomically (a temporary file renamed over it) under an ``flock`` so that
the launch task, the health DAG, the stop DAG and ``make down`` never lose each other's writes. The dashboard
shows ``restarts`` and the latest events; ``make status`` prints them.

Event actions: ``restart`` (a new driver replaces a dead or stalled one; counted in ``restarts``), ``end`` (the
supervisor ended a stalled driver), ``adopt`` (a launch task found a driver already running, left by a launch task
that died, and watches it instead of starting another), ``stop`` (a clean stop was asked for), ``give-up`` (the
restarts of a DAG run are spent).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RECORD = "supervisor.json"
#: Events kept in the record (the oldest go first).
MAX_EVENTS = 50


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def record_path(stream_dir: Path) -> Path:
    return Path(stream_dir) / RECORD


def read_record(stream_dir: Path) -> dict[str, Any]:
    """The record (``{"restarts": 0, "events": []}`` when there is none yet)."""
    try:
        doc = json.loads(record_path(stream_dir).read_text())
    except (OSError, ValueError):
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    doc.setdefault("restarts", 0)
    doc.setdefault("events", [])
    return doc


@contextlib.contextmanager
def updating(stream_dir: Path) -> Iterator[dict[str, Any]]:
    """``with updating(folder) as doc: doc[...] = ...``: read, change and write back the record under a lock."""
    folder = Path(stream_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".supervisor.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        doc = read_record(folder)
        yield doc
        doc["events"] = doc["events"][-MAX_EVENTS:]
        tmp = folder / f".{RECORD}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, record_path(folder))


def add_event(stream_dir: Path, action: str, cause: str, **facts: Any) -> dict[str, Any]:
    """Append an event (``restart`` also counts one restart); return it."""
    event = {"at": utc_now(), "cause": cause, "action": action, **facts}
    with updating(stream_dir) as doc:
        doc["events"].append(event)
        if action == "restart":
            doc["restarts"] = int(doc.get("restarts") or 0) + 1
    return event


def request_stop_mark(stream_dir: Path, by: str) -> None:
    """Note that a clean stop was asked for, so that a launch task in its retry delay does not start a driver."""
    with updating(stream_dir) as doc:
        doc["stop_requested"] = {"at": utc_now(), "by": by}
        doc["events"].append({"at": doc["stop_requested"]["at"], "cause": f"clean stop requested by {by}",
                              "action": "stop"})


def stop_requested_since(stream_dir: Path, since: datetime | None) -> dict[str, Any] | None:
    """The stop request made at or after ``since`` (a DAG run's start), if any."""
    mark = read_record(stream_dir).get("stop_requested")
    if not isinstance(mark, dict) or not mark.get("at"):
        return None
    if since is None:
        return mark
    at = datetime.fromisoformat(mark["at"].replace("Z", "+00:00"))
    return mark if at >= since.astimezone(UTC).replace(microsecond=0) else None
