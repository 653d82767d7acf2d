"""The main command for real, on free loopback ports: ``up`` (Airflow standalone, a training run, ``bentoml
serve``, the stream on the replay), ``up`` again (no duplicates), ``status``, a real ``airflow backfill create`` of
the daily report executed by the platform's scheduler, ``down`` (the stream stopped cleanly, nothing left)."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from platform_harness import OPS, ROOT, clean_env, free_port

from ml.processes import session_members
from spark_apps.stream.status import read_status

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


def exports(env) -> dict[str, str]:
    """What `python -m ops env` (`make airflow-env`) exports: the airflow CLI pointed at the platform."""
    out = subprocess.run([*OPS, "env"], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT).stdout
    pairs = [shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in out.splitlines()]
    return {k: v.replace("$PATH", env.get("PATH", "")) for k, v in pairs}


def run(env, *args, timeout=900):
    started = time.monotonic()
    done = subprocess.run([*OPS, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    return done, time.monotonic() - started


def test_up_twice_status_down(tmp_path, s140_zip):
    home = tmp_path / "home"
    airflow_port, service_port, dashboard_port = free_port(), free_port(), free_port()
    env = clean_env(home, SENTIMENT140_URL=str(s140_zip), SENTIMENT_AIRFLOW_PARALLELISM="4",
                    SENTIMENT_DASHBOARD_PORT=str(dashboard_port))
    up_args = ["up", "--airflow-port", str(airflow_port), "--service-port", str(service_port),
               "--families", "logreg", "--conf", json.dumps({"max_samples": None, "eval_max_samples": None})]
    airflow_url, service_url = f"http://127.0.0.1:{airflow_port}", f"http://127.0.0.1:{service_port}"
    dashboard_url = f"http://127.0.0.1:{dashboard_port}"
    try:
        first, seconds = run(env, *up_args)
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
        print(f"platform up (cold, logreg on the fixture): {seconds:.0f}s")
        out = first.stdout
        for url in (f"{airflow_url}/", f"{airflow_url}/dags/sentiment140_training",
                    f"{airflow_url}/sentiment/leaderboard", f"{service_url}/", f"{service_url}/classify",
                    f"{dashboard_url}/"):
            assert url in out, f"{url} not printed"
        assert "generated the password" in out and "train[" in out and "success" in out
        stream = home / "stream" / "tweets"
        for path in (f"{stream / 'landing'}/", f"{stream / 'output'}/", str(stream / "status.json"),
                     f"{airflow_url}/dags/sentiment_stream"):
            assert path in out, f"{path} not printed"
        assert "stream: tweets runs" in out

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
        assert get(f"{dashboard_url}/_stcore/health")[0] == 200 and get(f"{dashboard_url}/")[0] == 200
        status, body = get(f"{service_url}/classify", {"texts": ["I love this so much", "I hate this so much"]})
        assert status == 200 and [p["label"] for p in json.loads(body)] == ["Positive", "Negative"]

        # the stream: the replay of the downloaded archive, scored by the champion
        deadline = time.monotonic() + 180
        while (read_status(stream / "status.json") or {}).get("totals", {}).get("written", 0) < 400:
            assert time.monotonic() < deadline, (stream / "status.json").read_text()
            time.sleep(2)
        driver = read_status(stream / "status.json")["driver"]["pid"]

        pids = {c: json.loads((home / "run" / f"{c}.json").read_text())["pid"]
                for c in ("airflow", "service", "dashboard")}
        second, seconds = run(env, *up_args, timeout=300)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        print(f"platform up (already up): {seconds:.0f}s")
        assert "airflow: already running" in second.stdout and "service: already serving" in second.stdout
        assert "dashboard: already running" in second.stdout
        assert "reusing run" in second.stdout and "generated the password" not in second.stdout
        assert "stream: run manual__" in second.stdout and "is already active" in second.stdout
        assert {c: json.loads((home / "run" / f"{c}.json").read_text())["pid"] for c in pids} == pids
        assert read_status(stream / "status.json")["driver"]["pid"] == driver  # one stream, not restarted
        assert seconds < 60

        text = subprocess.run([*OPS, "status"], env=env, capture_output=True, text=True, timeout=60).stdout
        line = next(line for line in text.splitlines() if line.startswith("stream tweets"))
        assert " rows/s, last batch " in line and " written / " in line and "restarts 0" in line
        assert "model tweet-sentiment:" in line and "ingest tweets" in text

        # a real backfill of the daily report over three days, executed by the platform's scheduler
        airflow = {**env, **exports(env)}
        # (not yesterday: the DAG's own scheduled run covers it, maybe before the champion was packaged)
        days = [(datetime.now(UTC) - timedelta(days=d)).date().isoformat() for d in (4, 3, 2)]
        started = time.monotonic()
        done = subprocess.run(["airflow", "backfill", "create", "--dag-id", "sentiment_daily_report",
                               "--from-date", days[0], "--to-date", days[-1]], env=airflow, capture_output=True,
                              text=True, timeout=120, cwd=ROOT)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        reports = stream / "reports"
        while not all((reports / f"date={d}" / "summary.json").is_file() for d in days):
            assert time.monotonic() - started < 300, f"backfill unfinished: {list(reports.glob('*'))}"
            time.sleep(2)
        print(f"backfill of three days: {time.monotonic() - started:.0f}s")
        for day in days:
            summary = json.loads((reports / f"date={day}" / "summary.json").read_text())
            assert summary["date"] == day and summary["rows"] == 0  # days before the stream: explicit empty reports
            assert summary["reference_model"].startswith("tweet-sentiment:")  # the latest champion's profile

        status = subprocess.run([*OPS, "status", "--json"], env=env, capture_output=True,
                                text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert report["airflow"]["ready"] and report["service"]["ready"] and report["dashboard"]["ready"]
        assert report["training_runs"][0]["state"] == "success"
    finally:
        records = [json.loads(p.read_text()) for p in (home / "run").glob("*.json")
                   if p.name != "service-endpoint.json"] if (home / "run").is_dir() else []
        down, seconds = run(env, "down", timeout=240)
        print(f"platform down: {seconds:.0f}s")
    assert down.returncode == 0, down.stdout + down.stderr
    assert records, "up recorded no processes"
    assert "stream tweets: stopped cleanly" in down.stdout
    final = read_status(home / "stream" / "tweets" / "status.json")
    assert final["state"] == "stopped" and final["error"] is None
    for record in records:
        assert session_members(record["pid"]) == [], f"{record['cmd']} left processes behind"
    for port in (airflow_port, service_port, dashboard_port):
        assert get(f"http://127.0.0.1:{port}/")[0] == 0, f"port {port} still answers"
    assert not list((home / "run").glob("*.json"))
