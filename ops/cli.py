"""``python -m ops up|down|status|env``: run the platform on this machine (``make up``, ``make down``, ...).

``up`` (what ``make up`` runs):

1. starts Airflow standalone (SQLite, LocalExecutor, this repository's ``dags/`` and ``plugins/``, no example
   DAGs) with ``AIRFLOW_HOME=$SENTIMENT_HOME/airflow``, its UI and API on ``127.0.0.1:$SENTIMENT_AIRFLOW_PORT``;
2. triggers the training DAG through the REST API (data from ``SENTIMENT140_URL``, default the official
   Sentiment140 URL; a ``file://`` URL or a local path works offline) and follows it with visible progress;
3. starts ``bentoml serve serving.service:TweetSentiment`` on ``127.0.0.1:$SENTIMENT_SERVICE_PORT`` with the
   champion that run packaged (a service of another model is rolled to it without a gap);
4. triggers ``sentiment_stream`` (the replay of the downloaded archive, offline, unless ``SENTIMENT_STREAM_SOURCE``
   says otherwise; ``--no-stream`` skips it) and waits until its Spark job runs;
5. starts the dashboard (``python -m serving.dashboard`` on ``$SENTIMENT_DASHBOARD_HOST:$SENTIMENT_DASHBOARD_PORT``,
   loopback by default; ``--no-dashboard`` skips it) and waits until it is healthy;
6. prints every URL and path a user needs.

It is idempotent: what already runs is kept (checked by pid files under ``$SENTIMENT_HOME/run/`` and by the
ports), and a new training run is only triggered when no run has packaged a model yet (``--retrain`` forces
one). ``down`` stops every stream cleanly (its ingest, then its Spark job after the running micro-batch), then
ends the process sessions ``up`` and the DAGs started (Airflow's task processes included) and checks that nothing
is left. ``status`` shows what runs and where, and each stream's health: rows/s, last batch age, totals, restarts
and model tag.

Credentials: the Airflow admin user is ``$SENTIMENT_AIRFLOW_USER`` (default ``admin``) with the password
``$SENTIMENT_AIRFLOW_PASSWORD``; without it a password is generated once, printed once and kept in
``$SENTIMENT_HOME/airflow/passwords.json`` (mode 600). Airflow reaches the service through the connection
``bentoml_default`` (``AIRFLOW_CONN_BENTOML_DEFAULT``), which ``up`` sets; ``SENTIMENT_API_KEY``, when set, is
the service's API key.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ml.processes import session_members
from ops.airflow_api import TRAINING_DAG, AirflowAPI, http
from ops.cluster import cli as cluster_cli
from ops.components import locked, read_pid, stop
from ops.layout import BIN, Layout, PlatformError, airflow_env, ensure_password
from ops.steps import ensure_trained, start_airflow, start_dashboard, start_service, training_conf
from ops.stream import describe, start_stream, stop_streams, stream_lines, streams
from sentiment_platform.pipeline import DEFAULT_FAMILIES

COMPONENTS = ("service", "airflow", "dashboard")  # what `up` starts itself (the stream's components come and go with it)
#: Stop order of ``down`` after the streams (their ingests and drivers) stopped.
STOP_ORDER = ("dashboard", "service-next", "service", "airflow")


def cmd_up(args: argparse.Namespace) -> int:
    layout = Layout(args.airflow_port, args.service_port)
    extra = json.loads(args.conf) if args.conf else {}
    families = [f.strip() for f in args.families.split(",") if f.strip()] if args.families else None
    started = time.monotonic()
    with locked(layout):
        api = start_airflow(layout, args.start_timeout)
        outcome = ensure_trained(api, layout, training_conf(families, extra), args.retrain, args.timeout)
        start_service(layout, outcome["model_tag"], args.start_timeout)
        stream = None if args.no_stream else start_stream(api, layout, args.start_timeout)
        dashboard = None if args.no_dashboard else start_dashboard(layout, args.start_timeout)
    print(f"\nThe platform is up ({time.monotonic() - started:.0f}s).\n")
    print_urls(layout, outcome, stream, dashboard)
    return 0


def print_urls(layout: Layout, outcome: dict[str, Any] | None, stream: dict[str, Any] | None = None,
               dashboard: dict[str, Any] | None = None) -> None:
    run_id = (outcome or {}).get("run_id")
    key = ' -H "Authorization: Bearer $SENTIMENT_API_KEY"' if layout.settings.service.api_key else ""
    lines = [
        ("Airflow UI", f"{layout.airflow_url}/  (user {layout.user}; password: $SENTIMENT_AIRFLOW_PASSWORD or "
                       f"{layout.passwords})"),
        ("Training DAG", f"{layout.airflow_url}/dags/{TRAINING_DAG}"),
        ("Leaderboard", f"{layout.airflow_url}/sentiment/leaderboard"),
    ]
    if run_id:
        lines.append(("Leaderboard files", str(layout.home / "reports" / run_id / "leaderboard.md")))
        lines.append(("Champion", f"{outcome.get('champion')} = {outcome.get('model_tag')} "
                                  f"(run {outcome.get('dag_run_id')})"))
    lines += [
        ("Service API docs", f"{layout.service_url}/  (OpenAPI spec: {layout.service_url}/docs.json)"),
        ("Service metrics", f"{layout.service_url}/metrics"),
        ("Score a tweet", f"curl -s -X POST {layout.service_url}/classify -H 'Content-Type: application/json'"
                          f"{key} -d '{{\"texts\": [\"I love this\", \"worst day ever\"]}}'"),
        *stream_lines(layout, stream),
        *([("Dashboard", f"{dashboard['url']}/")] if dashboard else []),
        ("Logs", str(layout.run_dir)),
        ("Health", "make status"),
        ("Stop", "make down"),
    ]
    for name, value in lines:
        print(f"  {name:<18} {value}")


def cmd_down(args: argparse.Namespace) -> int:
    from ml.endpoints import ENDPOINT_FILE
    from sentiment_platform.stream.service import stop_service

    layout = Layout()
    with locked(layout):
        for line in stop_streams(layout, grace=args.grace):
            print(line, flush=True)
        for component in STOP_ORDER:
            if component == "service":  # the service's lock: waits for a roll in progress; removes the endpoint file
                pids = stop_service(layout.settings, grace=args.grace)
            else:
                pids = stop(layout, component, grace=args.grace)
            if pids or component in COMPONENTS:
                print(f"{component}: " + (f"stopped {len(pids)} processes" if pids else "not running"), flush=True)
        for path in sorted(layout.run_dir.glob("*.json")) if layout.run_dir.is_dir() else []:
            if path.name != ENDPOINT_FILE:  # any other component a DAG started
                pids = stop(layout, path.stem, grace=args.grace)
                print(f"{path.stem}: " + (f"stopped {len(pids)} processes" if pids else "not running"), flush=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    layout = Layout()
    report: dict[str, Any] = {"home": str(layout.home)}
    for component in COMPONENTS:
        record = read_pid(layout, component)
        if record is None:
            report[component] = {"running": False}
            continue
        port = record.get("port")
        url = f"http://127.0.0.1:{port}"
        probe = {"service": "/readyz", "airflow": "/api/v2/monitor/health", "dashboard": "/_stcore/health"}
        url = record.get("url", url)
        ready = http("GET", f"{url}{probe[component]}")[0] == 200
        report[component] = {"running": not record.get("leader_gone"), "pid": record["pid"], "url": url,
                             "ready": ready, "processes": len(session_members(record["pid"])),
                             **({"model_tag": record["model_tag"]} if "model_tag" in record else {})}
    report["streams"] = streams(layout)
    airflow = report["airflow"]
    if airflow.get("ready"):
        layout.airflow_port = int(airflow["url"].rsplit(":", 1)[1])
        try:
            password, _ = ensure_password(layout)
            runs = AirflowAPI(layout.airflow_url, layout.user, password).runs(limit=3)
            report["training_runs"] = [{"run": r["dag_run_id"], "state": r["state"]} for r in runs]
        except PlatformError as exc:
            report["training_runs"] = str(exc)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"artifacts root   {report['home']}")
        for component in COMPONENTS:
            info = report[component]
            state = ("ready" if info.get("ready") else "starting or unhealthy") if info["running"] else "stopped"
            where = f" at {info['url']} (pid {info['pid']}, {info['processes']} processes)" if info["running"] else ""
            tag = f", model {info['model_tag']}" if info.get("model_tag") else ""
            print(f"{component:<16} {state}{where}{tag}")
        for stream in report["streams"]:
            for line in describe(stream):
                print(line)
        for run in report.get("training_runs", []) if isinstance(report.get("training_runs"), list) else []:
            print(f"training run     {run['run']}: {run['state']}")
    unhealthy = [s for s in report["streams"] if s["health"] in ("stalled", "dead")]
    ok = all(report[c].get("running") == bool(report[c].get("ready")) for c in COMPONENTS)
    return 0 if ok and not unhealthy else 1


def cmd_env(args: argparse.Namespace) -> int:
    """Print ``export`` lines that point the ``airflow`` CLI at the platform's Airflow."""
    import shlex

    layout = Layout()
    running = read_pid(layout, "airflow")
    if running and running.get("port"):
        layout.airflow_port = int(running["port"])
    env = airflow_env(layout)
    keys = sorted(k for k in env if k.startswith("AIRFLOW") and not k.startswith("AIRFLOW_CONN_"))
    for key in ["SENTIMENT_HOME", "BENTOML_HOME", *keys]:
        print(f"export {key}={shlex.quote(env[key])}")
    print(f"export PATH={shlex.quote(str(BIN))}:\"$PATH\"")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="Start Airflow, train (unless a champion exists), serve the champion.")
    up.add_argument("--airflow-port", type=int, help="Port of the Airflow UI/API (env SENTIMENT_AIRFLOW_PORT, "
                                                     "default 8080).")
    up.add_argument("--service-port", type=int, help="Port of the BentoML service (env SENTIMENT_SERVICE_PORT, "
                                                     "default 3000).")
    up.add_argument("--families", help="Comma-separated families to train (default: "
                                       f"{','.join(DEFAULT_FAMILIES)}).")
    up.add_argument("--conf", help="Extra DAG run conf as JSON, e.g. '{\"max_samples\": null}'.")
    up.add_argument("--retrain", action="store_true", help="Trigger a new training run even if one packaged a "
                                                           "model already.")
    up.add_argument("--timeout", type=float, default=4 * 3600, help="Seconds to wait for the training run.")
    up.add_argument("--start-timeout", type=float, default=300, help="Seconds to wait for Airflow, the service and "
                                                                     "the stream's Spark job to become ready.")
    up.add_argument("--no-stream", action="store_true", help="Do not start the stream (sentiment_stream on the "
                                                             "replay source, or SENTIMENT_STREAM_SOURCE).")
    up.add_argument("--no-dashboard", action="store_true", help="Do not start the dashboard "
                                                                "(python -m serving.dashboard).")
    down = sub.add_parser("down", help="Stop everything `up` started and check that nothing is left.")
    down.add_argument("--grace", type=float, default=30, help="Seconds between SIGTERM and SIGKILL.")
    status = sub.add_parser("status", help="Show what runs, where, each stream's health, and the latest training "
                                           "runs.")
    status.add_argument("--json", action="store_true", help="Print the status as JSON.")
    sub.add_parser("env", help="Print shell exports for the `airflow` CLI: eval \"$(python -m ops env)\".")
    cluster_cli.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return {"up": cmd_up, "down": cmd_down, "status": cmd_status, "env": cmd_env,
                "cluster": cluster_cli.main}[args.command](args)
    except PlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: what started keeps running; `make down` stops it", file=sys.stderr)
        return 130
