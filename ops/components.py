"""The processes ``up`` starts, one session each, recorded in ``run/<component>.json`` so that a later ``up``,
``status`` or ``down`` (another process) finds them; started and stopped with :mod:`ml.processes`."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ml.processes import Process, ProcessError, session_members, start_time, stop_session
from ops.layout import ROOT, Layout, PlatformError


def read_pid(layout: Layout, component: str) -> dict[str, Any] | None:
    """The component's record if its leader process still runs, else ``None`` (a stale file is removed).

    A record whose leader is gone but whose session still has members says ``leader_gone``: leftovers to stop.
    """
    path = layout.pid_file(component)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if start_time(record["pid"]) == record["start_time"]:
        return record
    if not session_members(record["pid"]):
        path.unlink(missing_ok=True)
        return None
    return {**record, "leader_gone": True}


def spawn(layout: Layout, component: str, cmd: list[str], env: dict[str, str], **facts: Any) -> dict[str, Any]:
    """Start ``cmd`` in its own session with its output in ``run/<component>.log``; record its pid."""
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    process = Process(cmd, cwd=ROOT, env=env, log=layout.log_file(component), name=component).start()
    record = {"pid": process.pid, "start_time": start_time(process.pid), "cmd": cmd, **facts}
    layout.pid_file(component).write_text(json.dumps(record, indent=2))
    return record


def stop(layout: Layout, component: str, grace: float = 30.0) -> list[int]:
    """End every process of the component's session (SIGTERM, then SIGKILL after ``grace`` s); return the pids."""
    path = layout.pid_file(component)
    if not path.is_file():
        return []
    record = json.loads(path.read_text())
    sid = record["pid"]
    if start_time(sid) not in (None, record["start_time"]):
        path.unlink(missing_ok=True)  # the pid was recycled by an unrelated process
        return []
    try:
        members = stop_session(sid, grace)
    except ProcessError as exc:
        raise PlatformError(f"{component}: {exc}") from None
    path.unlink(missing_ok=True)
    return members


@contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """One ``up``/``down`` at a time."""
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    with open(layout.run_dir / "platform.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("another `python -m ops up/down` is running; waiting for it ...", flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield
