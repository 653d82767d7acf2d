"""What ``up`` does, step by step: start Airflow, make sure a training run packaged a champion, serve it, open the
dashboard."""

from __future__ import annotations

import json
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

from ml.processes import http_status, port_open
from ops.airflow_api import TRAINING_DAG, AirflowAPI, wait_for
from ops.components import read_pid, spawn, stop
from ops.layout import BIN, Layout, PlatformError, airflow_env, base_env, ensure_password
from sentiment_platform.pipeline import DEFAULT_FAMILIES

FINISHED = {"success", "failed"}


def start_airflow(layout: Layout, timeout: float) -> AirflowAPI:
    """Start Airflow standalone unless it already runs; wait until it is healthy and the DAG is parsed."""
    password, generated = ensure_password(layout)
    api = AirflowAPI(layout.airflow_url, layout.user, password)
    running = read_pid(layout, "airflow")
    if running and running.get("leader_gone"):
        print("airflow: leftover processes of an earlier run; stopping them", flush=True)
        stop(layout, "airflow")
        running = None
    if running and running.get("port") != layout.airflow_port:
        raise PlatformError(f"airflow already runs on port {running.get('port')} (pid {running['pid']}); "
                            "run `make down` first to move it")
    if running:
        print(f"airflow: already running (pid {running['pid']}) at {layout.airflow_url}", flush=True)
        watch = {**running, "log": str(layout.log_file("airflow"))}
    else:
        if port_open(layout.airflow_port):
            raise PlatformError(f"port {layout.airflow_port} is in use by another program; set "
                                "SENTIMENT_AIRFLOW_PORT or --airflow-port")
        print(f"airflow: starting standalone (AIRFLOW_HOME={layout.airflow_home}, log "
              f"{layout.log_file('airflow')}) ...", flush=True)
        watch = spawn(layout, "airflow", [str(BIN / "airflow"), "standalone"], airflow_env(layout),
                      port=layout.airflow_port)
        watch["log"] = str(layout.log_file("airflow"))
    if generated:
        print(f"airflow: generated the password of {layout.user!r}: {password}  (shown once; kept in "
              f"{layout.passwords})", flush=True)
    started = time.monotonic()
    wait_for("airflow (scheduler, dag-processor, triggerer, api-server)", api.healthy, timeout, watch)
    wait_for(f"airflow: DAG {TRAINING_DAG}", lambda: api.dag() or _dag_import_error(api), timeout, watch, 2.0)
    print(f"airflow: ready in {time.monotonic() - started:.0f}s at {layout.airflow_url}", flush=True)
    return api


def _dag_import_error(api: AirflowAPI) -> None:
    for error in api.import_errors():
        if "sentiment140_training" in error.get("filename", ""):
            raise PlatformError(f"the training DAG does not import:\n{error.get('stack_trace')}")
    return None


def training_conf(families: list[str] | None, extra: dict[str, Any]) -> dict[str, Any]:
    """The DAG run conf of ``up``: the classical families by default and the data URL from the environment."""
    conf: dict[str, Any] = {"families": families or list(DEFAULT_FAMILIES)}
    from ml.settings import get_settings

    settings = get_settings()
    url = settings.data.url if settings.is_set("data_url") else None
    if url:
        if "://" not in url:  # a local path: make it absolute for the workers
            url = str(Path(url).expanduser().resolve())
        conf["data_url"] = url
    conf.update(extra)
    return conf


def ensure_trained(api: AirflowAPI, layout: Layout, conf: dict[str, Any], retrain: bool,
                   timeout: float) -> dict[str, Any]:
    """Make sure a run has packaged a champion: follow a running run, reuse a finished one, or trigger one."""
    api.unpause()
    active = api.runs(("queued", "running"), limit=1)
    if active:
        run = active[0]
        print(f"training: following the run already in progress: {run['dag_run_id']}", flush=True)
    else:
        run = None
        if not retrain:
            for previous in api.runs(("success", "failed"), limit=10):
                if _record(layout, previous["dag_run_id"]).get("model_tag"):
                    print(f"training: reusing run {previous['dag_run_id']} ({previous['state']}); "
                          "`--retrain` trains again", flush=True)
                    return _outcome(layout, previous)
        run = api.trigger(conf)
        print(f"training: triggered {run['dag_run_id']} with conf {json.dumps(conf)}", flush=True)
    print(f"training: follow it at {layout.airflow_url}/dags/{TRAINING_DAG}/runs/"
          f"{urllib.parse.quote(run['dag_run_id'], safe='')}", flush=True)
    run = follow(api, run["dag_run_id"], timeout)
    return _outcome(layout, run)


