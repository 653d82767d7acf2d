"""The dashboard for real: ``python -m serving.dashboard`` over fixture files, driven by Debian's Chromium through
Playwright. One dashboard and one browser serve the whole module; screenshots are kept as artifacts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import stream_fixtures as fx
from browser_helpers import PageWatch, metrics, running_dashboard, tables, wait_idle, wait_metric
from conftest import artifacts_dir

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A home with stream ``tweets`` (fresh status), daily reports and two runs, and a dashboard serving it."""
    now = datetime.now(UTC)
    home = tmp_path_factory.mktemp("dash") / "home"
    stream = home / "stream" / "tweets"
    rows = fx.sample_rows(now)
    fx.write_output(stream / "output", rows)
    fx.write_status(stream, now)
    fx.write_side_files(stream, now)
    fx.write_daily_reports(stream, [now.date() - timedelta(days=i) for i in range(7, 0, -1)],
                           drift_on={now.date() - timedelta(days=2)})
    fx.write_run(home / "reports", "manual__r1")
    fx.write_run(home / "reports", "manual__r2", extra_column=True)
    with running_dashboard(home, tmp_path_factory.mktemp("logs") / "dashboard.log",
                           env={"SENTIMENT_DASHBOARD_STALE_S": "60"}) as (url, process):
        yield {"url": url, "home": home, "stream": stream, "rows": rows, "now": now, "process": process,
               "shots": artifacts_dir(tmp_path_factory, "dashboard-browser")}


@pytest.fixture
def page(browser, site):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(45_000)
    yield page
    context.close()


def expected(rows, since: datetime) -> dict[str, str]:
    inside = [r for r in rows if r["ingest_ts"] >= since]
    probs = [r["p_positive"] for r in inside if r["p_positive"] is not None]
    out = {"Posts in window": f"{len(inside):,}", "Mean P(positive)": f"{sum(probs) / len(probs):,.3f}"}
    out.update({label: str(sum(r["label"] == label for r in inside)) for label in ("Positive", "Negative", "Neutral")})
    return out


def fresh_status(site) -> None:
    fx.write_status(site["stream"], datetime.now(UTC))


def test_every_page_renders_without_console_errors(page, site):
    fresh_status(site)
    watch = PageWatch(page)
    page.goto(site["url"] + "/")
    wait_metric(page, "Posts in window", expected(site["rows"], site["now"] - timedelta(hours=1))["Posts in window"])
    wait_idle(page)
    page.wait_for_selector('[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg')
    page.screenshot(path=site["shots"] / "live.png", full_page=True)
    page.get_by_role("link", name="Models").click()
    page.wait_for_selector('h1:has-text("Models")')
    page.wait_for_selector('[data-testid="stImage"] img')
    wait_idle(page)
    boards = tables(page)
    runs, board = boards[0], boards[1]
    assert {row[0] for row in runs[1:]} == {"manual__r1", "manual__r2"}
    header = board[0]
    for column in ("accuracy", "write-up", "vs write-up", "test3_accuracy", "test3_macro_f1", "test3_balanced_accuracy"):
        assert column in header, f"{column} missing from {header}"
    logreg = dict(zip(header, next(r for r in board[1:] if r[0] == "logreg"), strict=True))
    assert (logreg["accuracy"], logreg["write-up"], logreg["test3_macro_f1"]) == ("79.2", "79.2", "0.542")
    assert page.locator('[data-testid="stImage"] img').count() >= 4  # leaderboard.png + 3 confusion matrices
    page.screenshot(path=site["shots"] / "models.png", full_page=True)
    page.get_by_role("link", name="Drift").click()
    page.wait_for_selector('h3:has-text("Daily drift")')
    wait_idle(page)
    assert "Drift flagged on 1 day(s)" in page.inner_text("body")
    assert metrics(page)["Live posts (1h)"] == expected(site["rows"], site["now"] - timedelta(hours=1))[
        "Posts in window"]
    page.screenshot(path=site["shots"] / "drift.png", full_page=True)
    for path in ("/models", "/drift"):  # opened directly, as a bookmark would
        page.goto(site["url"] + path)
        wait_idle(page)
    assert watch.errors() == []


def test_live_numbers_equal_the_fixture(page, site):
    fresh_status(site)
    page.goto(site["url"] + "/")
    want = expected(site["rows"], site["now"] - timedelta(hours=1))
    wait_metric(page, "Posts in window", want["Posts in window"])
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stTable"] th')]
        .some(th => th.innerText.trim() === 'mean P(positive)')""")  # the table per keyword is drawn
    wait_idle(page)
    shown = metrics(page)
    assert {k: shown[k] for k in want} == want
    assert (shown["Rows written"], shown["Dead letters"], shown["Restarts"], shown["Rows/s in"]) == \
        ("12,000", "37", "2", "48.5")
    assert fx.MODEL in page.inner_text("body")
    assert page.get_attribute("#stream-health", "data-level") == "ok"
    by_keyword = next(t for t in tables(page) if t[0][:2] == ["keyword", "posts"])
    kindle = dict(zip(by_keyword[0], next(r for r in by_keyword[1:] if r[0] == "kindle"), strict=True))
    hour = [r for r in site["rows"] if r["keyword"] == "kindle" and r["ingest_ts"] >= site["now"] - timedelta(hours=1)]
    assert kindle["posts"] == str(len(hour))
    assert kindle["Positive"] == str(sum(r["label"] == "Positive" for r in hour))
    assert {r[0] for r in by_keyword[1:]} == {"kindle", "obama", "machine learning", "(none)"}
    week = expected(site["rows"], site["now"] - timedelta(days=7))
    page.goto(site["url"] + "/?window=7d")
    wait_metric(page, "Posts in window", week["Posts in window"])


def test_a_new_partition_shows_up_after_a_refresh(page, site):
    fresh_status(site)
    page.goto(site["url"] + "/")
    before = expected(site["rows"], site["now"] - timedelta(hours=1))["Posts in window"]
    wait_metric(page, "Posts in window", before)
    wait_idle(page)
    now = datetime.now(UTC)
    new = [fx.post(now - timedelta(seconds=30 + i), "bitcoin", "Positive") for i in range(5)]
    fx.write_output(site["stream"] / "output", new, batch=2)
    site["rows"].extend(new)
    wait_metric(page, "Posts in window", f"{int(before.replace(',', '')) + 5:,}")  # no reload: the page refreshes
    page.wait_for_function("() => document.body.innerText.includes('bitcoin')")
    page.screenshot(path=site["shots"] / "live-new-partition.png", full_page=True)


def test_a_stale_status_turns_the_health_red(page, site):
    fresh_status(site)
    page.goto(site["url"] + "/")
    page.wait_for_selector('#stream-health[data-level="ok"]')
    assert page.eval_on_selector("#stream-health", "e => getComputedStyle(e).backgroundColor") == "rgb(46, 125, 50)"
    fx.write_status(site["stream"], datetime.now(UTC), batch_age_s=900, update_age_s=600)
    page.wait_for_selector('#stream-health[data-level="stale"]', timeout=30_000)
    assert page.eval_on_selector("#stream-health", "e => getComputedStyle(e).backgroundColor") == "rgb(198, 40, 40)"
    assert "STALE" in page.inner_text("#stream-health")
    page.screenshot(path=site["shots"] / "live-stale.png", full_page=True)
    fresh_status(site)
    page.wait_for_selector('#stream-health[data-level="ok"]', timeout=30_000)
