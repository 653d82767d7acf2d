"""A hook for the BentoML sentiment service: it owns the URL, the API key, the timeout and the retries.

The endpoint comes from an Airflow connection (default id ``bentoml_default``), for example from the
environment::

    AIRFLOW_CONN_BENTOML_DEFAULT='{"conn_type": "http", "host": "127.0.0.1", "port": 3000,
                                   "password": "<api key, optional>", "extra": {"timeout": 30, "retries": 3}}'

or the short form ``AIRFLOW_CONN_BENTOML_DEFAULT=http://127.0.0.1:3000``. ``python -m ops up`` sets it for the
Airflow it starts. The password, when set, is sent as ``Authorization: Bearer <password>``. A task that starts a
service of its own (the training DAG's smoke check) passes ``base_url`` instead of a connection.

A busy or restarting service answers 429/503 with ``Retry-After``: the hook waits at least that long (capped)
before its next attempt.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from airflow.sdk import BaseHook

log = logging.getLogger(__name__)

#: Status codes worth retrying: the service is starting, overloaded or restarting.
RETRY_STATUS = frozenset({429, 502, 503, 504})
#: Longest wait a ``Retry-After`` header can impose between two attempts.
MAX_RETRY_AFTER_S = 60.0


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (only the delta-seconds form; an HTTP date is ignored)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class BentoMLServiceError(RuntimeError):
    """The service answered with an error or could not be reached within the retries."""


class BentoMLHook(BaseHook):
    """Calls the sentiment service's health and scoring endpoints.

    Args:
        bentoml_conn_id: Connection holding the service's scheme, host, port and optional API key (password).
        base_url: The service's URL, instead of a connection (then ``api_key`` is its key, if any).
        api_key: With ``base_url``: the API key to send.
        timeout: Seconds per HTTP request (default: the connection's ``timeout`` extra, else 30).
        retries: Retries of a failed request: connection errors and 429/502/503/504 (default: the connection's
            ``retries`` extra, else 3).
        backoff: First wait between retries in seconds, doubled each time (default: extra ``backoff``, else 1).
    """

    conn_name_attr = "bentoml_conn_id"
    default_conn_name = "bentoml_default"
    conn_type = "http"
    hook_name = "BentoML service"

    def __init__(
        self,
        bentoml_conn_id: str = default_conn_name,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff: float | None = None,
    ) -> None:
        super().__init__()
        self.bentoml_conn_id = bentoml_conn_id
        self._base_url = base_url
        self._api_key = api_key
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._conn: dict[str, Any] | None = None

    def get_conn(self) -> dict[str, Any]:
        """Resolve the connection once: ``base_url``, ``headers``, ``timeout``, ``retries``, ``backoff``."""
        if self._conn is None and self._base_url:
            headers = {"Accept": "application/json"}
            if self._api_key:
                headers["Authorization"] = f"Bearer {self._api_key}"
            self._conn = {"base_url": self._base_url.rstrip("/"), "headers": headers,
                          "timeout": float(self._timeout if self._timeout is not None else 30),
                          "retries": int(self._retries if self._retries is not None else 3),
                          "backoff": float(self._backoff if self._backoff is not None else 1.0)}
        if self._conn is None:
            conn = self.get_connection(self.bentoml_conn_id)
            extra = conn.extra_dejson or {}
            host = (conn.host or "").rstrip("/")
            if "://" in host:  # a full URL in the host field
                base_url = host
            else:
                scheme = conn.schema or extra.get("scheme") or "http"
                if scheme not in ("http", "https"):
                    scheme = "http"
                base_url = f"{scheme}://{host or '127.0.0.1'}" + (f":{conn.port}" if conn.port else "")
            headers = {"Accept": "application/json"}
            if conn.password:
                headers["Authorization"] = f"Bearer {conn.password}"
            self._conn = {
                "base_url": base_url,
                "headers": headers,
                "timeout": float(self._timeout if self._timeout is not None else extra.get("timeout", 30)),
                "retries": int(self._retries if self._retries is not None else extra.get("retries", 3)),
                "backoff": float(self._backoff if self._backoff is not None else extra.get("backoff", 1.0)),
            }
        return self._conn

    @property
    def base_url(self) -> str:
        return self.get_conn()["base_url"]

    def request(self, method: str, path: str, *, json: Any = None, retries: int | None = None):
        """One HTTP call with the connection's timeout, retrying connection errors and 429/502/503/504.

        Returns the final ``httpx.Response`` (raises :class:`BentoMLServiceError` if no response came back).
        """
        import httpx

        cfg = self.get_conn()
        attempts = 1 + (cfg["retries"] if retries is None else retries)
        url = cfg["base_url"] + path
        error: Exception | None = None
        for attempt in range(1, attempts + 1):
            wait = None
            try:
                response = httpx.request(method, url, json=json, headers=cfg["headers"], timeout=cfg["timeout"])
                if response.status_code not in RETRY_STATUS or attempt == attempts:
                    return response
                error = BentoMLServiceError(f"{method} {url}: HTTP {response.status_code}")
                wait = retry_after_seconds(response.headers.get("Retry-After"))
            except httpx.HTTPError as exc:
                error = exc
            if attempt < attempts:
                delay = max(cfg["backoff"] * 2 ** (attempt - 1), min(wait or 0.0, MAX_RETRY_AFTER_S))
                log.warning("%s %s failed (%s); retry %d/%d in %.1fs", method, url, error, attempt,
                            attempts - 1, delay)
                time.sleep(delay)
        raise BentoMLServiceError(f"{method} {url}: no answer after {attempts} attempts: {error}")

    def is_ready(self) -> bool:
        """``GET /readyz`` answers 200 (one attempt, no retries)."""
        try:
            return self.request("GET", "/readyz", retries=0).status_code == 200
        except BentoMLServiceError as exc:
            log.debug("service not ready: %s", exc)
            return False

    def wait_until_ready(self, timeout: float = 120.0, interval: float = 1.0) -> None:
        """Block until ``/readyz`` answers 200; raise :class:`BentoMLServiceError` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            if time.monotonic() > deadline:
                raise BentoMLServiceError(f"{self.base_url}/readyz not ready after {timeout:.0f}s")
            time.sleep(interval)

    def classify(self, texts: list[str]) -> list[dict[str, Any]]:
        """``POST /classify``: one prediction (``label``, ``p_positive``, ``scores``, ``model``) per text."""
        response = self.request("POST", "/classify", json={"texts": list(texts)})
        if response.status_code != 200:
            raise BentoMLServiceError(f"POST {self.base_url}/classify: HTTP {response.status_code}: "
                                      f"{response.text[:300]}")
        return response.json()

    def test_connection(self) -> tuple[bool, str]:
        """Used by the UI's "Test connection" button."""
        ok = self.is_ready()
        return ok, f"{self.base_url}/readyz " + ("answered 200" if ok else "is not ready")
