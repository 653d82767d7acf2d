"""
### Sentiment stream: launch and supervise the Spark job

Scores posts for your keywords, live: `plan → serve_champion → service_ready → start_ingest → run_stream → finish`.

* **serve_champion** makes sure the BentoML service runs the current champion (the latest packaged model): it
  starts it, or rolls it to the champion, as the component `service` (`make status` and `make down` see it);
  **service_ready** (`BentoMLReadySensor`) waits until it answers on the `bentoml_default` connection.
* **start_ingest** starts the ingest for the chosen source (`replay` of recorded tweets, offline; `x`; `bluesky`)
  as the component `ingest-<stream>`, outside Airflow's task processes: a restart of the Spark job, or of a worker,
  leaves it running and posts keep landing in `<home>/stream/<stream>/landing/`.
* **run_stream** is the apache-spark provider's `SparkSubmitOperator` on the **`spark_default`** connection
  (`local[*]` by default; a `spark://` master works by changing only the connection) running
  `spark_apps/stream/job.py`, wrapped by the platform's supervisor.
* **finish** stops the ingest of a continuous stream that ended and fails the run unless it stopped cleanly.

**Trigger form.** Source: the source, keywords, replay file, rate and loop, and `max_posts` (bound the ingest).
Stream: its name, trigger interval, scorer (`service`: batched HTTP to the service; `local`: the champion loaded in
the executors), the mode and `stop_when_ingest_ends` (drain what the ingest landed, then stop: a bounded run).

**Supervision: why this design.** In local and client mode the provider's operator is a blocking `spark-submit`
that holds a worker slot for the job's whole life, has no graceful stop, and whose retry resubmits (its durable job
tracking covers cluster modes only). So the launch task *is* the supervisor's arm, and a retry *is* a restart:

* **a dead driver** (killed, out of memory, the query failed) makes spark-submit exit non-zero; the try fails with
  the cause, and Airflow's retry (`stream_max_restarts`, exponential backoff from `stream_restart_backoff_s`, at
  most 10 minutes) restarts it from its checkpoint, exactly once per post. Before resubmitting it waits for the
  service, so a dead service does not burn the retries;
* **a stalled driver** -- alive but silent: no status refresh, or no micro-batch while landing files wait, for
  `stream_stall_intervals` trigger intervals (at least 30 s) -- is seen by a watchdog thread of the launch task,
  which ends it (SIGKILL: a stopped process does not handle SIGTERM, and the checkpoint makes a kill safe); the
  failed try's retry restarts it. `sentiment_stream_health` (every 5 minutes) applies the same rule to every stream,
  including one whose launch task is gone;
* **never two copies**: the job's own lock (`driver.lock`, flock: a second driver exits 3), `max_active_runs=1`,
  and adoption: when a worker dies mid-run its spark-submit is orphaned, not killed; the next try (the scheduler
  retries the lost task) finds the lock held and *watches that driver* instead of starting another; a stale lock
  of a dead driver is released by the kernel and taken over;
* **every restart and its cause** is a failed try in the UI, a line in the task log, and an event in
  `<home>/stream/<stream>/supervisor.json` (`restarts`, `events`), which the dashboard and `make status` show;
* **a clean stop**: `sentiment_stream_stop` (or `make down`, or `python -m spark_apps.stream stop`) asks the
  driver to stop after its running micro-batch and marks the stop so that no retry starts it again; killing the
  task (timeout, shutdown, "mark failed") also stops it cleanly first (`on_kill`).

The alternative -- a scheduled `trigger(availableNow=True)` run that processes what landed and exits -- needs no
supervision at all (each run is bounded, a failure is an ordinary retry) at the price of latency: it is the
second **mode**, `available-now`, and the default of scheduled runs (`SENTIMENT_STREAM_SCHEDULE`, e.g. `*/15 * * * *`).

**Champion rolls.** The job follows the endpoint file `<home>/run/service-endpoint.json` before each scoring call,
so `sentiment_champion_rollout` moves a running stream to a new model without a restart (see that DAG).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task

from ml.settings import get_settings
from sentiment_platform.sensors import BentoMLReadySensor
from sentiment_platform.stream.operator import StreamSubmitOperator
from sentiment_platform.tasks import fail_fast

STREAM = get_settings().stream
DEFAULT_ARGS = {"owner": "sentiment", "retries": 1, "retry_delay": timedelta(seconds=30),
                "execution_timeout": timedelta(minutes=10)}
NAME = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}

PARAMS = {
    "source": Param(STREAM.source, enum=["replay", "x", "bluesky"], title="Source", section="Source",
                    description="replay: recorded tweets (offline); x: the X API v2 filtered stream (token from "
                                "X_BEARER_TOKEN or the connection below); bluesky: the Jetstream firehose."),
    "keywords": Param(STREAM.keywords, type="string", title="Keywords", section="Source",
                      description="Comma-separated, e.g. \"kindle, obama\". Required by x and bluesky; empty with "
                                  "replay: every recorded post."),
    "replay_file": Param(None, type=["null", "string"], title="Replay file", section="Source",
                         description="A Sentiment140 zip or csv, a CSV/TSV with a text column, or JSON lines, on the "
                                     "workers. Empty: SENTIMENT_REPLAY_FILE, else the downloaded archive."),
    "replay_rate": Param(STREAM.replay_rate, type="number", minimum=0, title="Replay rate (posts/s)",
                         section="Source", description="0: as fast as possible."),
    "replay_loop": Param(STREAM.replay_loop, type="boolean", title="Replay in a loop", section="Source",
                         description="Play the file again at its end (new post ids each pass)."),
    "max_posts": Param(None, type=["null", "integer"], minimum=1, title="Stop the ingest after N posts",
                       section="Source", description="Empty: no bound."),
    "x_conn_id": Param(None, type=["null", "string"], title="X connection", section="Source",
                       description="An Airflow connection holding the X bearer token (password or bearer_token "
                                   "extra); empty: X_BEARER_TOKEN on the workers."),
    "stream_name": Param(STREAM.name, **NAME, title="Stream name", section="Stream",
                         description="Its files live in <home>/stream/<name>/."),
    "trigger_seconds": Param(STREAM.trigger_seconds, type="number", exclusiveMinimum=0, section="Stream",
                             title="Trigger interval (s)", description="Micro-batch interval of the Spark job."),
    "scorer": Param(STREAM.scorer, enum=["service", "local"], title="Scorer", section="Stream",
                    description="service: batched HTTP to the BentoML service (follows champion rolls); local: the "
                                "champion loaded in Spark's executors (picked at each start)."),
    "mode": Param(None, type=["null", "string"], enum=[None, "continuous", "available-now"], title="Mode",
                  section="Stream", description="continuous: runs until stopped, supervised; available-now: the "
                                                "landed posts, then stop. Empty: continuous, or available-now "
                                                "when SENTIMENT_STREAM_SCHEDULE is set."),
    "stop_when_ingest_ends": Param(False, type="boolean", title="Stop when the ingest ends", section="Stream",
                                   description="Once the ingest has ended (end of the replay, max_posts) and every "
                                               "landed post is written, stop the stream cleanly."),
}


@dag(
    dag_id="sentiment_stream",
    dag_display_name="Sentiment stream",
    description="Ingest posts, score them with Spark Structured Streaming through the champion, supervised.",
    doc_md=__doc__,
    schedule=STREAM.schedule,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,  # one launch of a stream at a time (the job's lock guards the rest)
    is_paused_upon_creation=False,
    tags=["sentiment", "stream", "spark", "bentoml"],
    params=PARAMS,
    default_args=DEFAULT_ARGS,
)
def sentiment_stream():
    @task(execution_timeout=timedelta(minutes=2))
    @fail_fast
    def plan() -> dict:
        """Validate the params into the run's plan; check the Spark connection."""
        from sentiment_platform.stream.steps import check_spark_connection, plan_stream

        context = get_current_context()
        check_spark_connection("spark_default")
        return plan_stream(dict(context["params"]), context["run_id"])

    @task(execution_timeout=timedelta(minutes=15))
    @fail_fast
    def serve_champion(plan: dict) -> dict:
        """Start the service with the current champion, or roll it to the champion."""
        from sentiment_platform.stream.steps import serve_champion as serve

        return serve(plan)

    service_ready = BentoMLReadySensor(task_id="service_ready", poke_interval=5, timeout=600, mode="poke",
                                       execution_timeout=timedelta(minutes=11))

    @task(execution_timeout=timedelta(minutes=2))
    @fail_fast
    def start_ingest(plan: dict) -> dict:
        """Start the ingest for the chosen source (kept when the same one already runs)."""
        from sentiment_platform.stream.steps import start_stream_ingest

        return start_stream_ingest(plan)

    the_plan = plan()
    run_stream = StreamSubmitOperator(
        task_id="run_stream", plan=the_plan, conn_id="spark_default",
        retries=STREAM.max_restarts, retry_delay=timedelta(seconds=STREAM.restart_backoff_s),
        retry_exponential_backoff=2.0, max_retry_delay=timedelta(minutes=10),
        execution_timeout=timedelta(days=30),  # a stream runs for weeks; a timeout stops it cleanly, a retry resumes
    )

    @task(trigger_rule=TriggerRule.ALL_DONE, execution_timeout=timedelta(minutes=5))
    @fail_fast
    def finish(plan: dict) -> dict:
        """Stop the ingest of a continuous stream that ended; fail unless the stream stopped cleanly."""
        from sentiment_platform.stream.steps import finish_stream

        return finish_stream(plan)

    served = serve_champion(the_plan)
    served >> service_ready >> start_ingest(the_plan) >> run_stream >> finish(the_plan)


