"""Fixtures of the dashboard tests: an artifacts root in the layouts the platform writes, and (for the server and
browser tests) a real dashboard and a real Chromium."""

from __future__ import annotations

import os
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stream_fixtures as fixtures  # noqa: E402


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def stream_home(tmp_path, now) -> tuple[Path, list[dict]]:
    """An artifacts root with stream ``tweets`` (output, status, ingest, supervisor, six daily reports) and two
    training runs; returns the root and the output's rows."""
    home = tmp_path / "home"
    stream = home / "stream" / "tweets"
    rows = fixtures.sample_rows(now)
    fixtures.write_output(stream / "output", rows)
    fixtures.write_status(stream, now)
    fixtures.write_side_files(stream, now)
    fixtures.write_daily_reports(stream, [now.date() - timedelta(days=i) for i in range(6, 0, -1)],
                                 drift_on={now.date() - timedelta(days=2)})
    fixtures.write_run(home / "reports", "manual__r1")
    return home, rows


def artifacts_dir(tmp_path_factory, name: str) -> Path:
    """Where screenshots go: ``$SENTIMENT_TEST_ARTIFACTS/<name>`` or a temporary folder (printed)."""
    root = os.environ.get("SENTIMENT_TEST_ARTIFACTS")
    folder = Path(root) / name if root else tmp_path_factory.mktemp(name)
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of {name}: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser():
    """One headless Debian Chromium per module, driven by Playwright (its own browser download is not used)."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed: `make browser` (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield chromium
        chromium.close()
