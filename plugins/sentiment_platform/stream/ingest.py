"""The stream's ingest (``python -m spark_apps.ingest``) as a long-running component ``ingest-<stream>``.

It runs outside Airflow's task processes (a session of its own, ``<home>/run/ingest-<stream>.json`` and ``.log``),
so a restart of the Spark job, or of an Airflow worker, does not touch it: posts keep landing, and the job reads
them from the landing folder when it is back. ``make status`` shows it and ``make down`` stops it. The X token
travels in the child's environment (``X_BEARER_TOKEN``), never on its command line or in a log.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ml import components
from ml.errors import DataError

if TYPE_CHECKING:
    from ml.settings import Settings

log = logging.getLogger(__name__)

#: Seconds an ingest must survive after its start to count as started (a bad file or token ends it at once).
SETTLE_S = 3.0


def component(name: str) -> str:
    return f"ingest-{name}"


def ingest_status(settings: Settings, name: str) -> dict[str, Any]:
    """The ingest's own status file (``<stream>/ingest/status.json``), ``{}`` when there is none."""
    try:
        doc = json.loads((settings.stream_dir(name) / "ingest" / "status.json").read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def start_ingest(settings: Settings, plan: Mapping[str, Any], *, x_token: str | None = None) -> dict[str, Any]:
    """Start the stream's ingest unless the same one already runs; return ``{"action", "pid", "cmd", "log"}``.

    An ingest of the stream with other arguments is stopped first (cleanly: it saves its position).

    Raises:
        DataError: the ingest exited at once (its log's last lines say why: a missing file, a refused token).
    """
    from sentiment_platform.stream.plan import REPO_ROOT

    name = plan["name"]
    comp = component(name)
    cmd = list(plan["ingest_args"])
    record = components.read(settings.run_dir, comp)
    if record and not record.get("leader_gone") and record.get("cmd") == cmd:
        log.info("ingest of stream %s already runs (pid %s): keeping it", name, record["pid"])
        return {"action": "kept", "pid": record["pid"], "cmd": cmd, "log": str(components.log_path(settings.run_dir, comp))}
    if record:
        log.info("ingest of stream %s runs with other options (pid %s): stopping it first", name, record["pid"])
        components.stop(settings.run_dir, comp)
    env = dict(os.environ)
    env.update({"SENTIMENT_HOME": str(settings.home), "PYTHONUNBUFFERED": "1"})
    if x_token:
        env["X_BEARER_TOKEN"] = x_token
    record = components.start(settings.run_dir, comp, cmd, env, cwd=REPO_ROOT, stream=name, source=plan["source"],
                              dag_run_id=plan.get("dag_run_id"))
    logfile = components.log_path(settings.run_dir, comp)
    log.info("ingest of stream %s started (pid %s): %s; log %s", name, record["pid"], " ".join(cmd[1:]), logfile)
    time.sleep(SETTLE_S)
    if components.read(settings.run_dir, comp) is None:
        status = ingest_status(settings, name)
        reason = status.get("stop_reason") or ""
        if not reason.startswith(("end of input", "max posts")):
            tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-15:])
            raise DataError(f"the ingest of stream {name} exited at once ({reason or 'no status'}):\n{tail}")
    return {"action": "started", "pid": record["pid"], "cmd": cmd, "log": str(logfile)}


def ingest_state(settings: Settings, name: str) -> dict[str, Any]:
    """Whether the ingest runs, and what its status file says (posts, stop reason, last error)."""
    record = components.read(settings.run_dir, component(name))
    status = ingest_status(settings, name)
    running = bool(record) and not record.get("leader_gone")
    return {"running": running, "pid": record["pid"] if running else None, "posts": status.get("posts"),
            "stop_reason": status.get("stop_reason"), "last_error": status.get("last_error"),
            "source": status.get("source")}


def stop_ingest(settings: Settings, name: str, grace: float = 30.0) -> list[int]:
    """Stop the stream's ingest cleanly (SIGTERM: it renames its last file into place and saves its position)."""
    pids = components.stop(settings.run_dir, component(name), grace)
    if pids:
        log.info("stopped the ingest of stream %s (%d processes)", name, len(pids))
    return pids
