"""``python -m ops cluster up|down|status``: the cluster column of "Beyond one machine" on this machine's loopback.

``up`` starts a Spark standalone master and ``SENTIMENT_SPARK_WORKERS`` workers, PostgreSQL, Redis, and Airflow
with its processes split (api-server, scheduler, dag-processor, triggerer) and ``SENTIMENT_CELERY_WORKERS``
Celery workers, on the ports of the ``cluster`` settings (``python -m ml config``). Airflow gets the same DAGs,
plugins and connections as ``make up``'s, with ``spark_default`` pointing at the standalone master. Every
process is recorded under ``$SENTIMENT_HOME/run/cluster/`` with its log; ``down`` stops them all, ``status``
shows them. ``make up`` (Airflow standalone) and ``cluster up`` share the Airflow port: run one of them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ml import components
from ops.airflow_api import http
from ops.cluster.airflow import CeleryAirflow
from ops.cluster.engines import HOST, EngineError, Postgres, Redis, SparkStandalone, default_postgres_dir
from ops.layout import Layout, PlatformError

#: stop order: nothing new is scheduled, workers go, then the services they use
STOP_ORDER = ("airflow-scheduler", "airflow-worker-*", "airflow-triggerer", "airflow-dag-processor",
              "airflow-api-server", "spark-worker-*", "spark-master", "redis", "postgres")


def run_dir(layout: Layout) -> Path:
    return layout.run_dir / "cluster"


def spark_connection(master_port: int) -> dict[str, Any]:
    """``spark_default`` for a standalone master: client deploy mode (Spark refuses cluster mode for Python
    applications on a standalone master; see docs/operations.md)."""
    return {"conn_type": "spark", "host": f"spark://{HOST}", "port": master_port, "extra": {"deploy-mode": "client"}}


def records(layout: Layout) -> dict[str, dict[str, Any] | None]:
    folder = run_dir(layout)
    names = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    return {name: components.read(folder, name) for name in names}


def cmd_up(args: argparse.Namespace) -> int:
    layout = Layout(args.airflow_port)
    settings = layout.settings.cluster
    folder = run_dir(layout)
    running = [name for name, record in records(layout).items() if record]
    if running:
        raise PlatformError(f"the cluster already runs ({', '.join(running)}): `python -m ops cluster down` first")
    started: list[Any] = []
    try:
        if not args.no_spark:
            spark = SparkStandalone(folder, workers=settings.spark_workers, cores=settings.spark_worker_cores,
                                    memory=settings.spark_worker_memory, port=settings.spark_master_port,
                                    ui_port=settings.spark_master_port + 1000,
                                    work_dir=layout.home / "cluster" / "spark-work")
            print(f"spark: master {spark.master_url} and {settings.spark_workers} workers ...", flush=True)
            started.append(spark.start(args.timeout))
        if not args.no_airflow:
            data = settings.postgres_dir or default_postgres_dir(layout.home)
            print(f"postgres: {HOST}:{settings.postgres_port}, data in {data} ...", flush=True)
            postgres = Postgres(folder, data, port=settings.postgres_port)
            started.append(postgres.start(args.timeout))
            redis = Redis(folder, port=settings.redis_port)
            started.append(redis.start(args.timeout))
            extra = {"AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(spark_connection(settings.spark_master_port))}
            airflow = CeleryAirflow(layout, folder, database_url=postgres.url, broker_url=redis.url,
                                    workers=settings.celery_workers, concurrency=settings.celery_concurrency,
                                    extra_env=extra)
            print(f"airflow: db migrate, then api-server, scheduler, dag-processor, triggerer and "
                  f"{settings.celery_workers} Celery workers ...", flush=True)
            started.append(airflow)
            airflow.start(args.timeout)
    except (EngineError, TimeoutError, components.ProcessError) as exc:
        for engine in reversed(started):
            engine.stop()
        raise PlatformError(str(exc)) from None
    print("\nThe cluster is up.\n")
    print_urls(layout)
    return 0


def print_urls(layout: Layout) -> None:
    settings = layout.settings.cluster
    master = f"spark://{HOST}:{settings.spark_master_port}"
    alive = records(layout)
    lines = []
    if alive.get("spark-master"):
        lines += [("Spark master", f"{master}  (UI http://{HOST}:{settings.spark_master_port + 1000})"),
                  ("Submit the job", f"spark-submit --master {master} spark_apps/stream/job.py --name tweets")]
    if alive.get("airflow-api-server"):
        lines += [("Airflow UI", f"{layout.airflow_url}/  (user {layout.user}; password: "
                                 f"$SENTIMENT_AIRFLOW_PASSWORD or {layout.passwords})"),
                  ("Metadata DB", f"postgresql://airflow@{HOST}:{settings.postgres_port}/airflow"),
                  ("Celery broker", f"redis://{HOST}:{settings.redis_port}/0"),
                  ("spark_default", json.dumps(spark_connection(settings.spark_master_port)))]
    lines += [("Logs", str(run_dir(layout))), ("Stop", "python -m ops cluster down")]
    for name, value in lines:
        print(f"  {name:<16} {value}")


def _matching(names: list[str], pattern: str) -> list[str]:
    if pattern.endswith("*"):
        return sorted((n for n in names if n.startswith(pattern[:-1])), key=lambda n: (len(n), n))
    return [n for n in names if n == pattern]


def cmd_down(args: argparse.Namespace) -> int:
    layout = Layout()
    folder = run_dir(layout)
    names = list(records(layout))
    for pattern in STOP_ORDER:
        for name in _matching(names, pattern):
            if name == "postgres":
                Postgres.stop_recorded(folder)
                pids = []
            else:
                pids = components.stop(folder, name, grace=args.grace)
            print(f"{name}: " + (f"stopped {len(pids)} processes" if pids else "stopped"), flush=True)
    if not names:
        print("the cluster is not running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    layout = Layout()
    report: dict[str, Any] = {name: {"running": bool(r and not r.get("leader_gone")),
                                     **({"pid": r["pid"]} if r else {})} for name, r in records(layout).items()}
    master = report.get("spark-master")
    if master and master["running"]:
        state = http("GET", f"http://{HOST}:{layout.settings.cluster.spark_master_port + 1000}/json/")[1]
        if isinstance(state, dict):
            master.update(alive_workers=state.get("aliveworkers"), active_apps=len(state.get("activeapps", [])))
    api = report.get("airflow-api-server")
    if api and api["running"]:
        api["health"] = http("GET", f"{layout.airflow_url}/api/v2/monitor/health")[1]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        if not report:
            print("the cluster is not running")
        for name, info in report.items():
            extra = {k: v for k, v in info.items() if k not in ("running", "pid", "health")}
            print(f"{name:<24} {'running' if info['running'] else 'stopped'}"
                  + (f" (pid {info['pid']})" if info.get("pid") else "") + (f" {extra}" if extra else ""))
    return 0 if all(info["running"] for info in report.values()) else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    cluster = sub.add_parser("cluster", help="Spark standalone + PostgreSQL + Redis + Airflow with Celery workers "
                                             "on loopback: up, down, status.")
    verbs = cluster.add_subparsers(dest="verb", required=True)
    up = verbs.add_parser("up", help="Start the cluster (ports and sizes from the `cluster` settings).")
    up.add_argument("--airflow-port", type=int, help="Port of the Airflow UI/API (env SENTIMENT_AIRFLOW_PORT).")
    up.add_argument("--no-spark", action="store_true", help="Do not start the Spark standalone cluster.")
    up.add_argument("--no-airflow", action="store_true", help="Do not start PostgreSQL, Redis and Airflow.")
    up.add_argument("--timeout", type=float, default=300, help="Seconds to wait for each engine to be ready.")
    down = verbs.add_parser("down", help="Stop every process `cluster up` started.")
    down.add_argument("--grace", type=float, default=30, help="Seconds between SIGTERM and SIGKILL.")
    status = verbs.add_parser("status", help="Show what runs (exit 1 when something recorded is not running).")
    status.add_argument("--json", action="store_true", help="Print the status as JSON.")


def main(args: argparse.Namespace) -> int:
    return {"up": cmd_up, "down": cmd_down, "status": cmd_status}[args.verb](args)
