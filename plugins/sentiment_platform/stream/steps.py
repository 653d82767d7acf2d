"""What each task of the stream DAGs calls (one call per task), runnable without Airflow.

``sentiment_stream``: :func:`plan_stream` -> :func:`serve_champion` -> (the ready sensor) -> :func:`start_stream_ingest`
-> the launch task (:class:`~sentiment_platform.stream.operator.StreamSubmitOperator`) -> :func:`finish_stream`.
``sentiment_stream_stop``: :func:`stop_stream_ingest`, :func:`stop_stream_driver`. ``sentiment_stream_health``:
:func:`check_streams`. ``sentiment_champion_rollout``: :func:`rollout_tag`, :func:`roll_service`,
:func:`wait_for_stream_model`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ml.errors import ConfigError, DataError
from sentiment_platform.stream.plan import plan_stream, settings_for

log = logging.getLogger(__name__)

__all__ = ["check_streams", "finish_stream", "plan_stream", "roll_service", "rollout_tag", "serve_champion",
           "start_stream_ingest", "stop_stream_driver", "stop_stream_ingest", "wait_for_stream_model"]


def check_spark_connection(conn_id: str) -> str:
    """The master of Airflow connection ``conn_id``; :class:`ConfigError` when it does not exist (the provider would
    silently fall back to YARN)."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:  # Airflow's not-found error differs between its layers
        raise ConfigError(f"no Airflow connection {conn_id!r}: create it (type spark, host local[*] or "
                          f"spark://host:7077), e.g. AIRFLOW_CONN_{conn_id.upper()}="
                          "'{\"conn_type\": \"spark\", \"host\": \"local[*]\"}'") from None
    return (conn.host or "") + (f":{conn.port}" if conn.port else "")


