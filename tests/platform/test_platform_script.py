"""``python -m ops`` pieces without starting Airflow: credentials, environment, process control."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time

import pytest
from platform_harness import OPS, ROOT, clean_env, free_port

from ml.processes import session_members
from ops.components import read_pid, spawn, stop
from ops.layout import Layout, airflow_env, ensure_password
from ops.steps import training_conf


def test_password_generated_once_private_and_env_wins(platform_home, monkeypatch):
    layout = Layout()
    password, generated = ensure_password(layout)
    assert generated and len(password) >= 12
    assert stat.S_IMODE(layout.passwords.stat().st_mode) == 0o600
    assert ensure_password(layout) == (password, False)
    monkeypatch.setenv("SENTIMENT_AIRFLOW_PASSWORD", "from-the-env")
    assert ensure_password(layout) == ("from-the-env", False)
    assert json.loads(layout.passwords.read_text()) == {"admin": "from-the-env"}


def test_airflow_environment(platform_home, monkeypatch):
    layout = Layout(airflow_port=18111, service_port=13111)
    env = airflow_env(layout)
    assert env["AIRFLOW_HOME"] == str(platform_home.resolve() / "airflow")  # nothing in the source tree
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags")
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(ROOT / "plugins")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert (env["AIRFLOW__API__HOST"], env["AIRFLOW__API__PORT"]) == ("127.0.0.1", "18111")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18111/execution/"
    assert int(env["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"]) <= 30
    connection = json.loads(env["AIRFLOW_CONN_BENTOML_DEFAULT"])
    assert (connection["host"], connection["port"]) == ("127.0.0.1", 13111) and "password" not in connection
    monkeypatch.setenv("SENTIMENT_API_KEY", "k-123456")
    assert json.loads(airflow_env(layout)["AIRFLOW_CONN_BENTOML_DEFAULT"])["password"] == "k-123456"


def test_training_conf(platform_home, monkeypatch, tmp_path):
    assert training_conf(None, {}) == {"families": ["logreg", "linearsvc", "multinomialnb"]}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENTIMENT140_URL", "data/s140.zip")
    conf = training_conf(["logreg"], {"max_samples": None})
    assert conf == {"families": ["logreg"], "data_url": str(tmp_path / "data" / "s140.zip"), "max_samples": None}
    monkeypatch.setenv("SENTIMENT140_URL", "file:///x/y.zip")
    assert training_conf(None, {})["data_url"] == "file:///x/y.zip"


SESSION = r"""
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a leader that ignores SIGTERM
# a child in its own process group, like Airflow's task processes, that ignores SIGTERM too
subprocess.Popen([sys.executable, "-c", "import os, signal, time; os.setpgid(0, 0); "
                  "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"])
time.sleep(300)
"""


def test_stop_ends_the_whole_session_even_other_groups_and_stubborn_processes(platform_home):
    layout = Layout()
    record = spawn(layout, "airflow", [sys.executable, "-c", SESSION], os.environ.copy(), port=1)
    deadline = time.monotonic() + 20
    while len(session_members(record["pid"])) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    members = session_members(record["pid"])
    assert len(members) == 2 and len({os.getpgid(p) for p in members}) == 2
    assert read_pid(layout, "airflow")["pid"] == record["pid"]
    stopped = stop(layout, "airflow", grace=1)
    assert sorted(stopped) == sorted(members)
    assert session_members(record["pid"]) == []
    assert not layout.pid_file("airflow").exists()
    assert stop(layout, "airflow") == []


def test_stale_pid_file_is_ignored(platform_home):
    layout = Layout()
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    proc.wait()
    layout.run_dir.mkdir(parents=True)
    layout.pid_file("service").write_text(json.dumps({"pid": proc.pid, "start_time": "1", "port": 1}))
    assert read_pid(layout, "service") is None
    assert not layout.pid_file("service").exists()


def test_up_refuses_a_port_taken_by_another_program(tmp_path):
    home = tmp_path / "home"
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        done = subprocess.run([*OPS, "up", "--airflow-port", str(port), "--service-port",
                               str(free_port())], env=clean_env(home), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"port {port} is in use" in done.stderr
    assert not (home / "run" / "airflow.json").exists()


def test_status_and_down_when_nothing_runs(tmp_path):
    env = clean_env(tmp_path / "home")
    status = subprocess.run([*OPS, "status", "--json"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["airflow"] == {"running": False} and report["service"] == {"running": False}
    down = subprocess.run([*OPS, "down"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert down.returncode == 0 and "airflow: not running" in down.stdout


def test_the_package_shadows_no_standard_module():
    assert "ops" not in sys.stdlib_module_names


def test_env_prints_the_airflow_exports(tmp_path):
    done = subprocess.run([*OPS, "env"], env=clean_env(tmp_path / "home"), capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert f"export AIRFLOW_HOME={tmp_path / 'home' / 'airflow'}" in done.stdout


def test_the_api_client_retries_a_rolled_back_database_error(monkeypatch):
    """Airflow on SQLite answers HTTP 500 "Database error" while another process holds the write lock; the
    transaction was rolled back, so the client tries again (and gives up with the error when it persists)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from ops import airflow_api
    from ops.airflow_api import AirflowAPI
    from ops.layout import PlatformError

    calls = {"n": 0, "fail": 2}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_PATCH(self):
            calls["n"] += 1
            self.rfile.read(int(self.headers["Content-Length"]))
            failing = calls["n"] <= calls["fail"]
            body = json.dumps({"detail": {"reason": "Database error"}} if failing else {"is_paused": False}).encode()
            self.send_response(500 if failing else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(airflow_api.time, "sleep", lambda s: None)
    try:
        api = AirflowAPI(f"http://127.0.0.1:{server.server_address[1]}", "admin", "pw")
        api._token = "t"
        api.unpause()
        assert calls["n"] == 3
        calls.update(n=0, fail=99)
        with pytest.raises(PlatformError, match="HTTP 500"):
            api.unpause()
        assert calls["n"] == 5
    finally:
        server.shutdown()
