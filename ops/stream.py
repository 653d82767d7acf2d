"""The stream as ``make up`` runs it: trigger ``sentiment_stream`` (replay by default, offline), wait until its Spark
job runs, report every stream's health (``make status``) and stop every stream cleanly (``make down``)."""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path
from typing import Any

from ml import components
from ops.airflow_api import AirflowAPI, wait_for
from ops.layout import Layout, PlatformError

STREAM_DAG = "sentiment_stream"
#: DAGs ``up`` makes sure are active (they are created unpaused; a user may have paused one).
STREAM_DAGS = (STREAM_DAG, "sentiment_stream_stop", "sentiment_stream_health", "sentiment_champion_rollout",
               "sentiment_daily_report")


def stream_conf(layout: Layout) -> dict[str, Any]:
    """The conf ``up`` triggers the stream with: the stream settings of this environment (replay by default)."""
    stream = layout.settings.stream
    conf: dict[str, Any] = {"stream_name": stream.name, "source": stream.source, "keywords": stream.keywords}
    if stream.replay_file is not None:
        conf["replay_file"] = str(Path(stream.replay_file).expanduser().resolve())
    return conf


def start_stream(api: AirflowAPI, layout: Layout, timeout: float) -> dict[str, Any]:
    """Trigger ``sentiment_stream`` unless a run is active; wait until its Spark job runs (or the run fails)."""
    from spark_apps.stream.status import read_status

    stream_api = api.for_dag(STREAM_DAG)
    for dag_id in STREAM_DAGS:
        api.for_dag(dag_id).unpause()
    active = stream_api.runs(("queued", "running"), limit=1)
    if active:
        run = active[0]
        print(f"stream: run {run['dag_run_id']} is already active", flush=True)
        name = (run.get("conf") or {}).get("stream_name") or layout.settings.stream.name
    else:
        conf = stream_conf(layout)
        run = stream_api.trigger(conf)
        name = conf["stream_name"]
        print(f"stream: triggered {STREAM_DAG} ({conf['source']}) as {run['dag_run_id']}", flush=True)
    print(f"stream: follow it at {layout.airflow_url}/dags/{STREAM_DAG}/runs/"
          f"{urllib.parse.quote(run['dag_run_id'], safe='')}", flush=True)
    folder = layout.settings.stream_dir(name)
    started = time.monotonic()

    def running() -> bool:
        state = stream_api.run(run["dag_run_id"])["state"]
        if state in ("failed", "success"):
            failed = [ti["task_id"] for ti in stream_api.task_instances(run["dag_run_id"]) if ti.get("state") == "failed"]
            raise PlatformError(f"the stream's run {run['dag_run_id']} {state} (failed tasks: {', '.join(failed) or '-'});"
                                f" see its task logs at {layout.airflow_url}/dags/{STREAM_DAG}")
        return (read_status(folder / "status.json") or {}).get("state") == "running"

    wait_for(f"stream {name}: the Spark job", running, timeout, interval=2.0)
    print(f"stream: {name} runs (Spark job up in {time.monotonic() - started:.0f}s)", flush=True)
    return {"name": name, "dag_run_id": run["dag_run_id"], "folder": str(folder)}


def stream_lines(layout: Layout, stream: dict[str, Any] | None) -> list[tuple[str, str]]:
    """What ``up`` prints about the stream."""
    if not stream:
        return []
    folder = Path(stream["folder"])
    return [
        ("Stream DAG", f"{layout.airflow_url}/dags/{STREAM_DAG}  (stop: sentiment_stream_stop, or make down)"),
        ("Stream landing", f"{folder / 'landing'}/"),
        ("Stream output", f"{folder / 'output'}/  (parquet, by date and keyword)"),
        ("Stream status", f"{folder / 'status.json'}  (make status; python -m spark_apps.stream status "
                          f"--name {stream['name']})"),
    ]


