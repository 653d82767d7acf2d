"""The sections of the platform's settings: every setting, its one environment variable, default and help.

Each field is declared with :func:`setting`, which records the field's *key* (its flat name in overrides, in a
flat TOML file and in docs/settings.md's table; unique across sections) and its one environment variable (by default
``SENTIMENT_<KEY>``). ``python -m ml config`` lists them all with their values and sources.
"""

from __future__ import annotations

import re
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
OFFICIAL_URL = "https://cs.stanford.edu/people/alecmgo/trainingandtestdata.zip"
#: The prepared dataset commands use unless told otherwise (``SENTIMENT_DATASET``), and the one the training DAG
#: prepares the neutral-labelled source into.
DEFAULT_DATASET = "default"
NEUTRAL_DATASET = "neutral"


def setting(default: Any, help: str, *, env: str | None = None, key: str | None = None, **constraints: Any) -> Any:
    """A settings field: ``default``, its ``help`` text, and optionally its flat ``key`` and ``env`` variable."""
    return Field(default, description=help, json_schema_extra={"env": env, "key": key}, **constraints)


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PathsSettings(Section):
    """Where the platform keeps its files."""

    home: Path = setting(Path.home() / "sentiment-platform",
                         "Artifacts root holding data/, models/, reports/, stream/, cache/ and run/.")
    bentoml_home: Path | None = setting(None, "BentoML's home (its model store); empty: <home>/bentoml.",
                                        env="BENTOML_HOME")

    @field_validator("home", "bentoml_home")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().resolve()