def serve_champion(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Make sure the service runs the current champion (start it, or roll it to the champion)."""
    from sentiment_platform.stream.service import ensure_service

    outcome = ensure_service(settings_for(plan))
    log.info("service %s: %s at %s", outcome["action"], outcome["model_tag"], outcome["url"])
    return outcome


def start_stream_ingest(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Start the stream's ingest (the X token from the plan's connection goes into its environment only)."""
    from sentiment_platform.stream.ingest import start_ingest

    token = None
    if plan["source"] == "x" and plan.get("x_conn_id"):
        from spark_apps.ingest.cli import x_token_from_connection

        token = x_token_from_connection(plan["x_conn_id"])
    return start_ingest(settings_for(plan), plan, x_token=token)


def finish_stream(plan: Mapping[str, Any]) -> dict[str, Any]:
    """After the launch task: stop the ingest of a continuous stream that ended (an available-now run keeps it for
    the next run), and fail unless the stream stopped cleanly."""
    from sentiment_platform.stream.ingest import ingest_state, stop_ingest
    from sentiment_platform.stream.record import read_record
    from spark_apps.stream.lock import is_locked
    from spark_apps.stream.paths import StreamPaths
    from spark_apps.stream.status import read_status

    settings = settings_for(plan)
    paths = StreamPaths.for_stream(settings, plan["name"])
    if plan["mode"] == "continuous" and not is_locked(paths.lock):
        stop_ingest(settings, plan["name"])
    status = read_status(paths.status) or {}
    summary = {"state": status.get("state"), "stop_reason": status.get("stop_reason"), "error": status.get("error"),
               "totals": status.get("totals"), "models": status.get("models"),
               "restarts": read_record(paths.root).get("restarts", 0), "ingest": ingest_state(settings, plan["name"])}
    log.info("stream %s: %s", plan["name"], summary)
    if status.get("state") != "stopped":
        raise DataError(f"stream {plan['name']} ended {status.get('state')}: {status.get('error') or 'see the launch task'}")
    return summary


def stop_stream_ingest(name: str | None) -> dict[str, Any]:
    """Stop a stream's ingest cleanly (its last file is renamed into place, its position saved)."""
    from ml.settings import get_settings
    from sentiment_platform.stream.ingest import stop_ingest

    settings = get_settings(stream_name=name or None)
    return {"stream": settings.stream.name, "stopped_pids": stop_ingest(settings, settings.stream.name)}


def stop_stream_driver(name: str | None, by: str) -> dict[str, Any]:
    """Stop a stream's Spark job cleanly and keep its launch task from starting it again."""
    from ml.settings import get_settings
    from sentiment_platform.stream.supervise import stop_stream

    settings = get_settings(stream_name=name or None)
    outcome = stop_stream(settings, settings.stream.name, by=by)
    if not outcome["stopped"]:
        raise DataError(f"stream {settings.stream.name} is still running after the stop's wait")
    return outcome


def check_streams(*, act: bool = True) -> list[dict[str, Any]]:
    """Judge every stream under ``<home>/stream/``; with ``act``, end the drivers that stalled (their launch task's
    retry restarts them from the checkpoint)."""
    from ml.settings import get_settings
    from sentiment_platform.stream import record
    from sentiment_platform.stream.health import assess, end_driver
    from spark_apps.stream.paths import StreamPaths

    settings = get_settings()
    found = []
    root = settings.stream_root
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        paths = StreamPaths.under(folder)
        if not paths.status.exists() and not paths.lock.exists():
            continue
        health = assess(paths, trigger_s=_trigger_of(paths, settings),
                        stall_intervals=settings.stream.stall_intervals)
        row = health.summary()
        row["restarts"] = record.read_record(folder).get("restarts", 0)
        if health.stalled and act:
            cause = f"stalled: {health.cause}"
            log.error("stream %s %s: ending its driver (its launch task's retry restarts it)", folder.name, cause)
            row["ended_pids"] = end_driver(paths, health.status)
            record.add_event(folder, "end", cause, pids=row["ended_pids"], by="sentiment_stream_health")
        log.info("stream %s: %s%s", folder.name, health.verdict, f" ({health.cause})" if health.cause else "")
        found.append(row)
    return found


def _trigger_of(paths, settings) -> float:
    """The stream's trigger interval as its driver reported it (``config.trigger``), else the setting."""
    from spark_apps.stream.status import read_status

    trigger = ((read_status(paths.status) or {}).get("config") or {}).get("trigger") or ""
    try:
        return float(str(trigger).split()[0])
    except (ValueError, IndexError):
        return settings.stream.trigger_seconds


def rollout_tag(events: Iterable[Any] | None, requested: str | None) -> str:
    """The model to roll out: ``requested``, else the newest champion event's ``tag``, else the latest packaged."""
    from ml.settings import get_settings
    from sentiment_platform.stream.service import champion_tag

    tag = requested
    for event in events or ():
        extra = getattr(event, "extra", None) or (event.get("extra") if isinstance(event, Mapping) else None) or {}
        tag = requested or extra.get("tag") or tag
    return champion_tag(get_settings(), tag)


def roll_service(tag: str) -> dict[str, Any]:
    """Roll the platform's service to ``tag`` (blue/green, see :mod:`sentiment_platform.stream.service`); start it
    when it does not run."""
    from ml.settings import get_settings
    from sentiment_platform.stream.service import ensure_service

    outcome = ensure_service(get_settings(), tag)
    log.info("service %s: %s at %s (was %s)", outcome["action"], outcome["model_tag"], outcome["url"],
             outcome["previous"])
    return outcome


def wait_for_stream_model(tag: str, timeout: float = 300.0) -> list[dict[str, Any]]:
    """Wait until every running stream that scores through the service reports ``tag`` (its rows carry it), or has
    nothing to score (idle: its next posts will carry it)."""
    from ml.settings import get_settings
    from sentiment_platform.stream.health import assess
    from spark_apps.stream.lock import is_locked
    from spark_apps.stream.paths import StreamPaths
    from spark_apps.stream.status import read_status

    settings = get_settings()
    root = settings.stream_root
    pending = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        paths = StreamPaths.under(folder)
        status = read_status(paths.status) or {}
        if is_locked(paths.lock) and (status.get("config") or {}).get("scorer") == "service":
            pending[folder.name] = paths
    done = []
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for name, paths in list(pending.items()):
            status = read_status(paths.status) or {}
            health = assess(paths, trigger_s=_trigger_of(paths, settings),
                            stall_intervals=settings.stream.stall_intervals)
            if status.get("model") == tag or not health.driver_alive or health.verdict == "idle":
                log.info("stream %s: %s", name, f"scores with {tag}" if status.get("model") == tag
                         else f"{health.verdict}: its next posts will be scored by {tag}")
                done.append({"stream": name, "model": status.get("model"), "verdict": health.verdict})
                del pending[name]
        time.sleep(2)
    for name in pending:
        log.warning("stream %s has not scored with %s yet after %.0f s", name, tag, timeout)
        done.append({"stream": name, "model": None})
    return done
