"""The main command for real, on free loopback ports: ``up`` (Airflow standalone, a training run, ``bentoml
serve``), ``up`` again (no duplicates), ``status``, ``down`` (nothing left running)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import pytest
from platform_harness import OPS, ROOT, clean_env, free_port

from ml.processes import session_members

pytestmark = pytest.mark.slow


def get(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def run(env, *args, timeout=900):
    started = time.monotonic()
    done = subprocess.run([*OPS, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    return done, time.monotonic() - started


def test_up_twice_status_down(tmp_path, s140_zip):
    home = tmp_path / "home"
    airflow_port, service_port = free_port(), free_port()
    env = clean_env(home, SENTIMENT140_URL=str(s140_zip), SENTIMENT_AIRFLOW_PARALLELISM="4")
    up_args = ["up", "--airflow-port", str(airflow_port), "--service-port", str(service_port),
               "--families", "logreg", "--conf", json.dumps({"max_samples": None, "eval_max_samples": None})]
    airflow_url, service_url = f"http://127.0.0.1:{airflow_port}", f"http://127.0.0.1:{service_port}"
    try:
        first, seconds = run(env, *up_args)
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
        print(f"platform up (cold, logreg on the fixture): {seconds:.0f}s")
        out = first.stdout
        for url in (f"{airflow_url}/", f"{airflow_url}/dags/sentiment140_training",
                    f"{airflow_url}/sentiment/leaderboard", f"{service_url}/", f"{service_url}/classify"):
            assert url in out, f"{url} not printed"
        assert "generated the password" in out and "train[" in out and "success" in out

        # readiness of the UI and of the service
        assert get(f"{airflow_url}/")[0] == 200
        health = json.loads(get(f"{airflow_url}/api/v2/monitor/health")[1])
        assert {health[k]["status"] for k in ("scheduler", "dag_processor", "triggerer")} == {"healthy"}
        # the plugin's pages need Airflow's login, like its API
        assert get(f"{airflow_url}/sentiment/leaderboard")[0] == 401
        password = json.loads((home / "airflow" / "passwords.json").read_text())["admin"]
        token = json.loads(get(f"{airflow_url}/auth/token", {"username": "admin", "password": password})[1])
        status, page = get(f"{airflow_url}/sentiment/leaderboard", token=token["access_token"])
        assert status == 200 and "logreg" in page
        assert get(f"{service_url}/readyz")[0] == 200
        status, body = get(f"{service_url}/classify", {"texts": ["I love this so much", "I hate this so much"]})
        assert status == 200 and [p["label"] for p in json.loads(body)] == ["Positive", "Negative"]

        pids = {c: json.loads((home / "run" / f"{c}.json").read_text())["pid"] for c in ("airflow", "service")}
        second, seconds = run(env, *up_args, timeout=300)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        print(f"platform up (already up): {seconds:.0f}s")
        assert "airflow: already running" in second.stdout and "service: already serving" in second.stdout
        assert "reusing run" in second.stdout and "generated the password" not in second.stdout
        assert {c: json.loads((home / "run" / f"{c}.json").read_text())["pid"] for c in pids} == pids
        assert seconds < 60

        status = subprocess.run([*OPS, "status", "--json"], env=env, capture_output=True,
                                text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert report["airflow"]["ready"] and report["service"]["ready"]
        assert report["training_runs"][0]["state"] == "success"
    finally:
        records = [json.loads(p.read_text()) for p in (home / "run").glob("*.json")] if (home / "run").is_dir() \
            else []
        down, seconds = run(env, "down", timeout=180)
        print(f"platform down: {seconds:.0f}s")
    assert down.returncode == 0, down.stdout + down.stderr
    assert records, "up recorded no processes"
    for record in records:
        assert session_members(record["pid"]) == [], f"{record['cmd']} left processes behind"
    for port in (airflow_port, service_port):
        assert get(f"http://127.0.0.1:{port}/")[0] == 0, f"port {port} still answers"
    assert not list((home / "run").glob("*.json"))