def follow(api: AirflowAPI, run_id: str, timeout: float, interval: float = 3.0) -> dict:
    """Poll the run, printing each task's state changes, until it finishes."""
    started = time.monotonic()
    seen: dict[tuple[str, int], str] = {}
    while True:
        run = api.run(run_id)
        for ti in sorted(api.task_instances(run_id), key=lambda t: (t.get("start_date") or "~", t["task_id"])):
            state, index = ti.get("state"), ti.get("map_index", -1)
            if not state or seen.get((ti["task_id"], index)) == state:
                continue  # not scheduled yet, or no change
            seen[(ti["task_id"], index)] = state
            name = ti["task_id"] + (f"[{ti.get('rendered_map_index') or index}]" if index >= 0 else "")
            print(f"  [{time.monotonic() - started:6.0f}s] {name:<28} {state}", flush=True)
        if run["state"] in FINISHED:
            print(f"training: run {run_id} {run['state']} after {time.monotonic() - started:.0f}s", flush=True)
            return run
        if time.monotonic() - started > timeout:
            raise PlatformError(f"training: run {run_id} still {run['state']} after {timeout:.0f}s; it keeps "
                                "running in Airflow: `make up` again follows it")
        time.sleep(interval)


def _record(layout: Layout, dag_run_id: str) -> dict[str, Any]:
    from sentiment_platform.pipeline import run_id_from

    path = layout.home / "reports" / run_id_from(dag_run_id) / "run.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _outcome(layout: Layout, run: dict) -> dict[str, Any]:
    record = _record(layout, run["dag_run_id"])
    if not record.get("model_tag"):
        raise PlatformError(f"training run {run['dag_run_id']} {run['state']} without packaging a model; "
                            f"see its task logs in the UI ({layout.airflow_url}/dags/{TRAINING_DAG})")
    if run["state"] != "success":
        print(f"training: WARNING: run {run['dag_run_id']} failed after packaging "
              f"{record['model_tag']}: failed families {record.get('failed_families') or '?'}", flush=True)
    return {"dag_run_id": run["dag_run_id"], "state": run["state"], **record}


def start_service(layout: Layout, model_tag: str, timeout: float) -> dict[str, Any]:
    """Serve ``model_tag`` with ``bentoml serve`` unless it is served already (a running service of another model
    is rolled to it without a gap, see :mod:`sentiment_platform.stream.service`); wait for ``/readyz``."""
    from ml.errors import MLError
    from sentiment_platform.stream.service import current, ensure_service

    settings = layout.settings.override(service_port=layout.service_port)
    running = current(settings)
    if running and running.get("model_tag") != model_tag:
        print(f"service: rolling {running.get('model_tag')} -> {model_tag} (the new one is ready before the old "
              "one stops) ...", flush=True)
    elif not running:
        print(f"service: starting bentoml serve with {model_tag} (log {layout.log_file('service')}) ...", flush=True)
    started = time.monotonic()
    try:
        outcome = ensure_service(settings, model_tag, timeout=timeout)
    except MLError as exc:
        raise PlatformError(f"service: {exc}") from None
    record = read_pid(layout, "service") or {}
    if outcome["action"] == "kept":
        print(f"service: already serving {model_tag} (pid {record.get('pid')}) at {outcome['url']}", flush=True)
    else:
        print(f"service: ready in {time.monotonic() - started:.0f}s at {outcome['url']}", flush=True)
    return {**record, "log": str(layout.log_file("service"))}


def start_dashboard(layout: Layout, timeout: float) -> dict[str, Any]:
    """Serve the dashboard (``python -m serving.dashboard``) unless it already runs; wait until it is healthy."""
    dash = layout.settings.dashboard
    url = f"http://{'127.0.0.1' if dash.host in ('0.0.0.0', 'localhost') else dash.host}:{dash.port}"
    running = read_pid(layout, "dashboard")
    if running and running.get("leader_gone"):
        stop(layout, "dashboard")
        running = None
    if running:
        print(f"dashboard: already running (pid {running['pid']}) at {url}/", flush=True)
        return {**running, "url": url}
    if port_open(dash.port):
        raise PlatformError(f"port {dash.port} is in use by another program; set SENTIMENT_DASHBOARD_PORT")
    print(f"dashboard: starting (log {layout.log_file('dashboard')}) ...", flush=True)
    record = spawn(layout, "dashboard", [sys.executable, "-m", "serving.dashboard"], base_env(layout),
                   port=dash.port, url=url)
    record["log"] = str(layout.log_file("dashboard"))
    started = time.monotonic()
    wait_for("dashboard", lambda: http_status(f"{url}/_stcore/health") == 200 or None, timeout, record)
    print(f"dashboard: ready in {time.monotonic() - started:.0f}s at {url}/", flush=True)
    return {**record, "url": url}
