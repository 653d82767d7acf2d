"""Long-running components of the platform (the service, the stream's ingest, the dashboard, Airflow) recorded in
``<run_dir>/<name>.json`` so that any later process (``make status``, ``make down``, an Airflow task) finds them.

Each component runs in a session of its own (:mod:`ml.processes`); its record holds the leader's pid and kernel
start time (a recycled pid is never mistaken for it), the command and facts such as its port or model tag. Its
output goes to ``<run_dir>/<name>.log``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ml.processes import Process, ProcessError, session_members, start_time, stop_session


def record_path(run_dir: Path, name: str) -> Path:
    return Path(run_dir) / f"{name}.json"


def log_path(run_dir: Path, name: str) -> Path:
    return Path(run_dir) / f"{name}.log"


def read(run_dir: Path, name: str) -> dict[str, Any] | None:
    """The component's record if its leader still runs, else ``None`` (a stale record is removed).

    A record whose leader is gone but whose session still has members says ``leader_gone``: leftovers to stop.
    """
    path = record_path(run_dir, name)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if start_time(record["pid"]) == record["start_time"]:
        return record
    if not session_members(record["pid"]):
        path.unlink(missing_ok=True)
        return None
    return {**record, "leader_gone": True}


def start(run_dir: Path, name: str, cmd: list[str], env: dict[str, str], *, cwd: str | os.PathLike[str] | None = None,
          **facts: Any) -> dict[str, Any]:
    """Start ``cmd`` in its own session, its output appended to ``<name>.log``; write its record (atomically)."""
    return launch(run_dir, name, cmd, env, cwd=cwd, **facts)[1]


def launch(run_dir: Path, name: str, cmd: list[str], env: dict[str, str], *,
           cwd: str | os.PathLike[str] | None = None, **facts: Any) -> tuple[Process, dict[str, Any]]:
    """:func:`start`, also returning the :class:`~ml.processes.Process` (to wait on it, or reap it)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    process = Process(cmd, cwd=cwd, env=env, log=log_path(run_dir, name), name=name).start()
    record = {"pid": process.pid, "start_time": start_time(process.pid), "cmd": cmd, **facts}
    tmp = record_path(run_dir, name).with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, record_path(run_dir, name))
    return process, record


def stop(run_dir: Path, name: str, grace: float = 30.0) -> list[int]:
    """End every process of the component's session and their descendants (SIGTERM, then SIGKILL after ``grace``
    seconds); remove its record; return the pids (empty when it was not running)."""
    path = record_path(run_dir, name)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    sid = record["pid"]
    if start_time(sid) not in (None, record["start_time"]):
        path.unlink(missing_ok=True)  # the pid was recycled by an unrelated process
        return []
    members = stop_session(sid, grace)
    path.unlink(missing_ok=True)
    return members


__all__ = ["ProcessError", "launch", "log_path", "read", "record_path", "start", "stop"]