def streams(layout: Layout) -> list[dict[str, Any]]:
    """Every stream under ``<home>/stream/`` with a status file: its health, rates, totals, restarts, model."""
    from sentiment_platform.stream.health import assess
    from sentiment_platform.stream.ingest import ingest_state
    from sentiment_platform.stream.record import read_record
    from spark_apps.stream.paths import StreamPaths

    settings = layout.settings
    root = settings.stream_root
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        paths = StreamPaths.under(folder)
        if not paths.status.is_file():
            continue
        health = assess(paths, trigger_s=settings.stream.trigger_seconds, stall_intervals=settings.stream.stall_intervals)
        status = health.status or {}
        found.append({
            "stream": folder.name, "health": health.verdict, "cause": health.cause, "state": health.state,
            "driver_pid": health.driver_pid if health.driver_alive else None,
            "rows_per_s": status.get("processed_rows_per_s"), "input_rows_per_s": status.get("input_rows_per_s"),
            "last_batch_age_s": None if health.batch_age_s is None else round(health.batch_age_s, 1),
            "totals": status.get("totals") or {}, "restarts": read_record(folder).get("restarts", 0),
            "model": status.get("model"), "ingest": ingest_state(settings, folder.name),
            "folder": str(folder),
        })
    return found


def describe(stream: dict[str, Any]) -> list[str]:
    """``make status`` lines of one stream."""
    totals = stream["totals"]
    age = stream["last_batch_age_s"]
    health = stream["health"] + (f" ({stream['cause']})" if stream["health"] == "stopped" and stream["cause"] else "")
    line = (f"{'stream ' + stream['stream']:<16} {health}"
            + (f" (driver pid {stream['driver_pid']})" if stream["driver_pid"] else "")
            + f": {stream['rows_per_s'] if stream['rows_per_s'] is not None else '-'} rows/s, last batch "
            + (f"{age:.0f}s ago" if age is not None else "never")
            + f", {totals.get('rows_in', 0)} in / {totals.get('written', 0)} written / "
            + f"{totals.get('dead_letters', 0)} dead letters / {totals.get('duplicates', 0)} duplicates, "
            + f"restarts {stream['restarts']}, model {stream['model'] or '-'}")
    lines = [line]
    if stream["cause"] and stream["health"] not in ("ok", "idle", "stopped"):
        lines.append(f"{'':<16} {stream['cause']}")
    ingest = stream["ingest"]
    lines.append(f"{'ingest ' + stream['stream']:<16} "
                 + (f"running (pid {ingest['pid']})" if ingest["running"] else f"stopped ({ingest['stop_reason']})")
                 + f": {ingest['source'] or '-'}, {ingest['posts'] or 0} posts"
                 + (f", last error {ingest['last_error']}" if ingest.get("last_error") else ""))
    return lines


def stop_streams(layout: Layout, grace: float) -> list[str]:
    """Stop every stream cleanly: its ingest (which saves its position), then its driver after the running
    micro-batch; note the stop so that no launch task starts it again. Returns what it did, one line each."""
    from sentiment_platform.stream import record
    from spark_apps.stream.control import request_stop
    from spark_apps.stream.lock import is_locked
    from spark_apps.stream.paths import StreamPaths

    done = []
    for path in sorted(layout.run_dir.glob("ingest-*.json")):
        pids = components.stop(layout.run_dir, path.stem, grace)
        done.append(f"{path.stem}: " + (f"stopped {len(pids)} processes" if pids else "not running"))
    root = layout.settings.stream_root
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        paths = StreamPaths.under(folder)
        if not is_locked(paths.lock):
            continue
        record.request_stop_mark(folder, "make down")
        outcome = request_stop(paths.stop_file, paths.lock, timeout=layout.settings.stream.stop_grace_s + grace)
        done.append(f"stream {folder.name}: " + ("stopped cleanly" if outcome["stopped"] else "still running"))
    return done