class DataSettings(Section):
    """The training data."""

    url: str = setting(OFFICIAL_URL, "Where `data download` fetches Sentiment140: http(s)://, file:// or a path.",
                       key="data_url", env="SENTIMENT140_URL")
    seed: int = setting(42, "Seed for splits, sampling and training.", ge=0)
    val_fraction: float = setting(0.2, "Share of the training file held out for validation.", gt=0.0, lt=0.5)
    download_retries: int = setting(5, "Retries after a failed download attempt.", ge=0, le=50)
    neutral_url: str | None = setting(None, "A neutral-labelled training source (three classes) beside Sentiment140: "
                                            "a URL or a path to a labelled CSV/TSV (SemEval's id<TAB>label<TAB>text) "
                                            "or a TweetEval <split>_text.txt (its labels and mapping.txt beside it); "
                                            "`data prepare --dataset neutral` reads it. Empty: none.")
    dataset: str = setting(DEFAULT_DATASET, "The prepared dataset that `data prepare`, `train` and `evaluate` use unless "
                                      "told otherwise: data/processed/<dataset>/ (the training DAG prepares "
                                      "Sentiment140 as `default` and the neutral source as `neutral`).",
                           pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ModelSettings(Section):
    """How models read and score tweets (training, evaluation and the service alike)."""

    neutral_low: float = setting(0.4, "Lower edge of the Neutral band on a binary model's P(positive). The "
                                      "service uses the packaged model's band unless this pair is set.", ge=0.0, le=1.0)
    neutral_high: float = setting(0.6, "Upper edge of the Neutral band (set both edges or neither).", ge=0.0, le=1.0)
    cpu_bf16: Literal["off", "on", "auto"] = setting(
        "off", "Transformer scoring on a CPU in bf16 autocast: off, on, or auto (where the CPU has AMX bf16 units "
               "that a 0.1 s probe measures faster than fp32). See docs/decisions/cpu-bf16-scoring.md.")

    @model_validator(mode="after")
    def _band_order(self) -> ModelSettings:
        if not self.neutral_low <= self.neutral_high:
            raise ValueError("neutral_low must not exceed neutral_high")
        return self

    @property
    def neutral_band(self) -> tuple[float, float]:
        return (self.neutral_low, self.neutral_high)


class TrainingSettings(Section):
    """Training runs."""

    run_id: str = setting("default", "Run name: models go to models/<run_id>/, reports to reports/<run_id>/.")
    max_features: int = setting(50_000, "TF-IDF vocabulary size.", ge=10)
    ngram_max: int = setting(4, "TF-IDF uses 1..ngram_max word n-grams.", ge=1, le=6)
    parallelism: int | None = setting(None, "Tasks of a training DAG run at once (families training at once); "
                                            "empty: the CPU count.", key="train_parallelism", ge=1)
    timeout_hours: float = setting(24.0, "Longest one family may train in the DAG.", key="train_timeout_hours", gt=0)
    schedule: str | None = setting(None, "Retraining schedule of the training DAG (cron or preset such as @weekly); "
                                         "empty: manual runs only.", key="training_schedule")
    class_weight: Literal["auto", "balanced", "none"] = setting(
        "auto", "Class weighting of every family's loss: balanced (each class weighs n/(k x its count)), none, or auto "
                "(balanced for three-class data whose largest class is over 1.5 times its smallest; none for "
                "two-class data such as Sentiment140).")
    class_priors: Literal["auto", "none"] = setting(
        "auto", "Tuned class priors: auto offsets a three-class model's class probabilities by factors tuned on the "
                "validation split for macro recall (saved with the model, applied to every answer); none keeps the "
                "model's own probabilities. Two-class models never get them (their Neutral is the band).")
    champion_rule: Literal["three-class", "transformer", "accuracy"] = setting(
        "three-class", "Which model of a run is shipped: three-class (the best three-class model by validation macro "
                       "recall when the run has one, else as transformer), transformer (the best transformer by "
                       "validation accuracy, else the best model) or accuracy (the best validation accuracy).")

    @field_validator("run_id")
    @classmethod
    def _safe_run_id(cls, value: str) -> str:
        if not _RUN_ID.match(value):
            raise ValueError("use letters, digits, '.', '_' or '-' (at most 128), starting with a letter or digit")
        return value


class ServiceSettings(Section):
    """The BentoML service: its address, limits and batching."""

    model_tag: str = setting("tweet-sentiment:latest", "Model store tag the service loads.")
    api_key: SecretStr | None = setting(None, "When set, API calls need `Authorization: Bearer <key>` (else 401).")
    max_texts: int = setting(1024, "Most texts in one /classify request (else 413).", ge=1, le=100_000)
    max_chars: int = setting(1000, "Most characters in one text (else 422).", ge=1, le=1_000_000)
    max_body_bytes: int | None = setting(None, "Most bytes in one request body (else 413); empty: derived from "
                                               "max_texts and max_chars.", ge=64)
    max_batch_size: int = setting(256, "Adaptive batching: most texts per model call.", ge=1, le=100_000)
    max_latency_ms: int = setting(10_000, "Adaptive batching: longest a text may wait in BentoML's queue (else 503).",
                                  ge=1)
    max_queue_s: float = setting(2.0, "Most seconds of work (at the measured throughput) a worker admits before it "
                                      "answers 503 with Retry-After at once.", gt=0)
    max_queue_texts: int = setting(8192, "Most texts in flight per worker, whatever the throughput.", ge=1)
    access_log: bool = setting(True, "Log one line per request (BentoML's access log); off saves a few percent of "
                                     "a busy worker's time.", key="service_access_log")
    bulk_texts: int = setting(128, "A /classify request with at least this many texts is a batch already: it skips "
                                   "the adaptive batching queue.", ge=1)
    host: str = setting("127.0.0.1", "Bind address (an IP address; `bentoml serve --host` overrides it).",
                        key="service_host")
    port: int = setting(3000, "Port of the service (`bentoml serve --port` overrides it).", key="service_port",
                        ge=1, le=65535)
    workers: int = setting(1, "Service worker processes (each loads the model).", key="service_workers", ge=1, le=64)
    timeout_s: float = setting(60.0, "Request timeout of the service in seconds.", key="service_timeout_s", gt=0)
    url: str | None = setting(None, "Where clients (Airflow, the stream) reach the service; empty: "
                                    "http://127.0.0.1:<service_port>.", key="service_url")
    endpoint_file: Path | None = setting(None, "A JSON file naming the service ({\"url\": ...}) that the stream's "
                                               "scorer re-reads before each call, so that a champion roll moves a "
                                               "running stream to a new service without a restart; empty: "
                                               "service_url only. The platform's stream uses "
                                               "<home>/run/service-endpoint.json.", key="service_endpoint_file")

    @field_validator("host")
    @classmethod
    def _ip(cls, value: str) -> str:
        ip_address(value)  # BentoML wants an IP address, not a host name
        return value

    @field_validator("api_key")
    @classmethod
    def _no_blank_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None  # SENTIMENT_API_KEY="" means no key
        return value

    @property
    def body_limit(self) -> int:
        """Most bytes accepted in one request body (six bytes per character covers ``\\uXXXX`` escapes)."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        return self.max_texts * (self.max_chars * 6 + 8) + 4096

    @property
    def base_url(self) -> str:
        return (self.url or f"http://127.0.0.1:{self.port}").rstrip("/")


class PlatformSettings(Section):
    """What `make up` starts on this machine."""

    airflow_port: int = setting(8080, "Loopback port of the Airflow UI and API.", ge=1, le=65535)
    airflow_user: str = setting("admin", "Airflow admin user.", min_length=1)
    airflow_password: SecretStr | None = setting(None, "Airflow admin password; empty: generated once, printed "
                                                       "once and kept in <home>/airflow/passwords.json.")
    airflow_parallelism: int | None = setting(None, "Airflow's core parallelism; empty: max(8, 2 x CPUs).", ge=1)


class ClusterSettings(Section):
    """What `python -m ops cluster up` starts on loopback: a Spark standalone cluster, PostgreSQL, Redis, and
    Airflow with its processes split and Celery workers (docs/operations.md, "Beyond one machine")."""

    spark_master_port: int = setting(7077, "Port of the Spark standalone master (spark://127.0.0.1:<port>); its web "
                                           "UI listens on port + 1000.", ge=1, le=64535)
    spark_workers: int = setting(2, "Spark standalone workers `ops cluster up` starts.", ge=0, le=64)
    spark_worker_cores: int = setting(1, "Cores each Spark worker offers to executors.", ge=1, le=1024)
    spark_worker_memory: str = setting("1g", "Memory each Spark worker offers to executors (JVM size: 512m, 2g).",
                                       pattern=r"^[0-9]+[kmgtKMGT]$")
    postgres_port: int = setting(5432, "Loopback port of the PostgreSQL server holding Airflow's metadata DB.",
                                 ge=1, le=65535)
    postgres_dir: Path | None = setting(None, "PostgreSQL data folder; empty: <home>/cluster/postgres (as root, "
                                              "where PostgreSQL refuses to run: /var/lib/postgresql/sentiment-<hash> "
                                              "owned by the postgres user).")
    redis_port: int = setting(6379, "Loopback port of Redis, the Celery broker.", ge=1, le=65535)
    celery_workers: int = setting(2, "Airflow Celery workers `ops cluster up` starts.", ge=0, le=64)
    celery_concurrency: int = setting(2, "Task slots of each Celery worker (airflow celery worker --concurrency).",
                                      ge=1, le=1024)


class StreamSettings(Section):
    """The stream: which posts to ingest, how the Spark job scores them, where it writes."""

    name: str = setting("tweets", "Name of the stream: its files live in <home>/stream/<name>/.", key="stream_name",
                        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    keywords: str = setting("", "Comma-separated keywords the stream follows (X rules, Bluesky filter, replay "
                                "filter); empty: every post of the replay, none for live sources.",
                            key="stream_keywords")
    source: Literal["replay", "x", "bluesky"] = setting("replay", "Where posts come from: replay (recorded tweets, "
                                                                  "offline), x (X API v2 filtered stream) or bluesky "
                                                                  "(Jetstream firehose).", key="stream_source")
    replay_file: Path | None = setting(None, "Recorded posts to replay: a Sentiment140 zip or csv, a CSV/TSV with a "
                                             "text column, or a JSONL of posts; empty: the downloaded archive.")
    replay_rate: float = setting(50.0, "Posts per second the replay plays (0: as fast as possible).", ge=0)
    replay_loop: bool = setting(False, "Replay the file again and again (new post ids each pass).")
    trigger_seconds: float = setting(5.0, "Micro-batch interval of the Spark job in seconds.", gt=0)
    scorer: Literal["service", "local"] = setting("service", "How the Spark job scores: service (batched HTTP to "
                                                             "the BentoML service) or local (the packaged model "
                                                             "loaded in the executors).", key="stream_scorer")
    score_chunk: int = setting(256, "Texts per scoring call.", ge=1, le=100_000)
    score_timeout_s: float = setting(30.0, "Timeout of one scoring call in seconds.", gt=0)
    score_retries: int = setting(5, "Retries of a failed scoring call (exponential backoff; Retry-After honoured).",
                                 ge=0, le=100)
    score_backoff_s: float = setting(0.5, "First retry delay of a scoring call in seconds; doubles on each retry "
                                          "(full jitter), capped by score_backoff_max_s.", gt=0)
    score_backoff_max_s: float = setting(30.0, "Longest wait between two scoring attempts in seconds (also caps a "
                                               "Retry-After).", gt=0)
    score_concurrency: int = setting(2, "Scoring calls in flight at once per Spark partition (the service's "
                                        "adaptive batching merges them).", ge=1, le=64)
    max_files_per_trigger: int = setting(200, "Most landing files one micro-batch reads (maxFilesPerTrigger).",
                                         ge=1)
    dedup_window_hours: float = setting(24.0, "Exactly-once window W: a post id delivered again within W of its "
                                              "first delivery reaching the job is dropped (state is kept about "
                                              "W to 2W, then evicted).", gt=0)
    state_partitions: int = setting(4, "Shuffle partitions of the Spark job, which hold the dedup state; fixed by "
                                       "the checkpoint at a stream's first run.", ge=1, le=10_000)
    arrow_batch_rows: int = setting(10_000, "Rows per Arrow batch handed to the Python scorer "
                                            "(spark.sql.execution.arrow.maxRecordsPerBatch).", ge=1)
    partition_by: str = setting("date,keyword", "Comma-separated partition columns of the output parquet: date "
                                                "(UTC date of ingest_ts) and/or keyword; empty: none.",
                                key="stream_partition_by", pattern=r"^((date|keyword)(,(date|keyword))?)?$")
    landing_retention_hours: float = setting(0.0, "Delete landing files this many hours after both queries of the "
                                                  "job committed them; 0 keeps them.", ge=0)
    stop_grace_s: float = setting(120.0, "On SIGTERM (or the stop file), how long the job waits for the running "
                                         "micro-batch to finish before it stops the query anyway.", ge=0)
    x_bearer_token: SecretStr | None = setting(None, "Bearer token of the X API v2 (the x source); never logged.",
                                               env="X_BEARER_TOKEN")
    bluesky_url: str = setting("wss://jetstream2.us-east.bsky.network/subscribe",
                               "Jetstream endpoint of the bluesky source.")
    replay_s140_files: Literal["test", "train", "both"] = setting(
        "both", "Which files of a Sentiment140 zip the replay plays: test (498 mixed tweets with real queries), "
                "train (1.6M tweets, sorted by polarity: negatives first) or both (test, then train).")
    x_api_url: str = setting("https://api.twitter.com", "Base URL of the X API v2 (the x source); change it only "
                                                        "for a proxy or a test server.")
    x_rate_limit_wait_s: float = setting(60.0, "Shortest wait after an HTTP 429 of the X stream (X asks for a "
                                               "minute, doubling each time); a later x-rate-limit-reset wins.", gt=0)
    ingest_sink: Literal["file", "socket"] = setting("file", "Where the ingest writes posts: file (atomic JSONL files "
                                                             "in <home>/stream/<name>/landing/) or socket (a TCP "
                                                             "server, one JSON object per line).")
    ingest_rotate_bytes: int = setting(1 << 20, "A landing file is closed and renamed into place at this size.",
                                       ge=1)
    ingest_rotate_seconds: float = setting(2.0, "A landing file is also renamed into place this many seconds "
                                                "after its first post, so a post reaches the Spark job within "
                                                "this interval even at a trickle.", gt=0)
    ingest_host: str = setting("127.0.0.1", "Bind address of the socket sink.")
    ingest_port: int = setting(9999, "Port of the socket sink.", ge=1, le=65535)
    ingest_buffer: int = setting(10_000, "Posts the socket sink keeps while no client is connected; beyond it, "
                                         "the oldest are dropped and counted.", ge=0)
    ingest_retry_initial_s: float = setting(1.0, "First wait before a live source reconnects; doubles on each "
                                                 "failure.", gt=0)
    ingest_retry_max_s: float = setting(320.0, "Longest wait between reconnects of a live source.", gt=0)
    stall_intervals: int = setting(12, "The supervisor (the sentiment_stream DAG) ends and restarts a stream's driver "
                                       "when it has not refreshed its status file, or has started no micro-batch "
                                       "while landing files wait, for this many trigger intervals (never less than "
                                       "30 s).", key="stream_stall_intervals", ge=1)
    max_restarts: int = setting(5, "Restarts of a stream's Spark job within one run of the sentiment_stream DAG (the "
                                   "launch task's retries) before the run fails.", key="stream_max_restarts",
                                ge=0, le=1000)
    restart_backoff_s: float = setting(15.0, "Wait before a stream's first restart in seconds; doubles with each "
                                             "restart, up to 10 minutes.", key="stream_restart_backoff_s", gt=0)
    check_s: float = setting(5.0, "How often the supervisor reads a running stream's status file (stalls, "
                                  "drain, health), in seconds.", key="stream_check_s", gt=0, le=600)
    schedule: str | None = setting(None, "Schedule of the sentiment_stream DAG (cron or preset); each scheduled run "
                                         "is bounded (Spark's availableNow trigger: the landed posts, then stop). "
                                         "Empty: manual runs, continuous by default.", key="stream_schedule")


class ReportSettings(Section):
    """The daily report DAG (``sentiment_daily_report``): its drift thresholds."""

    psi_threshold: float = setting(0.2, "Daily report: flag drift when the PSI of the day's P(positive) histogram "
                                        "against the champion's validation profile is above this.",
                                   key="report_psi_threshold", gt=0)
    js_threshold: float = setting(0.1, "Daily report: flag drift when the Jensen-Shannon distance of the day's label "
                                       "distribution against the champion's validation profile is above this.",
                                  key="report_js_threshold", gt=0, le=1)


class DashboardSettings(Section):
    """The live dashboard (``python -m serving.dashboard``): where it listens, who may open it, what it shows."""

    host: str = setting("127.0.0.1", "Bind address of the dashboard (an IP address or localhost); any address "
                                     "other than loopback needs dashboard_token.", key="dashboard_host")
    port: int = setting(8501, "Port of the dashboard.", key="dashboard_port", ge=1, le=65535)
    token: SecretStr | None = setting(None, "Token that opens the dashboard (its login form, or ?token= once per "
                                            "browser session); required on a non-loopback address; never logged.",
                                      key="dashboard_token")
    refresh_s: float = setting(5.0, "Seconds between refreshes of the live parts of the dashboard.",
                               key="dashboard_refresh_s", ge=1, le=3600)
    stale_s: float = setting(60.0, "The stream's health turns red when its last micro-batch, or the last update "
                                   "of its status file, is older than this many seconds.", key="dashboard_stale_s",
                             gt=0)
    window: Literal["15m", "1h", "6h", "24h", "7d", "30d"] = setting(
        "1h", "Time window the Live and Drift pages open with (15m, 1h, 6h, 24h, 7d or 30d).", key="dashboard_window")
    latest_posts: int = setting(50, "Latest posts listed on the Live page.", key="dashboard_latest_posts", ge=1,
                                le=1000)
    rolling_buckets: int = setting(5, "Time buckets averaged by the rolling mean of P(positive) on the Live page.",
                                   key="dashboard_rolling_buckets", ge=1, le=100)
    psi_threshold: float = setting(0.2, "Live drift flag: PSI of the window's P(positive) histogram against the "
                                        "champion's validation profile above this.", key="dashboard_psi_threshold",
                                   gt=0)
    js_threshold: float = setting(0.1, "Live drift flag: Jensen-Shannon distance of the window's label "
                                       "distribution against the champion's validation profile above this.",
                                  key="dashboard_js_threshold", gt=0, le=1)
    memory_mb: int = setting(1024, "Memory limit of the dashboard's DuckDB queries in MB (a query that needs more "
                                   "fails instead of growing).", key="dashboard_memory_mb", ge=64)

    @field_validator("host")
    @classmethod
    def _address(cls, value: str) -> str:
        if value != "localhost":
            ip_address(value)
        return value

    @field_validator("token")
    @classmethod
    def _no_blank_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None  # SENTIMENT_DASHBOARD_TOKEN="" means no token
        return value


SECTIONS: dict[str, type[Section]] = {
    "paths": PathsSettings,
    "data": DataSettings,
    "model": ModelSettings,
    "training": TrainingSettings,
    "service": ServiceSettings,
    "platform": PlatformSettings,
    "cluster": ClusterSettings,
    "stream": StreamSettings,
    "report": ReportSettings,
    "dashboard": DashboardSettings,
}
