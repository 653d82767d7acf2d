#!/usr/bin/env python
"""Start, stop and inspect the platform on this machine: ``python scripts/platform.py up|down|status``.

``up`` (what ``make up`` runs):

1. starts Airflow standalone (SQLite, LocalExecutor, this repository's ``dags/`` and ``plugins/``, no example
   DAGs) with ``AIRFLOW_HOME=$SENTIMENT_HOME/airflow``, its UI and API on ``127.0.0.1:$SENTIMENT_AIRFLOW_PORT``;
2. triggers the training DAG through the REST API (data from ``SENTIMENT140_URL``, default the official
   Sentiment140 URL; a ``file://`` URL or a local path works offline) and follows it with visible progress;
3. starts ``bentoml serve serving.service:TweetSentiment`` on ``127.0.0.1:$SENTIMENT_SERVICE_PORT`` with the
   champion that run packaged;
4. prints every URL a user needs.

It is idempotent: what already runs is kept (checked by pid files under ``$SENTIMENT_HOME/run/`` and by the
ports), and a new training run is only triggered when no run has packaged a model yet (``--retrain`` forces
one). ``down`` ends the process sessions ``up`` started (Airflow's task processes included) and checks that
nothing is left. ``status`` shows what runs and where.

Credentials: the Airflow admin user is ``$SENTIMENT_AIRFLOW_USER`` (default ``admin``) with the password
``$SENTIMENT_AIRFLOW_PASSWORD``; without it a password is generated once, printed once and kept in
``$SENTIMENT_HOME/airflow/passwords.json`` (mode 600). Airflow reaches the service through the connection
``bentoml_default`` (``AIRFLOW_CONN_BENTOML_DEFAULT``), which ``up`` sets; ``SENTIMENT_API_KEY``, when set, is
the service's API key.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# This file is named like the standard library's `platform`: keep its folder off the import path so that
# `import platform` anywhere in this process finds the real module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ml.pipeline import DEFAULT_FAMILIES  # noqa: E402  (the DAG's default families, one definition)

BIN = Path(sys.executable).parent  # the virtualenv's bin/: airflow, bentoml
DAG_ID = "sentiment140_training"
SERVICE = "serving.service:TweetSentiment"
COMPONENTS = ("service", "airflow")  # stop order
FINISHED = {"success", "failed"}


class PlatformError(RuntimeError):
    """Something the user has to fix; printed as one line."""


# ---------------------------------------------------------------------------------------------- config
def _settings():
    """The platform's settings (``ml.settings``): one definition of the artifacts root and the model store."""
    from ml.settings import get_settings

    return get_settings()


class Layout:
    """Where everything of the platform lives, and on which ports it listens."""

    def __init__(self, airflow_port: int | None = None, service_port: int | None = None) -> None:
        settings = _settings()
        self.home = settings.home
        self.run_dir = self.home / "run"
        self.airflow_home = self.home / "airflow"
        self.bentoml_home = settings.bentoml_home
        self.passwords = self.airflow_home / "passwords.json"
        self.user = os.environ.get("SENTIMENT_AIRFLOW_USER") or "admin"
        self.airflow_port = airflow_port or int(os.environ.get("SENTIMENT_AIRFLOW_PORT") or 8080)
        self.service_port = service_port or int(os.environ.get("SENTIMENT_SERVICE_PORT") or 3000)

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.airflow_port}"

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"

    def pid_file(self, component: str) -> Path:
        return self.run_dir / f"{component}.json"

    def log_file(self, component: str) -> Path:
        return self.run_dir / f"{component}.log"