sentiment_stream()


@dag(
    dag_id="sentiment_stream_stop",
    dag_display_name="Sentiment stream: stop",
    description="Stop a stream cleanly: its ingest, then its Spark job after the running micro-batch.",
    doc_md="""
### Stop a stream cleanly

`stop_ingest → stop_driver`: the ingest renames its last landing file into place and saves its position; the
Spark job finishes its running micro-batch, stops its queries and exits 0, so `sentiment_stream`'s launch task
succeeds. The stop is noted in `supervisor.json`, so a launch task waiting for a retry does not start the stream
again. `make down` does the same for every stream. Nothing is lost: what landed and was not yet processed waits in
the landing folder for the next run, which continues from the checkpoint.
""",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["sentiment", "stream"],
    params={"stream_name": Param(STREAM.name, **NAME, title="Stream name", description="The stream to stop.")},
    default_args=DEFAULT_ARGS,
)
def sentiment_stream_stop():
    @task
    @fail_fast
    def stop_ingest() -> dict:
        """Stop the stream's ingest cleanly."""
        from sentiment_platform.stream.steps import stop_stream_ingest

        return stop_stream_ingest(get_current_context()["params"]["stream_name"])

    @task(execution_timeout=timedelta(minutes=10))
    @fail_fast
    def stop_driver() -> dict:
        """Stop the stream's Spark job after its running micro-batch; no retry starts it again."""
        from sentiment_platform.stream.steps import stop_stream_driver

        context = get_current_context()
        return stop_stream_driver(context["params"]["stream_name"], by=f"sentiment_stream_stop {context['run_id']}")

    stop_ingest() >> stop_driver()


