"""The stream's status file, ``<stream>/status.json``: what the dashboard and the Airflow supervisor read.

:class:`StreamStatus` holds the document and rewrites it atomically (a temporary file renamed over the old one,
so a reader never sees half a file) after every micro-batch of the main query, on state changes, and at most
every 10 s as a heartbeat while the stream is idle. :class:`StatusListener` is the ``StreamingQueryListener``
that feeds it. The schema (``schema_version`` 1) is documented in ``docs/streaming.md``.

Totals survive restarts: the previous file is read at start; micro-batches the checkpoint committed after the
file's last counted batch (a driver killed between the commit and the status write) are counted again from the
sink and the landing files (:mod:`spark_apps.stream.recount`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
TOTAL_KEYS = ("rows_in", "written", "dead_letters", "duplicates", "late_rows_dropped", "batches")
HEARTBEAT_S = 10.0


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def jvm_pid() -> int | None:
    """The pid of the JVM that runs this driver (``spark-submit`` starts the Python driver as its child)."""
    try:
        parent = os.getppid()
        return parent if Path(f"/proc/{parent}/comm").read_text().strip() == "java" else None
    except OSError:
        return None


def read_status(path: Path) -> dict[str, Any] | None:
    """The status document at ``path``; None when it is missing or unreadable."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def write_atomic(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` as JSON to ``path`` atomically (a temporary sibling renamed over it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def main_counts(progress) -> dict[str, Any]:
    """One main-query ``StreamingQueryProgress`` as counts: rows in/written, dead letters, duplicates, latency."""
    observed = progress.observedMetrics or {}
    landing = observed["landing"].asDict() if "landing" in observed else {}
    written = observed["written"].asDict() if "written" in observed else {}
    duplicates = late = 0
    for operator in progress.stateOperators or []:
        duplicates += int((operator.customMetrics or {}).get("numDroppedDuplicateRows", 0))
        late += int(operator.numRowsDroppedByWatermark or 0)
    latency = written.get("latency_ms") or [None, None]
    return {
        "rows_in": int(landing.get("rows_in") or progress.numInputRows or 0),
        "dead_letters": int(landing.get("dead_letters") or 0),
        "written": int(written.get("written") or 0),
        "duplicates": duplicates,
        "late_rows_dropped": late,
        "latency_ms": {"p50": _ms(latency[0]), "p95": _ms(latency[1])},
        "models": sorted(written.get("models") or []),
    }


