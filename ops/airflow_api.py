"""The few Airflow REST API v2 calls ``up`` and ``status`` need (token from ``/auth/token``), over urllib."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ml.processes import start_time
from ops.layout import PlatformError

TRAINING_DAG = "sentiment140_training"


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
        if watch is not None and start_time(watch["pid"]) != watch["start_time"]:
            raise PlatformError(f"{what}: the process exited; see {watch.get('log')}")
        if time.monotonic() > deadline:
            raise PlatformError(f"{what}: not ready after {timeout:.0f}s" +
                                (f"; see {watch.get('log')}" if watch else ""))
        time.sleep(interval)


class AirflowAPI:
    """The few REST API v2 calls ``up`` needs (token from ``/auth/token``)."""

    def __init__(self, url: str, user: str, password: str, dag_id: str = TRAINING_DAG) -> None:
        self.url, self.user, self.password, self.dag_id = url, user, password, dag_id
        self._token: str | None = None

    def for_dag(self, dag_id: str) -> AirflowAPI:
        """The same client (and token) for another DAG."""
        other = AirflowAPI(self.url, self.user, self.password, dag_id)
        other._token = self._token
        return other

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

    def call(self, method: str, path: str, body: Any = None, retries: int = 4) -> Any:
        """One API call. A ``Database error`` (HTTP 500: on SQLite, ``database is locked`` while the scheduler and
        the dag-processor write) was rolled back, so it is retried, after 1, 2, 4, 8 s."""
        for attempt in range(retries + 1):
            status, data = http(method, f"{self.url}/api/v2{path}", body, self.token(), timeout=30)
            if status == 401:  # expired token
                self._token = None
                status, data = http(method, f"{self.url}/api/v2{path}", body, self.token(), timeout=30)
            if status == 500 and "Database error" in str(data) and attempt < retries:
                time.sleep(2 ** attempt)
                continue
            break
        if not 200 <= status < 300:
            raise PlatformError(f"{method} /api/v2{path}: HTTP {status}: {str(data)[:300]}")
        return data

    def dag(self) -> dict | None:
        status, data = http("GET", f"{self.url}/api/v2/dags/{self.dag_id}", token=self.token())
        return data if status == 200 else None

    def import_errors(self) -> list[dict]:
        return self.call("GET", "/importErrors").get("import_errors", [])

    def runs(self, states: tuple[str, ...] = (), limit: int = 20) -> list[dict]:
        query = [("order_by", "-run_after"), ("limit", str(limit))] + [("state", s) for s in states]
        return self.call("GET", f"/dags/{self.dag_id}/dagRuns?{urllib.parse.urlencode(query)}")["dag_runs"]

    def run(self, run_id: str) -> dict:
        return self.call("GET", f"/dags/{self.dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def task_instances(self, run_id: str) -> list[dict]:
        path = f"/dags/{self.dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances?limit=100"
        return self.call("GET", path)["task_instances"]

    def unpause(self) -> None:
        self.call("PATCH", f"/dags/{self.dag_id}", {"is_paused": False})

    def trigger(self, conf: dict[str, Any]) -> dict:
        return self.call("POST", f"/dags/{self.dag_id}/dagRuns",
                         {"logical_date": None, "conf": conf, "note": "triggered by `make up` (python -m ops up)"})
