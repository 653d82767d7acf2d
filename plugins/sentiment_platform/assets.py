"""The platform's Airflow Assets, shared by the DAGs that update them and the DAGs scheduled on them."""

from __future__ import annotations

from airflow.sdk import Asset

#: The prepared splits (``data/processed``); event extra: data_version, rows, run_id, processed_dir.
PREPARED_DATA = Asset(name="sentiment140_prepared", uri="x-sentiment://data/processed", group="sentiment")
#: The champion in the BentoML model store; event extra: tag, model, family, run_id, data_version.
CHAMPION_MODEL = Asset(name="sentiment_champion_model", uri="x-sentiment://bentoml/champion", group="sentiment")
#: A day's report of a stream (``stream/<name>/reports/date=YYYY-MM-DD/``); event extra: stream, date, rows, drift.
DAILY_REPORT = Asset(name="sentiment_daily_report", uri="x-sentiment://stream/reports", group="sentiment")
