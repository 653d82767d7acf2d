"""Planning a stream run: the ``sentiment_stream`` DAG's params validated once into a JSON-able *plan*.

The plan names the stream, its source and scorer, the settings overrides every later step rebuilds its
:class:`~ml.settings.Settings` from, the ingest's and the Spark job's command-line arguments, and how the run ends
(``continuous``: until stopped; ``available-now``: the landed posts, then stop; ``stop_when_ingest_ends``: drain
what the ingest landed once it ends, then stop).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.errors import ConfigError

if TYPE_CHECKING:
    from ml.settings import Settings

MODES = ("continuous", "available-now")
#: Params that become stream settings (``None`` or ``""`` keeps the workers' setting).
SETTINGS_PARAMS = {"stream_name": "stream_name", "source": "stream_source", "keywords": "stream_keywords",
                   "replay_file": "replay_file", "replay_rate": "replay_rate", "replay_loop": "replay_loop",
                   "trigger_seconds": "trigger_seconds", "scorer": "stream_scorer"}
#: The Spark job, as spark-submit runs it (``spark_apps/stream/job.py``).
JOB = Path(__file__).resolve().parents[3] / "spark_apps" / "stream" / "job.py"
REPO_ROOT = JOB.parents[2]


def settings_for(plan: Mapping[str, Any]) -> Settings:
    """The run's settings: the workers' environment with the plan's overrides."""
    from ml.settings import get_settings

    return get_settings(**plan["settings"])


def plan_stream(params: Mapping[str, Any], dag_run_id: str) -> dict[str, Any]:
    """Validate a run's params; return the plan every later task receives.

    Args:
        params: ``stream_name``, ``source``, ``keywords``, ``replay_file``, ``replay_rate``, ``replay_loop``,
            ``max_posts``, ``trigger_seconds``, ``scorer``, ``mode``, ``stop_when_ingest_ends``, ``x_conn_id``;
            missing or empty values fall back to the workers' settings.
        dag_run_id: The DAG run's id (recorded with the ingest and the supervisor's events).

    Raises:
        ConfigError: an invalid value, a live source without keywords, an unknown mode.
        DataError: a replay without a file to play.
    """
    from ml.endpoints import endpoint_file
    from ml.settings import get_settings

    overrides = {key: params[name] for name, key in SETTINGS_PARAMS.items() if params.get(name) not in (None, "")}
    if isinstance(overrides.get("stream_keywords"), list):
        overrides["stream_keywords"] = ",".join(overrides["stream_keywords"])
    settings = get_settings(**overrides)
    stream = settings.stream
    overrides["home"] = str(settings.home)
    overrides["service_endpoint_file"] = str(settings.service.endpoint_file or endpoint_file(settings.run_dir))
    mode = params.get("mode") or ("available-now" if stream.schedule else "continuous")
    if mode not in MODES:
        raise ConfigError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
    max_posts = params.get("max_posts")
    if max_posts is not None and (not isinstance(max_posts, int) or max_posts < 1):
        raise ConfigError(f"max_posts: expected a positive integer or nothing, got {max_posts!r}")
    keywords = [k.strip() for k in stream.keywords.split(",") if k.strip()]
    if stream.source in ("x", "bluesky") and not keywords:
        raise ConfigError(f"source {stream.source}: give keywords (a live source is filtered to them)")
    x_conn_id = params.get("x_conn_id") or None
    if stream.source == "x" and not x_conn_id and stream.x_bearer_token is None:
        raise ConfigError("source x: set X_BEARER_TOKEN on the workers or name an Airflow connection (x_conn_id) "
                          "holding the bearer token")
    replay = None
    if stream.source == "replay":
        from spark_apps.ingest.app import replay_file

        replay = str(replay_file(settings).resolve())  # DataError when there is nothing to play
    plan = {
        "dag_run_id": dag_run_id,
        "name": stream.name,
        "source": stream.source,
        "keywords": keywords,
        "replay_file": replay,
        "mode": mode,
        "max_posts": max_posts,
        "stop_when_ingest_ends": bool(params.get("stop_when_ingest_ends")),
        "x_conn_id": x_conn_id,
        "scorer": stream.scorer,
        "trigger_seconds": stream.trigger_seconds,
        "settings": overrides,
        "stream_dir": str(settings.stream_dir()),
    }
    plan["ingest_args"] = ingest_args(plan, settings)
    plan["job_args"] = job_args(plan, settings)
    return plan


def ingest_args(plan: Mapping[str, Any], settings: Settings) -> list[str]:
    """``python -m spark_apps.ingest`` with the stream's source (the token never: it travels in the environment)."""
    stream = settings.stream
    args = [sys.executable, "-m", "spark_apps.ingest", "--name", plan["name"], "--source", plan["source"]]
    if plan["keywords"]:
        args += ["--keywords", ",".join(plan["keywords"])]
    if plan["source"] == "replay":
        args += ["--file", plan["replay_file"], "--rate", f"{stream.replay_rate:g}",
                 "--loop" if stream.replay_loop else "--no-loop"]
    if plan["max_posts"]:
        args += ["--max-posts", str(plan["max_posts"])]
    return args


def job_args(plan: Mapping[str, Any], settings: Settings) -> list[str]:
    """The Spark job's arguments (after ``job.py``): the stream, its home, trigger, scorer and endpoint file."""
    args = ["--home", str(settings.home), "--name", plan["name"], "--trigger-seconds",
            f"{settings.stream.trigger_seconds:g}", "--scorer", plan["scorer"],
            "--service-endpoint-file", plan["settings"]["service_endpoint_file"]]
    if plan["mode"] == "available-now":
        args.append("--available-now")
    return args


def job_env(settings: Settings, model_tag: str | None = None) -> dict[str, str]:
    """What spark-submit and the job need in their environment besides the worker's own."""
    env = {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "SENTIMENT_HOME": str(settings.home), "BENTOML_HOME": str(settings.bentoml_home)}
    if model_tag:
        env["SENTIMENT_MODEL_TAG"] = model_tag  # the local scorer loads it in the executors
    return env
