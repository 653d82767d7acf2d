"""A real dashboard in a subprocess (``python -m serving.dashboard``, started with the platform's process launcher)
and what the browser tests read from its pages."""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from pathlib import Path

from ml.processes import Process, environ, free_port

ROOT = Path(__file__).resolve().parents[2]
#: Streamlit's client probes ``/<page>/_stcore/...`` for a base path when a page's address is opened directly, then
#: falls back to ``/_stcore/...``: those 404s are its own, not the dashboard's.
BASE_PATH_PROBE = re.compile(r"^https?://[^/]+/[A-Za-z0-9_-]+/_stcore/(health|host-config)$")


@contextmanager
def running_dashboard(home: Path, log: Path, *, host: str = "127.0.0.1", env: dict[str, str | None] | None = None):
    """Serve the dashboard of ``home`` on a free port until the block ends; yields ``(url, process)``."""
    port = free_port()
    overrides = {"PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}", "SENTIMENT_CONFIG": None, "SENTIMENT_DASHBOARD_TOKEN": None,
                 "SENTIMENT_STREAM_NAME": None, "SENTIMENT_DASHBOARD_REFRESH_S": "2", **(env or {})}
    process = Process([sys.executable, "-m", "serving.dashboard", "--host", host, "--port", str(port), "--home",
                       str(home)], cwd=ROOT, env=environ(overrides), log=log, name="dashboard")
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http(f"{url}/_stcore/health", timeout=90)
        yield url, process
    finally:
        process.stop()


class PageWatch:
    """Console errors, uncaught page errors and failed responses of one page (Streamlit's base-path probes aside)."""

    def __init__(self, page) -> None:
        self.console: list[str] = []
        self.page_errors: list[str] = []
        self.bad_responses: list[str] = []
        self.probes: list[str] = []
        page.on("console", lambda m: self.console.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("response", self._response)
        page.on("requestfailed", lambda r: self.bad_responses.append(f"{r.url} {r.failure}"))

    def _response(self, response) -> None:
        if response.status >= 400:
            (self.probes if BASE_PATH_PROBE.match(response.url) else self.bad_responses).append(
                f"{response.status} {response.url}")

    def errors(self) -> list[str]:
        probe_404s = len(self.probes)
        out = []
        for text in self.console:
            if text.startswith("Failed to load resource") and "404" in text and probe_404s:
                probe_404s -= 1
                continue
            out.append(text)
        return out + self.page_errors + self.bad_responses


def metrics(page) -> dict[str, str]:
    """Every ``st.metric`` on the page: label -> value, as shown."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('[data-testid="stMetric"]')]
        .map(m => [m.querySelector('[data-testid="stMetricLabel"]').innerText.trim(),
                   m.querySelector('[data-testid="stMetricValue"]').innerText.trim()]))""")


def tables(page) -> list[list[list[str]]]:
    """Every ``st.table`` on the page as rows of cell texts (header first)."""
    return page.evaluate("""() => [...document.querySelectorAll('[data-testid="stTable"] table')].map(t =>
        [...t.rows].map(r => [...r.cells].map(c => c.innerText.trim())))""")


def wait_metric(page, label: str, value: str, timeout: float = 30.0) -> None:
    """Wait until metric ``label`` shows ``value`` (the page refreshes by itself)."""
    page.wait_for_function("""([label, value]) => [...document.querySelectorAll('[data-testid="stMetric"]')].some(m =>
        m.querySelector('[data-testid="stMetricLabel"]').innerText.trim() === label &&
        m.querySelector('[data-testid="stMetricValue"]').innerText.trim() === value)""", arg=[label, value],
                           timeout=timeout * 1000)


def wait_idle(page, timeout: float = 30.0) -> None:
    """Wait until Streamlit has finished running the script (its status widget is gone) and charts are drawn."""
    page.wait_for_selector("h1", timeout=timeout * 1000)
    page.wait_for_timeout(500)
    page.wait_for_function("""() => !document.querySelector('[data-testid="stStatusWidget"]')""",
                           timeout=timeout * 1000)