def _ms(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


def _rate(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else round(number, 1)  # NaN when nothing was timed


class StreamStatus:
    """The status document of one running driver; thread-safe (listener callbacks arrive on other threads)."""

    def __init__(self, path: Path, stream: str, *, config: dict[str, Any], paths: dict[str, str],
                 previous: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._last_write = 0.0
        self.terminated: dict[str, threading.Event] = {}
        totals = dict.fromkeys(TOTAL_KEYS, 0)
        carried = previous or {}
        totals.update({k: int(v) for k, v in (carried.get("totals") or {}).items() if k in TOTAL_KEYS})
        self.doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "stream": stream,
            "state": "starting",
            "error": None,
            "stop_reason": None,
            "query_id": carried.get("query_id"),
            "run_id": None,
            "batch_id": carried.get("batch_id"),
            "last_progress_utc": carried.get("last_progress_utc"),
            "updated_utc": utc_now(),
            "input_rows_per_s": None,
            "processed_rows_per_s": None,
            "batch_duration_ms": None,
            "durations_ms": {},
            "last_batch": None,
            "latency_ms": carried.get("latency_ms") or {"p50": None, "p95": None},
            "model": carried.get("model"),
            "models": carried.get("models") or [],
            "totals": totals,
            "totals_exact": bool(carried.get("totals_exact", True)),
            "deadletter_query": None,
            "driver": {"pid": os.getpid(), "jvm_pid": jvm_pid(), "host": socket.gethostname(),
                       "started_utc": utc_now()},
            "config": config,
            "paths": paths,
        }

    # ------------------------------------------------------------------ updates
    def update(self, **fields: Any) -> None:
        with self._lock:
            self.doc.update(fields)
            self.write()

    def write(self) -> None:
        with self._lock:
            self.doc["updated_utc"] = utc_now()
            write_atomic(self.path, self.doc)
            self._last_write = time.monotonic()

    def add_counts(self, batch_id: int, counts: dict[str, Any], batches: int = 1) -> None:
        """Add the counts of committed micro-batches up to ``batch_id`` to the totals (once per batch id)."""
        with self._lock:
            last = self.doc["batch_id"]
            if last is not None and batch_id <= last:
                return
            totals = self.doc["totals"]
            for key in TOTAL_KEYS[:-1]:
                totals[key] += int(counts.get(key) or 0)
            totals["batches"] += batches
            self.doc["batch_id"] = batch_id
            unexplained = (counts["rows_in"] - counts["written"] - counts["dead_letters"] - counts["duplicates"]
                           - counts["late_rows_dropped"])
            if unexplained:
                log.warning("batch %s: %d rows in are neither written, dead letters nor duplicates", batch_id,
                            unexplained)

    def on_main_progress(self, progress) -> None:
        counts = main_counts(progress)
        log.info("batch %s: %d rows in, %d written, %d dead letters, %d duplicates in %s ms %s", progress.batchId,
                 counts["rows_in"], counts["written"], counts["dead_letters"], counts["duplicates"],
                 progress.batchDuration, dict(progress.durationMs or {}))
        with self._lock:
            self.add_counts(progress.batchId, counts)
            fields = {
                "query_id": str(progress.id), "run_id": str(progress.runId), "state": self._running_state(),
                "last_progress_utc": progress.timestamp,
                "input_rows_per_s": _rate(progress.inputRowsPerSecond),
                "processed_rows_per_s": _rate(progress.processedRowsPerSecond),
                "batch_duration_ms": progress.batchDuration,
                "durations_ms": dict(progress.durationMs or {}),
                "last_batch": {k: counts[k] for k in ("rows_in", "written", "dead_letters", "duplicates")},
            }
            if counts["written"]:
                fields.update(latency_ms=counts["latency_ms"], models=counts["models"],
                              model=counts["models"][-1] if counts["models"] else self.doc["model"])
            self.update(**fields)

    def on_deadletter_progress(self, progress) -> None:
        observed = progress.observedMetrics or {}
        written = observed["deadletters"].asDict().get("written", 0) if "deadletters" in observed else 0
        with self._lock:
            previous = self.doc["deadletter_query"] or {}
            self.update(deadletter_query={
                "query_id": str(progress.id), "batch_id": progress.batchId, "last_progress_utc": progress.timestamp,
                "written_this_run": int(previous.get("written_this_run", 0)) + int(written or 0)})

    def heartbeat(self, query_status: dict | None = None) -> None:
        """Refresh ``updated_utc`` (at most every HEARTBEAT_S seconds): while idle (the listener) and on every round
        of the driver's loop, with the main query's ``status``. ``query`` = ``{message, trigger_active,
        data_available, since_utc}`` is written at once when a micro-batch starts or ends (``since_utc``: when), so
        that a supervisor tells a long micro-batch from a stuck driver or a query that no longer triggers."""
        with self._lock:
            changed = False
            if query_status is not None:
                active = bool(query_status.get("isTriggerActive"))
                query = self.doc.get("query") or {}
                if query.get("trigger_active") is not active:
                    query = {"trigger_active": active, "since_utc": utc_now()}
                    changed = True
                query.update(message=query_status.get("message"),
                             data_available=bool(query_status.get("isDataAvailable")))
                self.doc["query"] = query
            if changed or time.monotonic() - self._last_write >= HEARTBEAT_S:
                self.write()

    def _running_state(self) -> str:
        return self.doc["state"] if self.doc["state"] in ("stopping", "stopped", "failed") else "running"


def listener_class():
    """The ``StreamingQueryListener`` subclass (built lazily: pyspark is imported only by the driver)."""
    from pyspark.sql.streaming import StreamingQueryListener

    class StatusListener(StreamingQueryListener):
        """Feeds :class:`StreamStatus` from the queries named ``main_name`` and ``deadletter_name``."""

        def __init__(self, status: StreamStatus, main_name: str, deadletter_name: str) -> None:
            super().__init__()
            self.status = status
            self.names = {main_name: "main", deadletter_name: "deadletter"}
            self.ids: dict[str, str] = {}

        def onQueryStarted(self, event) -> None:
            role = self.names.get(event.name)
            if role:
                self.ids[str(event.id)] = role
                self.status.terminated.setdefault(role, threading.Event())

        def onQueryProgress(self, event) -> None:
            role = self.names.get(event.progress.name)
            try:
                if role == "main":
                    self.status.on_main_progress(event.progress)
                elif role == "deadletter":
                    self.status.on_deadletter_progress(event.progress)
            except Exception:  # a listener must never take the query down
                log.exception("could not update the status file")

        def onQueryIdle(self, event) -> None:
            if str(event.id) in self.ids:
                self.status.heartbeat()

        def onQueryTerminated(self, event) -> None:
            role = self.ids.get(str(event.id))
            if role:
                self.status.terminated.setdefault(role, threading.Event()).set()

    return StatusListener
