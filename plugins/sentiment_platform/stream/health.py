"""Is a stream healthy? Judged from its files only (so the launch task, the health DAG and ``make status`` agree):
the driver's status file, its lock, and the landing folder. And the two actions a supervisor takes: end a stalled
driver (its launch task's retry restarts it from the checkpoint) and tell when a bounded stream has drained.

Verdicts:

* ``ok`` -- micro-batches come when there is input; ``idle`` -- running, nothing to read;
* ``starting`` -- a driver is starting (no judgement for up to :data:`START_LIMIT_S`);
* ``stalled`` -- the driver holds its lock but has not refreshed its status file for the stall limit (it does not
  answer: stopped, hung, swapping), or it has started no micro-batch for that long while landing files wait and no
  micro-batch is running. The limit is ``stream_stall_intervals`` trigger intervals, at least
  :data:`MIN_STALL_S` (three of the driver's 10 s heartbeats);
* ``dead`` -- the status says running but no driver holds the lock: it died without a word (SIGKILL, OOM);
* ``stopped``, ``failed`` -- as the driver wrote; ``missing`` -- no status file and no driver.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spark_apps.stream.lock import is_locked, read_holder
from spark_apps.stream.paths import LANDING_GLOB, StreamPaths
from spark_apps.stream.status import read_status

log = logging.getLogger(__name__)

MIN_STALL_S = 30.0
START_LIMIT_S = 300.0


def stall_seconds(trigger_s: float, intervals: int) -> float:
    """How long without a sign of life (or of progress while input waits) counts as a stall."""
    return max(MIN_STALL_S, intervals * trigger_s)


def parse_utc(value: Any) -> float | None:
    """Epoch seconds of an ISO-8601 UTC string (``...Z``), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@dataclass
