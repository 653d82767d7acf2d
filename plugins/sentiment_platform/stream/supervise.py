"""Supervising one stream's Spark job from its launch task: start it, watch it, end it when it stalls, restart it
from the checkpoint when it dies, never run two.

:func:`run_supervised` is what the launch task (:class:`~sentiment_platform.stream.operator.StreamSubmitOperator`)
does in each of its tries; ``submit`` is the provider's blocking ``spark-submit``:

1. a clean stop asked since the DAG run began (the stop DAG, ``make down``): start nothing, succeed;
2. a driver of the stream already holds its lock (a try whose worker died left it running: its spark-submit was
   orphaned, not killed): *adopt* it -- watch it with the :class:`Watchdog` until it exits, never start a second;
   a clean stop of it ends the try, a death makes this try restart it;
3. wait until the scoring service answers (a restart into a dead service would only burn a retry);
4. submit; while it runs the :class:`Watchdog` checks the stream every ``stream_check_s``: a stall (see
   :mod:`~sentiment_platform.stream.health`) ends the driver (SIGKILL; the checkpoint makes it safe), and a bounded
   run whose ingest has ended and whose landing files are all committed is asked to stop cleanly;
5. exit 0 is a clean stop (success); exit 3 means another driver took the lock first (back to 2); exit 2 is a bad
   argument (fail, no retry); anything else fails the try with its cause, and Airflow's retry (with backoff, up to
   ``stream_max_restarts``) restarts the driver from its checkpoint.

Every restart, adoption, end and give-up is an event in ``supervisor.json`` (:mod:`~sentiment_platform.stream.record`)
with its cause, and a line in the task log.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ml.errors import ConfigError
from sentiment_platform.stream import record
from sentiment_platform.stream.health import assess, drained, end_driver
from spark_apps.stream.control import request_stop
from spark_apps.stream.lock import is_locked, read_holder
from spark_apps.stream.paths import StreamPaths
from spark_apps.stream.status import read_status

log = logging.getLogger(__name__)

#: Seconds between two health lines in the task log.
LOG_EVERY_S = 60.0
#: Seconds the launch task waits for the scoring service before a try gives up.
SERVICE_WAIT_S = 300.0


class StreamFailed(RuntimeError):
    """The driver ended without a clean stop; the message says why (Airflow's retry restarts it)."""


class BadArguments(RuntimeError):
    """The job refused its arguments (exit code 2): a retry cannot help."""


@dataclass
class Outcome:
    """How a watched driver ended: ``clean`` (stopped on request or done) or not, and why."""

    clean: bool
    cause: str


class Watchdog(threading.Thread):
    """Checks a running stream every ``check_s`` seconds: ends it when it stalls, asks a drained bounded stream to
    stop, logs its health every minute. ``cause`` says why it ended the driver (None: it did not)."""

    def __init__(self, plan: Mapping[str, Any], paths: StreamPaths, settings: Any, *, drain: bool) -> None:
        super().__init__(name=f"watchdog-{plan['name']}", daemon=True)
        self.plan, self.paths, self.settings, self.drain = plan, paths, settings, drain
        self.cause: str | None = None
        self.stop_asked: str | None = None
        self._done = threading.Event()
        self._logged = time.monotonic()

    def run(self) -> None:
        while not self._done.wait(self.settings.stream.check_s):
            try:
                self.check()
            except Exception:  # the watchdog must outlive any surprise in the files it reads
                log.exception("stream %s: the health check failed", self.plan["name"])

    def finish(self) -> None:
        self._done.set()
        self.join(timeout=30)

    def check(self) -> None:
        stream = self.settings.stream
        health = assess(self.paths, trigger_s=stream.trigger_seconds, stall_intervals=stream.stall_intervals)
        if time.monotonic() - self._logged >= LOG_EVERY_S:
            self._logged = time.monotonic()
            totals = (health.status or {}).get("totals") or {}
            log.info("stream %s: %s; %s rows/s; last batch %s s ago; %s rows in, %s written; %d files waiting",
                     self.plan["name"], health.verdict, (health.status or {}).get("processed_rows_per_s"),
                     None if health.batch_age_s is None else round(health.batch_age_s), totals.get("rows_in"),
                     totals.get("written"), health.waiting_files)
        if health.stalled and self.cause is None:
            self.cause = f"stalled: {health.cause}"
            log.error("stream %s %s; ending the driver so that the launch task restarts it from its checkpoint",
                      self.plan["name"], self.cause)
            pids = end_driver(self.paths, health.status)
            record.add_event(self.paths.root, "end", self.cause, pids=pids, by=f"launch task pid {os.getpid()}")
            return
        if self.drain and self.stop_asked is None and health.driver_alive and health.verdict in ("ok", "idle"):
            from sentiment_platform.stream.ingest import ingest_state

            ingest = ingest_state(self.settings, self.plan["name"])
            if not ingest["running"] and drained(self.paths):
                self.stop_asked = f"the ingest ended ({ingest['stop_reason']}) and every landed post is committed"
                log.info("stream %s: %s: stopping it cleanly", self.plan["name"], self.stop_asked)
                request_stop(self.paths.stop_file, self.paths.lock, timeout=0)


def run_supervised(plan: Mapping[str, Any], settings: Any, *, try_number: int, retries: int,
                   run_started: datetime | None, submit: Callable[[], None], returncode: Callable[[], int | None],
                   wait_service: Callable[[], None] | None = None) -> dict[str, Any]:
    """One try of the launch task (see the module's doc). Returns the stream's final state on a clean stop.

    Raises:
        StreamFailed: the driver died, stalled or failed (the next try restarts it).
        BadArguments: the job refused its arguments.
    """
    name = plan["name"]
    paths = StreamPaths.for_stream(settings, name)
    folder = paths.root
    drain = bool(plan.get("stop_when_ingest_ends")) and plan.get("mode") == "continuous"
    restart_cause = _begin_try(plan, folder, try_number)
    for _ in range(20):
        stopped = record.stop_requested_since(folder, run_started)
        if is_locked(paths.lock):
            holder = read_holder(paths.lock)
            cause = (f"driver pid {holder.get('pid')} on {holder.get('host')} (since {holder.get('started_utc')}) "
                     "is already running, left by an earlier launch: watching it instead of starting a second one")
            if restart_cause:
                cause += f" ({restart_cause})"
                restart_cause = None
            log.warning("stream %s: %s", name, cause)
            record.add_event(folder, "adopt", cause, try_number=try_number)
            outcome = _watch_adopted(plan, paths, settings, drain=drain)
            if outcome.clean:
                log.info("stream %s: the adopted driver stopped cleanly (%s)", name, outcome.cause)
                return _final(paths)
            restart_cause = f"the adopted driver ended: {outcome.cause}"
            continue
        if stopped:
            log.info("stream %s: a clean stop was requested by %s at %s: not starting it", name, stopped.get("by"),
                     stopped.get("at"))
            return _final(paths)
        if restart_cause:
            log.warning("stream %s: restarting its driver from the checkpoint (try %d of %d): %s", name, try_number,
                        retries + 1, restart_cause)
            record.add_event(folder, "restart", restart_cause, try_number=try_number)
            restart_cause = None
        if wait_service is not None:
            wait_service()
        watchdog = Watchdog(plan, paths, settings, drain=drain)
        watchdog.start()
        try:
            submit()
        except Exception as exc:
            code = returncode()
            if code == 3:
                log.warning("stream %s: another driver took the lock first; watching it", name)
                continue
            if code == 2:
                raise BadArguments(f"the stream job refused its arguments (exit 2): {exc}") from exc
            cause = watchdog.cause or _driver_cause(paths, code)
            _fail_try(folder, plan, try_number, retries, cause)
            raise StreamFailed(cause) from exc
        finally:
            watchdog.finish()
        state = _final(paths)
        log.info("stream %s stopped cleanly: %s", name, state.get("stop_reason"))
        return state
    raise StreamFailed("gave up after 20 rounds of adopting and starting drivers")


def _begin_try(plan: Mapping[str, Any], folder, try_number: int) -> str | None:
    """Note this try in the record; return why the driver needs a restart when this try follows a failed one."""
    cause = None
    with record.updating(folder) as doc:
        launch = doc.get("launch") or {}
        if try_number > 1 and launch.get("dag_run_id") == plan.get("dag_run_id"):
            cause = launch.get("failure") or (f"the launch task's try {launch.get('try_number')} (pid "
                                              f"{launch.get('pid')} on {launch.get('host')}) ended without a word: "
                                              "its worker or the scheduler died")
        doc["launch"] = {"dag_run_id": plan.get("dag_run_id"), "try_number": try_number, "pid": os.getpid(),
                         "host": socket.gethostname(), "started": record.utc_now(), "failure": None}
    return cause


def _fail_try(folder, plan: Mapping[str, Any], try_number: int, retries: int, cause: str) -> None:
    with record.updating(folder) as doc:
        launch = doc.setdefault("launch", {})
        launch["failure"] = cause
    if try_number > retries:
        record.add_event(folder, "give-up", f"{cause}; no restarts left ({retries} per run of the DAG)",
                         try_number=try_number)
        log.error("stream %s: %s; no restarts left (%d per run)", plan["name"], cause, retries)
    else:
        log.error("stream %s: %s; the next try (%d of %d) restarts it from its checkpoint", plan["name"], cause,
                  try_number + 1, retries + 1)


def _driver_cause(paths: StreamPaths, code: int | None) -> str:
    status = read_status(paths.status) or {}
    if status.get("state") == "failed" and status.get("error"):
        return f"the driver failed (exit {code}): {status['error']}"
    if code is not None and (code < 0 or code >= 128):
        signum = -code if code < 0 else code - 128
        return f"the driver died (exit {code}: signal {signum}, killed)"
    return f"the driver exited with code {code} (status: {status.get('state')})"


def _watch_adopted(plan: Mapping[str, Any], paths: StreamPaths, settings: Any, *, drain: bool) -> Outcome:
    """Watch a driver this try did not start until its lock is free; how did it end?"""
    watchdog = Watchdog(plan, paths, settings, drain=drain)
    watchdog.start()
    try:
        while is_locked(paths.lock):
            time.sleep(min(1.0, settings.stream.check_s))
    finally:
        watchdog.finish()
    status = read_status(paths.status) or {}
    if watchdog.cause:
        return Outcome(False, watchdog.cause)
    if status.get("state") == "stopped":
        return Outcome(True, status.get("stop_reason") or "stopped")
    return Outcome(False, _driver_cause(paths, None) if status.get("state") == "failed"
                   else f"it died (its status file says {status.get('state')!r})")


def _final(paths: StreamPaths) -> dict[str, Any]:
    status = read_status(paths.status) or {}
    return {"state": status.get("state"), "stop_reason": status.get("stop_reason"), "totals": status.get("totals"),
            "model": status.get("model"), "restarts": record.read_record(paths.root).get("restarts", 0)}


def stop_stream(settings: Any, name: str, *, by: str, timeout: float | None = None) -> dict[str, Any]:
    """Stop a stream's driver cleanly (the stop file, plus SIGTERM on this host) and note the request, so that no
    launch try starts it again in this DAG run; wait until it is gone."""
    paths = StreamPaths.for_stream(settings, name)
    if not paths.root.is_dir():
        raise ConfigError(f"no stream {name!r} under {settings.stream_root}")
    record.request_stop_mark(paths.root, by)
    outcome = request_stop(paths.stop_file, paths.lock,
                           timeout=timeout if timeout is not None else settings.stream.stop_grace_s + 60)
    log.info("stream %s: %s", name, "stopped" if outcome["stopped"] else "still running after the wait")
    return {**outcome, **_final(paths)}