def _base_env(layout: Layout) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "SENTIMENT_HOME": str(layout.home),
        "BENTOML_HOME": str(layout.bentoml_home),
        "BENTOML_DO_NOT_TRACK": "True",
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    })
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def airflow_env(layout: Layout) -> dict[str, str]:
    """The environment of the Airflow processes (every setting ``up`` imposes is here)."""
    env = _base_env(layout)
    connection: dict[str, Any] = {"conn_type": "http", "host": "127.0.0.1", "port": layout.service_port,
                                  "extra": {"timeout": 30, "retries": 3}}
    if env.get("SENTIMENT_API_KEY"):
        connection["password"] = env["SENTIMENT_API_KEY"]
    parallelism = os.environ.get("SENTIMENT_AIRFLOW_PARALLELISM") or str(max(8, 2 * (os.cpu_count() or 1)))
    env.update({
        "AIRFLOW_HOME": str(layout.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": parallelism,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{layout.user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(layout.passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{layout.airflow_url}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(layout.airflow_port),
        "AIRFLOW__API__BASE_URL": layout.airflow_url,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "10",
        "AIRFLOW_CONN_BENTOML_DEFAULT": json.dumps(connection),
        "SENTIMENT_SERVICE_URL": layout.service_url,
    })
    return env


def ensure_password(layout: Layout) -> tuple[str, bool]:
    """The admin password (from the environment, or generated once); ``True`` when it was just generated."""
    layout.airflow_home.mkdir(parents=True, exist_ok=True)
    stored = json.loads(layout.passwords.read_text()) if layout.passwords.is_file() else {}
    wanted = os.environ.get("SENTIMENT_AIRFLOW_PASSWORD")
    generated = False
    if wanted:
        password = wanted
    elif stored.get(layout.user):
        password = stored[layout.user]
    else:
        password, generated = secrets.token_urlsafe(12), True
    if stored.get(layout.user) != password:
        stored[layout.user] = password
        fd = os.open(layout.passwords, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh)
    os.chmod(layout.passwords, 0o600)
    return password, generated


# -------------------------------------------------------------------------------------------- processes
def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (guards against a recycled pid), ``None`` if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def _session_members(sid: int) -> list[int]:
    """Live processes of session ``sid`` (the session ``up`` gave each component)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def read_pid(layout: Layout, component: str) -> dict[str, Any] | None:
    """The component's record if its leader process still runs, else ``None`` (a stale file is removed)."""
    path = layout.pid_file(component)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if _start_time(record["pid"]) == record["start_time"]:
        return record
    if not _session_members(record["pid"]):
        path.unlink(missing_ok=True)
        return None
    return {**record, "leader_gone": True}


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def spawn(layout: Layout, component: str, cmd: list[str], env: dict[str, str], **facts: Any) -> dict[str, Any]:
    """Start ``cmd`` in its own session with its output in ``run/<component>.log``; record its pid."""
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    log = open(layout.log_file(component), "ab")  # the child process keeps its own copy
    log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
    log.flush()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    record = {"pid": proc.pid, "start_time": _start_time(proc.pid), "cmd": cmd, **facts}
    layout.pid_file(component).write_text(json.dumps(record, indent=2))
    return record


def stop(layout: Layout, component: str, grace: float = 30.0) -> list[int]:
    """End every process of the component's session (SIGTERM, then SIGKILL after ``grace`` s); return the pids."""
    path = layout.pid_file(component)
    if not path.is_file():
        return []
    record = json.loads(path.read_text())
    sid = record["pid"]
    if _start_time(sid) not in (None, record["start_time"]):
        path.unlink(missing_ok=True)  # the pid was recycled by an unrelated process
        return []
    members = _session_members(sid)
    _signal_all(members, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _session_members(sid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _session_members(sid)
    if left:
        _signal_all(left, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _session_members(sid) and time.monotonic() < deadline:
            time.sleep(0.1)
    left = _session_members(sid)
    if left:
        raise PlatformError(f"{component}: processes {left} survived SIGKILL")
    path.unlink(missing_ok=True)
    return members


def _signal_all(pids: list[int], sig: int) -> None:
    groups = set()
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            continue
    for group in groups:
        try:
            os.killpg(group, sig)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in pids:  # members that left their group
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


@contextmanager
def locked(layout: Layout):
    """One ``up``/``down`` at a time."""
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    with open(layout.run_dir / "platform.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("another `platform.py up/down` is running; waiting for it ...", flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


# ------------------------------------------------------------------------------------------------- HTTP
def http(method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 10.0) -> tuple[int, Any]:
    """One JSON request; returns (status, parsed body or text). Connection errors give status 0."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError):
        return 0, None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_for(what: str, check, timeout: float, watch: dict[str, Any] | None = None, interval: float = 1.0):
    """Poll ``check()`` until it returns a truthy value; fail after ``timeout`` s or if the process dies."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if watch is not None and _start_time(watch["pid"]) != watch["start_time"]:
            raise PlatformError(f"{what}: the process exited; see {watch.get('log')}")
        if time.monotonic() > deadline:
            raise PlatformError(f"{what}: not ready after {timeout:.0f}s" +
                                (f"; see {watch.get('log')}" if watch else ""))
        time.sleep(interval)


class AirflowAPI:
    """The few REST API v2 calls ``up`` needs (token from ``/auth/token``)."""

    def __init__(self, url: str, user: str, password: str) -> None:
        self.url, self.user, self.password = url, user, password
        self._token: str | None = None

    def healthy(self) -> bool:
        status, body = http("GET", f"{self.url}/api/v2/monitor/health")
        if status != 200 or not isinstance(body, dict):
            return False
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all((body.get(p) or {}).get("status") == "healthy" for p in parts)

    def token(self) -> str:
        if self._token is None:
            status, body = http("POST", f"{self.url}/auth/token",
                                {"username": self.user, "password": self.password})
            if status not in (200, 201) or not isinstance(body, dict):
                raise PlatformError(f"Airflow refused the credentials of {self.user!r} (HTTP {status}); "
                                    f"check SENTIMENT_AIRFLOW_PASSWORD or {self.user}'s entry in the passwords file")
            self._token = body["access_token"]
        return self._token

    def call(self, method: str, path: str, body: Any = None) -> Any:
        status, data = http(method, f"{self.url}/api/v2{path}", body, self.token(), timeout=30)
        if status == 401:  # expired token
            self._token = None
            status, data = http(method, f"{self.url}/api/v2{path}", body, self.token(), timeout=30)
        if not 200 <= status < 300:
            raise PlatformError(f"{method} /api/v2{path}: HTTP {status}: {str(data)[:300]}")
        return data

    def dag(self) -> dict | None:
        status, data = http("GET", f"{self.url}/api/v2/dags/{DAG_ID}", token=self.token())
        return data if status == 200 else None

    def import_errors(self) -> list[dict]:
        return self.call("GET", "/importErrors").get("import_errors", [])

    def runs(self, states: tuple[str, ...] = (), limit: int = 20) -> list[dict]:
        query = [("order_by", "-run_after"), ("limit", str(limit))] + [("state", s) for s in states]
        return self.call("GET", f"/dags/{DAG_ID}/dagRuns?{urllib.parse.urlencode(query)}")["dag_runs"]

    def run(self, run_id: str) -> dict:
        return self.call("GET", f"/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def task_instances(self, run_id: str) -> list[dict]:
        path = f"/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances?limit=100"
        return self.call("GET", path)["task_instances"]

    def unpause(self) -> None:
        self.call("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})

    def trigger(self, conf: dict[str, Any]) -> dict:
        return self.call("POST", f"/dags/{DAG_ID}/dagRuns",
                         {"logical_date": None, "conf": conf, "note": "triggered by scripts/platform.py up"})


# ------------------------------------------------------------------------------------------- components
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
    wait_for(f"airflow: DAG {DAG_ID}", lambda: api.dag() or _dag_import_error(api), timeout, watch, 2.0)
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
    url = os.environ.get("SENTIMENT140_URL") or os.environ.get("SENTIMENT_DATA_URL")
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
    print(f"training: follow it at {layout.airflow_url}/dags/{DAG_ID}/runs/"
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
    from ml.pipeline import run_id_from

    path = layout.home / "reports" / run_id_from(dag_run_id) / "run.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _outcome(layout: Layout, run: dict) -> dict[str, Any]:
    record = _record(layout, run["dag_run_id"])
    if not record.get("model_tag"):
        raise PlatformError(f"training run {run['dag_run_id']} {run['state']} without packaging a model; "
                            f"see its task logs in the UI ({layout.airflow_url}/dags/{DAG_ID})")
    if run["state"] != "success":
        print(f"training: WARNING: run {run['dag_run_id']} failed after packaging "
              f"{record['model_tag']}: failed families {record.get('failed_families') or '?'}", flush=True)
    return {"dag_run_id": run["dag_run_id"], "state": run["state"], **record}


def start_service(layout: Layout, model_tag: str, timeout: float) -> dict[str, Any]:
    """Serve ``model_tag`` with ``bentoml serve`` unless it is served already; wait for ``/readyz``."""
    running = read_pid(layout, "service")
    if running and not running.get("leader_gone") and running.get("model_tag") == model_tag \
            and running.get("port") == layout.service_port:
        print(f"service: already serving {model_tag} (pid {running['pid']}) at {layout.service_url}", flush=True)
        watch = {**running, "log": str(layout.log_file("service"))}
    else:
        if running:
            print(f"service: restarting to serve {model_tag} (was {running.get('model_tag')})", flush=True)
            stop(layout, "service")
        if port_open(layout.service_port):
            raise PlatformError(f"port {layout.service_port} is in use by another program; set "
                                "SENTIMENT_SERVICE_PORT or --service-port")
        env = _base_env(layout)
        env["SENTIMENT_MODEL_TAG"] = model_tag
        cmd = [str(BIN / "bentoml"), "serve", SERVICE, "--host", "127.0.0.1", "--port", str(layout.service_port)]
        print(f"service: starting bentoml serve with {model_tag} (log {layout.log_file('service')}) ...", flush=True)
        watch = spawn(layout, "service", cmd, env, port=layout.service_port, model_tag=model_tag)
        watch["log"] = str(layout.log_file("service"))
    started = time.monotonic()
    wait_for("service /readyz", lambda: http("GET", f"{layout.service_url}/readyz")[0] == 200, timeout, watch)
    print(f"service: ready in {time.monotonic() - started:.0f}s at {layout.service_url}", flush=True)
    return watch


# -------------------------------------------------------------------------------------------- commands
def cmd_up(args: argparse.Namespace) -> int:
    layout = Layout(args.airflow_port, args.service_port)
    extra = json.loads(args.conf) if args.conf else {}
    families = [f.strip() for f in args.families.split(",") if f.strip()] if args.families else None
    started = time.monotonic()
    with locked(layout):
        api = start_airflow(layout, args.start_timeout)
        outcome = ensure_trained(api, layout, training_conf(families, extra), args.retrain, args.timeout)
        start_service(layout, outcome["model_tag"], args.start_timeout)
    print(f"\nThe platform is up ({time.monotonic() - started:.0f}s).\n")
    print_urls(layout, outcome)
    return 0


def print_urls(layout: Layout, outcome: dict[str, Any] | None) -> None:
    run_id = (outcome or {}).get("run_id")
    key = ' -H "Authorization: Bearer $SENTIMENT_API_KEY"' if os.environ.get("SENTIMENT_API_KEY") else ""
    lines = [
        ("Airflow UI", f"{layout.airflow_url}/  (user {layout.user}; password: $SENTIMENT_AIRFLOW_PASSWORD or "
                       f"{layout.passwords})"),
        ("Training DAG", f"{layout.airflow_url}/dags/{DAG_ID}"),
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
        ("Logs", str(layout.run_dir)),
        ("Stop", "make down"),
    ]
    for name, value in lines:
        print(f"  {name:<18} {value}")


def cmd_down(args: argparse.Namespace) -> int:
    layout = Layout()
    with locked(layout):
        for component in COMPONENTS:
            pids = stop(layout, component, grace=args.grace)
            print(f"{component}: " + (f"stopped {len(pids)} processes" if pids else "not running"), flush=True)
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
        ready = (http("GET", f"{url}/readyz")[0] == 200 if component == "service"
                 else http("GET", f"{url}/api/v2/monitor/health")[0] == 200)
        report[component] = {"running": not record.get("leader_gone"), "pid": record["pid"], "url": url,
                             "ready": ready, "processes": len(_session_members(record["pid"])),
                             **({"model_tag": record["model_tag"]} if "model_tag" in record else {})}
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
        for run in report.get("training_runs", []) if isinstance(report.get("training_runs"), list) else []:
            print(f"training run     {run['run']}: {run['state']}")
    return 0 if all(report[c].get("running") == bool(report[c].get("ready")) for c in COMPONENTS) else 1


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
    parser = argparse.ArgumentParser(prog="platform.py", description=__doc__.split("\n\n")[0],
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
    up.add_argument("--start-timeout", type=float, default=300, help="Seconds to wait for Airflow and for the "
                                                                     "service to become ready.")
    down = sub.add_parser("down", help="Stop everything `up` started and check that nothing is left.")
    down.add_argument("--grace", type=float, default=30, help="Seconds between SIGTERM and SIGKILL.")
    status = sub.add_parser("status", help="Show what runs, where, and the latest training runs.")
    status.add_argument("--json", action="store_true", help="Print the status as JSON.")
    sub.add_parser("env", help="Print shell exports for the `airflow` CLI: eval \"$(python scripts/platform.py env)\".")
    args = parser.parse_args(argv)
    try:
        return {"up": cmd_up, "down": cmd_down, "status": cmd_status, "env": cmd_env}[args.command](args)
    except PlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: what started keeps running; `make down` stops it", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