class Health:
    """A stream's health now; ``cause`` says why when it is not ``ok``/``idle``."""

    stream: str
    verdict: str
    cause: str | None
    state: str | None
    driver_alive: bool
    driver_pid: int | None
    batch_age_s: float | None
    update_age_s: float | None
    waiting_files: int
    stall_s: float
    status: dict[str, Any] | None

    @property
    def stalled(self) -> bool:
        return self.verdict == "stalled"

    def summary(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("status")
        return doc


def waiting_files(landing: Path, since: float) -> tuple[int, float | None]:
    """Landing files that arrived after ``since`` (epoch s): how many, and the oldest one's arrival."""
    count, oldest = 0, None
    try:
        entries = list(os.scandir(landing))
    except OSError:
        return 0, None
    for entry in entries:
        if not entry.name.startswith("part-") or not entry.name.endswith(".jsonl"):
            continue
        try:
            mtime = entry.stat().st_mtime
        except OSError:
            continue
        if mtime > since:
            count += 1
            oldest = mtime if oldest is None else min(oldest, mtime)
    return count, oldest


def assess(paths: StreamPaths, *, trigger_s: float, stall_intervals: int, now: float | None = None) -> Health:
    """Judge the stream at ``paths`` (see the module's doc for the verdicts)."""
    now = time.time() if now is None else now
    status = read_status(paths.status)
    alive = is_locked(paths.lock)
    stall_s = stall_seconds(trigger_s, stall_intervals)
    name = paths.root.name
    if status is None:
        return Health(name, "starting" if alive else "missing", None if alive else "no status file", None, alive,
                      None, None, None, 0, stall_s, None)
    state = status.get("state")
    driver = status.get("driver") or {}
    pid = driver.get("pid")
    last = parse_utc(status.get("last_progress_utc"))
    updated = parse_utc(status.get("updated_utc"))
    started = parse_utc(driver.get("started_utc"))
    batch_age = None if last is None else max(0.0, now - last)
    update_age = None if updated is None else max(0.0, now - updated)
    query = status.get("query") or {}
    # quiet since: the last micro-batch's start, the driver's start, or the query's last trigger start or end
    since = max(t for t in (last, started, parse_utc(query.get("since_utc")), 0.0) if t is not None)
    waiting, oldest = waiting_files(paths.landing, since)

    def verdict(word: str, cause: str | None = None) -> Health:
        return Health(name, word, cause, state, alive, pid, batch_age, update_age, waiting, stall_s, status)

    if not alive:
        if state in ("running", "starting", "stopping"):
            return verdict("dead", f"the driver (pid {pid}) is gone but its status file says {state!r}: it died "
                                   "without a word (killed, out of memory)")
        if state == "failed":
            return verdict("failed", status.get("error") or "the driver failed")
        return verdict("stopped" if state == "stopped" else "missing", status.get("stop_reason"))
    holder = read_holder(paths.lock)
    if holder.get("pid") and pid and int(holder["pid"]) != int(pid):
        # a new driver took the lock and has not written its first status yet: the file is its predecessor's
        since_start = parse_utc(holder.get("started_utc"))
        if since_start is not None and now - since_start > max(START_LIMIT_S, stall_s):
            return verdict("stalled", f"the driver (pid {holder['pid']}) has been starting for "
                                      f"{now - since_start:.0f} s without a word")
        return Health(name, "starting", None, "starting", alive, int(holder["pid"]), batch_age, None, waiting,
                      stall_s, status)
    if state == "starting":
        if update_age is not None and update_age > max(START_LIMIT_S, stall_s):
            return verdict("stalled", f"the driver (pid {pid}) has been starting for {update_age:.0f} s without a "
                                      f"word (limit {max(START_LIMIT_S, stall_s):.0f} s)")
        return verdict("starting")
    if update_age is not None and update_age > stall_s:
        return verdict("stalled", f"the driver (pid {pid}) has not refreshed its status file for {update_age:.0f} s "
                                  f"(limit {stall_s:.0f} s): it does not answer")
    if state != "running":
        return verdict(state or "unknown", status.get("stop_reason") or status.get("error"))
    trigger_active = bool(query.get("trigger_active"))
    quiet_for = now - since
    if waiting and not trigger_active and quiet_for > stall_s and oldest is not None and now - oldest > stall_s:
        return verdict("stalled", f"no micro-batch for {quiet_for:.0f} s while {waiting} landing files wait "
                                  f"(limit {stall_s:.0f} s)")
    return verdict("ok" if waiting or (batch_age is not None and batch_age <= stall_s) else "idle")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def end_driver(paths: StreamPaths, status: dict[str, Any] | None, *, grace: float = 15.0) -> list[int]:
    """SIGKILL a stalled driver of this host: its Python process and spark-submit's JVM (a stopped or hung process
    does not handle SIGTERM; the checkpoint makes a kill safe). Only processes that are what the status file and
    the lock say they are (the lock's holder, a ``job.py`` command line, a Java ``SparkSubmit``) are touched.
    Waits up to ``grace`` seconds for the lock to be released; returns the pids signalled."""
    holder = read_holder(paths.lock)
    driver = (status or {}).get("driver") or {}
    if holder.get("host") not in (None, socket.gethostname()):
        log.warning("the driver of %s runs on host %s: it cannot be ended from here", paths.root.name, holder["host"])
        return []
    candidates = []
    pid = holder.get("pid") or driver.get("pid")
    if holder.get("pid") and driver.get("pid") and int(holder["pid"]) != int(driver["pid"]):
        log.warning("the lock of %s moved to driver pid %s meanwhile: not ending it", paths.root.name, holder["pid"])
        return []
    if pid and "job.py" in _cmdline(int(pid)):
        candidates.append(int(pid))
    jvm = driver.get("jvm_pid")
    if jvm and "SparkSubmit" in _cmdline(int(jvm)):
        candidates.append(int(jvm))
    for target in candidates:
        try:
            os.kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
    deadline = time.monotonic() + grace
    while candidates and is_locked(paths.lock) and time.monotonic() < deadline:
        time.sleep(0.2)
    return candidates


def drained(paths: StreamPaths) -> bool:
    """Whether both queries committed every landing file there is (a bounded stream may then stop)."""
    from spark_apps.stream.sparklog import last_commit, source_files

    landed = {p.name for p in paths.landing.glob(LANDING_GLOB)}
    for checkpoint in (paths.main_checkpoint, paths.deadletter_checkpoint):
        last = last_commit(checkpoint)
        done = {Path(f).name for f in source_files(checkpoint, range(last + 1))} if last is not None else set()
        if not landed <= done:
            return False
    return True
