"""
### Daily report of a stream (backfillable)

Daily (a data interval per UTC day: the run of day D starts after D ends, and its logical date is D), over the
stream's parquet partition of that date (UTC, by ingest time): one task,
`build_report`, writes `<home>/stream/<stream>/reports/date=YYYY-MM-DD/`:

* `summary.json`: rows, and per keyword the counts and shares of Positive / Negative / Neutral and the mean
  P(positive); the **drift** of the day against the champion's validation set: the **PSI** of the P(positive)
  histograms (10 bins; flagged above `SENTIMENT_REPORT_PSI_THRESHOLD`, 0.2) and the **Jensen-Shannon distance**
  of the label distributions (flagged above `SENTIMENT_REPORT_JS_THRESHOLD`, 0.1); the reference is the validation
  profile of the model that scored most of the day's posts (their `model` column), else the latest packaged
  champion's, and `reference_model` names it;
* `hourly.parquet`: per keyword, UTC hour and label: count, share and mean P(positive);
* `chart.png`: posts per hour by label, the P(positive) histogram against the reference, shares per keyword.

It then updates the `sentiment_daily_report` Asset (extra: stream, date, rows, psi, js, drift), which the
dashboard's Drift page reads. A day without posts gets an explicit empty report (rows 0, no drift figure). A re-run
of a date replaces its partition with identical files (no wall-clock time inside; written in a temporary folder
renamed into place).

**Backfill** past days (a running scheduler executes it, `make up` runs one):

```bash
eval "$(make -s airflow-env)"
airflow backfill create --dag-id sentiment_daily_report --from-date 2026-11-01 --to-date 2026-11-30
```
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from ml.settings import get_settings
from sentiment_platform.assets import DAILY_REPORT
from sentiment_platform.tasks import fail_fast

STREAM = get_settings().stream


@dag(
    dag_id="sentiment_daily_report",
    dag_display_name="Daily stream report",
    description="Per keyword, hour and label: counts, shares, mean P(positive); drift against the champion.",
    doc_md=__doc__,
    # a data interval per UTC day: the run of day D is due after D ends, and its logical date is D (Airflow 3's
    # "@daily" is a trigger timetable whose run at midnight would name the day that just began)
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=4,
    is_paused_upon_creation=False,
    tags=["sentiment", "stream", "report", "drift"],
    params={"stream_name": Param(STREAM.name, type="string", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                                 title="Stream name", description="The stream to report on.")},
    default_args={"owner": "sentiment", "retries": 2, "retry_delay": timedelta(minutes=1),
                  "execution_timeout": timedelta(hours=1)},
)
def sentiment_daily_report():
    @task(outlets=[DAILY_REPORT])
    @fail_fast
    def build_report() -> dict:
        """Write the logical date's report partition (summary.json, hourly.parquet, chart.png)."""
        from ml.settings import get_settings
        from sentiment_platform.report import build_daily_report, logical_day

        context = get_current_context()
        summary = build_daily_report(get_settings(), context["params"]["stream_name"], logical_day(context))
        drift = summary["drift"]
        context["outlet_events"][DAILY_REPORT].extra = {
            "stream": summary["stream"], "date": summary["date"], "rows": summary["rows"], "psi": drift["psi"],
            "js": drift["js"], "drift": drift["drift"]}
        return {k: summary[k] for k in ("stream", "date", "rows", "drift", "reference_model")}

    build_report()


sentiment_daily_report()
