"""
### Champion rollout: new champions reach the stream without loss

Scheduled on the **`sentiment_champion_model`** Asset: when the training DAG packages a new champion, this DAG
rolls the platform's service to it: `choose_model → roll_service → wait_for_stream`.

* **choose_model**: the tag of the triggering Asset event (the newest), or the `model_tag` param of a manual run,
  else the latest packaged model.
* **roll_service** (blue/green): the new model starts on a free port and must answer `/readyz` and classify;
  the endpoint file `<home>/run/service-endpoint.json` is pointed at it, and the running stream's scorer (which
  re-reads that file before each call) sends its next batch there; then the old service stops, the new model is
  started again on the canonical port (`SENTIMENT_SERVICE_PORT`, so the Airflow connection, users' `curl` and the
  dashboard never change address), the file points back, and the bridge stops. A ready service holds the file at
  every moment: no micro-batch fails, no restart is needed.
* **wait_for_stream**: waits until each running stream reports the new tag (its next rows carry it in their
  `model` column).

**Why not restart the service on its port and let the stream's retries cover the gap?** The gap is a whole
`bentoml serve` start (10-30 s on two busy cores), longer than the scorer's default retry budget (about 15 s);
the batch would fail and the driver restart from its checkpoint: still no loss, but a restart, and a minute of
Spark start-up. The endpoint file costs one `stat` per scoring call.

**Exactly once across the switch.** A micro-batch is written once whatever answered it: the Spark checkpoint and
the parquet sink commit each batch once; a batch cut short (a call the old service refused while stopping is
retried against the new one) is written once, with the answers it finally got. So each post appears once, and its
`model` says which champion scored it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

from sentiment_platform.assets import CHAMPION_MODEL
from sentiment_platform.tasks import fail_fast


@dag(
    dag_id="sentiment_champion_rollout",
    dag_display_name="Champion rollout",
    description="When a new champion is packaged, roll the service (and so the running stream) to it, no gap.",
    doc_md=__doc__,
    schedule=[CHAMPION_MODEL],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    tags=["sentiment", "stream", "bentoml", "rollout"],
    params={"model_tag": Param(None, type=["null", "string"], title="Model tag",
                               description="A model store tag to roll out (manual runs); empty: the triggering "
                                           "event's tag, else the latest packaged model.")},
    default_args={"owner": "sentiment", "retries": 1, "retry_delay": timedelta(seconds=30),
                  "execution_timeout": timedelta(minutes=15)},
)
def sentiment_champion_rollout():
    @task(execution_timeout=timedelta(minutes=2))
    @fail_fast
    def choose_model() -> str:
        """The tag to roll out: the param, else the triggering champion event's, else the latest packaged."""
        from sentiment_platform.stream.steps import rollout_tag

        context = get_current_context()
        events = [event for events in (context.get("triggering_asset_events") or {}).values() for event in events]
        return rollout_tag(events, context["params"].get("model_tag"))

    @task
    @fail_fast
    def roll_service(tag: str) -> dict:
        """Blue/green: the new service is ready and holds the endpoint file before the old one stops."""
        from sentiment_platform.stream.steps import roll_service as roll

        return roll(tag)

    @task(execution_timeout=timedelta(minutes=10))
    def wait_for_stream(rolled: dict) -> list:
        """Wait until each running stream scores with the new tag."""
        from sentiment_platform.stream.steps import wait_for_stream_model

        return wait_for_stream_model(rolled["model_tag"])

    wait_for_stream(roll_service(choose_model()))


sentiment_champion_rollout()