sentiment_stream_stop()


@dag(
    dag_id="sentiment_stream_health",
    dag_display_name="Sentiment stream: health",
    description="Every 5 minutes: judge every stream; end a stalled driver so that its launch task restarts it.",
    doc_md="""
### Stream health

Every 5 minutes, judges each stream under `<home>/stream/` from its files (status file, driver lock, landing
folder): `ok`, `idle`, `starting`, `stalled`, `dead`, `stopped` or `failed`. A **stalled** driver (no status refresh,
or no micro-batch while landing files wait, for `stream_stall_intervals` trigger intervals, at least 30 s) is ended
(SIGKILL; the checkpoint makes it safe) and the event recorded in `supervisor.json`; the stream's launch task
(`sentiment_stream.run_stream`) sees its driver die and its retry restarts it. This is the safety net for a stall
that no launch task watches (its worker died and the scheduler has not yet retried it); a running launch task's
own watchdog usually acts first. The task log lists every stream's verdict.
""",
    schedule="*/5 * * * *",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    tags=["sentiment", "stream", "health"],
    default_args=DEFAULT_ARGS,
)
def sentiment_stream_health():
    @task(execution_timeout=timedelta(minutes=4))
    def check_streams() -> list:
        """Judge every stream; end the stalled ones."""
        from sentiment_platform.stream.steps import check_streams as check

        return check(act=True)

    check_streams()


sentiment_stream_health()
