"""One run of the driver, once it holds the stream's lock: status, Spark, the queries, the stop, the exit code."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from spark_apps.stream.paths import StreamPaths

log = logging.getLogger("spark_apps.stream.job")
PRUNE_EVERY_S = 300.0


def checkpoint_query_id(checkpoint: Path) -> str | None:
    """The query id Spark recorded in a checkpoint (``metadata``), or None for a new checkpoint."""
    import json

    try:
        return json.loads((Path(checkpoint) / "metadata").read_text()).get("id")
    except (OSError, ValueError):
        return None


def carried_status(previous: dict | None, paths: StreamPaths) -> dict | None:
    """The previous status when it belongs to this checkpoint (else the totals start again from zero)."""
    if not previous:
        return None
    current = checkpoint_query_id(paths.main_checkpoint)
    if current is None or previous.get("query_id") not in (None, current):
        log.warning("%s belongs to another checkpoint: totals start from zero", paths.status)
        return None
    return previous


def catch_up(spark, status, paths: StreamPaths, files: bool = True) -> None:
    """Count the micro-batches the checkpoint committed after the status file's last counted batch (from the
    landing files they read; a socket's lines are gone, so its totals are then marked inexact)."""
    from spark_apps.stream.recount import recount
    from spark_apps.stream.sparklog import last_commit

    committed = last_commit(paths.main_checkpoint)
    counted = status.doc["batch_id"]
    if committed is None or (counted is not None and counted >= committed):
        return
    batches = range(0 if counted is None else counted + 1, committed + 1)
    counts = recount(spark, paths, batches) if files else None
    if counts is None:
        status.doc["totals_exact"] = False
        status.doc["batch_id"] = committed
        return
    status.add_counts(committed, counts, batches=len(batches))


def pruner(paths: StreamPaths, hours: float, with_deadletter: bool):
    """A callable deleting landing files that both queries committed more than ``hours`` ago (0: never)."""
    if hours <= 0:
        return None
    from spark_apps.stream.sparklog import last_commit, source_files

    state = {"next": 0.0}

    def prune() -> None:
        if time.monotonic() < state["next"]:
            return
        state["next"] = time.monotonic() + PRUNE_EVERY_S
        done = None
        checkpoints = [paths.main_checkpoint] + ([paths.deadletter_checkpoint] if with_deadletter else [])
        for checkpoint in checkpoints:
            last = last_commit(checkpoint)
            files = set(source_files(checkpoint, range(last + 1))) if last is not None else set()
            done = files if done is None else done & files
        cutoff = time.time() - hours * 3600
        removed = 0
        for name in done or ():
            path = Path(name)
            try:
                if path.parent == paths.landing and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        if removed:
            log.info("deleted %d landing files committed more than %g h ago", removed, hours)

    return prune


def config_summary(args: Any, settings, spark) -> dict[str, Any]:
    from spark_apps.stream.job import service_url

    stream = settings.stream
    return {
        "input": args.input if args.input == "files" else f"socket {args.host}:{args.port}",
        "scorer": stream.scorer,
        "service_url": service_url(settings) if stream.scorer == "service" else None,
        "service_endpoint_file": (str(settings.service.endpoint_file) if stream.scorer == "service"
                                  and settings.service.endpoint_file else None),
        "trigger": "available-now" if args.available_now else f"{stream.trigger_seconds:g} seconds",
        "max_files_per_trigger": stream.max_files_per_trigger,
        "dedup_window_hours": stream.dedup_window_hours,
        "score_chunk": stream.score_chunk,
        "score_concurrency": stream.score_concurrency,
        "partition_by": stream.partition_by,
        "spark_master": spark.sparkContext.master if spark else None,
    }


def run(args: Any, settings, paths: StreamPaths) -> int:
    """Start the queries, supervise them, write the final status; return the exit code."""
    from spark_apps.stream.control import StopRequest, install_handlers
    from spark_apps.stream.job import build_session, resolve_scorer, supervise
    from spark_apps.stream.pipeline import QueryOptions, start_deadletter, start_main
    from spark_apps.stream.scoring import ScoringError
    from spark_apps.stream.status import StreamStatus, listener_class, read_status

    stream = settings.stream
    if paths.stop_file.exists():
        log.info("removing the stop file %s left for a previous driver", paths.stop_file)
        paths.stop_file.unlink()
    stop = StopRequest(paths.stop_file)
    install_handlers(stop)  # Python side at once; the JVM's once Spark is up
    status = StreamStatus(paths.status, stream.name, config=config_summary(args, settings, None),
                          paths={k: str(getattr(paths, k)) for k in ("landing", "output", "checkpoint", "deadletter")},
                          previous=carried_status(read_status(paths.status), paths))
    status.write()
    spark = None
    try:
        try:
            scorer = resolve_scorer(settings)
        except ScoringError as exc:
            log.error("error: %s", exc)
            status.update(state="failed", error=str(exc))
            return 1
        spark = build_session(settings, stream.name)
        status.doc["config"] = config_summary(args, settings, spark)
        catch_up(spark, status, paths, files=args.input == "files")
        install_handlers(stop, spark)
        options = QueryOptions(
            name=stream.name, paths=paths, input=args.input, host=args.host, port=args.port,
            trigger_seconds=stream.trigger_seconds, available_now=args.available_now,
            max_files_per_trigger=stream.max_files_per_trigger, dedup_window_hours=stream.dedup_window_hours,
            partition_by=tuple(c for c in stream.partition_by.split(",") if c))
        listener = listener_class()(status, options.main_name, options.deadletter_name)
        spark.streams.addListener(listener)
        queries = [start_main(spark, options, scorer)]
        if args.input == "files":
            queries.append(start_deadletter(spark, options))
        status.update(state="running", query_id=str(queries[0].id), run_id=str(queries[0].runId))
        log.info("stream %s running: %s -> %s (scorer %s)", stream.name, paths.landing, paths.output, stream.scorer)
        state, reason = supervise(queries, stop, stream.stop_grace_s,
                                  prune=pruner(paths, stream.landing_retention_hours, args.input == "files"),
                                  on_stopping=lambda why: status.update(state="stopping", stop_reason=why),
                                  heartbeat=status.heartbeat)
        for role in ("main", "deadletter"):
            event = status.terminated.get(role)
            if event is not None:
                event.wait(10)  # let the listener record the last batches before the final write
        if state == "failed":
            log.error("error: stream %s failed: %s", stream.name, reason)
            status.update(state="failed", error=reason)
            return 1
        log.info("stream %s stopped (%s)", stream.name, reason)
        status.update(state="stopped", stop_reason=reason, error=None)
        return 0
    except BaseException as exc:
        status.update(state="failed", error=f"{type(exc).__name__}: {exc}"[:500])
        raise
    finally:
        if spark is not None:
            spark.stop()
