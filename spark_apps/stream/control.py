"""Stopping the job cleanly: SIGTERM/SIGINT (to the Python driver, to spark-submit's JVM, or to the whole process
group), or a stop file that works wherever the driver runs.

Under ``spark-submit`` the Python driver is a child of the JVM, and a signal sent to the process group reaches
both. The JVM's own handler would run its shutdown hooks, which stop the SparkContext under the running batch, so
:func:`install_handlers` replaces the JVM's TERM/INT handlers with one that calls back into Python: whichever
process receives the signal, the driver gets the same stop request. The driver then lets the running micro-batch
finish (up to ``stop_grace_s``), stops the queries, writes ``state: stopped`` and exits 0. A second signal stops
the queries at once (a batch cut short is re-run from the checkpoint on restart: still exactly once).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class StopRequest:
    """Set by a signal handler, the JVM's handler or the stop file; polled by the driver's main loop."""

    def __init__(self, stop_file: Path | None = None) -> None:
        self.stop_file = Path(stop_file) if stop_file else None
        self.event = threading.Event()
        self.reason: str | None = None
        self.force = False

    def request(self, reason: str) -> None:
        if self.event.is_set():
            if not self.force:
                log.warning("second stop request (%s): stopping the queries now", reason)
            self.force = True
            return
        self.reason = reason
        log.info("stop requested (%s): stopping after the running micro-batch", reason)
        self.event.set()

    @property
    def requested(self) -> bool:
        if not self.event.is_set() and self.stop_file is not None and self.stop_file.exists():
            self.request(f"stop file {self.stop_file}")
        return self.event.is_set()


class _JvmSignalHandler:
    """A ``sun.misc.SignalHandler`` implemented in Python (a py4j callback)."""

    def __init__(self, stop: StopRequest) -> None:
        self.stop = stop

    def handle(self, sig: Any) -> None:
        self.stop.request(f"SIG{sig.getName()} to the JVM")

    class Java:
        implements = ["sun.misc.SignalHandler"]


def install_handlers(stop: StopRequest, spark: Any | None = None) -> list[Any]:
    """Route SIGTERM and SIGINT of this process, and of the JVM when ``spark`` is given, to ``stop``."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda num, _frame: stop.request(signal.Signals(num).name))
    keep: list[Any] = []
    if spark is not None:
        from pyspark.java_gateway import ensure_callback_server_started

        context = spark.sparkContext
        ensure_callback_server_started(context._gateway)
        handler = _JvmSignalHandler(stop)
        jvm = context._jvm
        for name in ("TERM", "INT"):
            try:
                jvm.sun.misc.Signal.handle(jvm.sun.misc.Signal(name), handler)
            except Exception as exc:  # not fatal: a signal to the JVM then ends it as before
                log.warning("could not take over the JVM's SIG%s handler (%s)", name, exc)
        keep.append(handler)
    return keep


def request_stop(stop_file: Path, lock_path: Path, timeout: float = 300.0) -> dict[str, Any]:
    """Ask a running driver to stop (the stop file, plus SIGTERM when it runs on this host); wait for it to go.

    Returns what happened: ``{"was_running": bool, "stopped": bool, "holder": {...}}``.
    """
    import socket

    from spark_apps.stream.lock import is_locked, read_holder

    holder = read_holder(lock_path)
    if not is_locked(lock_path):
        return {"was_running": False, "stopped": True, "holder": holder}
    Path(stop_file).parent.mkdir(parents=True, exist_ok=True)
    Path(stop_file).write_text(f"stop requested by pid {os.getpid()} on {socket.gethostname()}\n")
    if holder.get("host") == socket.gethostname() and holder.get("pid"):
        try:
            os.kill(int(holder["pid"]), signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + timeout
    while is_locked(lock_path) and time.monotonic() < deadline:
        time.sleep(0.5)
    return {"was_running": True, "stopped": not is_locked(lock_path), "holder": holder}
