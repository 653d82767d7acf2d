"""The streaming job: landing files -> clean -> score in batches -> parquet, exactly once per post id.

Run it with spark-submit, which alone chooses the master (the same job runs on ``local[2]`` or ``spark://``)::

    spark-submit --master local[2] spark_apps/stream/job.py --name tweets
    spark-submit --master local[2] spark_apps/stream/job.py --available-now        # what is there, then stop

Defaults come from the ``stream`` and ``service`` settings (``python -m ml config``). Exit codes: 0 stopped
cleanly (SIGTERM/SIGINT, the stop file, or an ``--available-now`` run done), 1 a query failed (e.g. the scoring
service stayed down past the retries: restart once it is back, the checkpoint resumes), 2 bad arguments or
setup, 3 another driver of the same stream is running. See docs/streaming.md, "The Spark job".
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file by spark-submit: import from the repository, not from this folder
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]  # schema.py would hide PyPI's schema
    sys.path.insert(0, str(_here.parents[1]))

log = logging.getLogger("spark_apps.stream.job")

#: CLI option -> settings key (values are validated by the settings, errors name the setting).
SETTING_OPTIONS = {
    "name": "stream_name", "trigger_seconds": "trigger_seconds", "max_files_per_trigger": "max_files_per_trigger",
    "scorer": "stream_scorer", "service_url": "service_url", "service_endpoint_file": "service_endpoint_file",
    "model_tag": "model_tag", "score_chunk": "score_chunk",
    "score_concurrency": "score_concurrency", "score_timeout_s": "score_timeout_s", "score_retries": "score_retries",
    "dedup_window_hours": "dedup_window_hours", "partition_by": "stream_partition_by",
    "state_partitions": "state_partitions", "arrow_batch_rows": "arrow_batch_rows", "stop_grace_s": "stop_grace_s",
    "landing_retention_hours": "landing_retention_hours",
}


def build_parser() -> argparse.ArgumentParser:
    """The command line; options that map to a setting show its current value (environment, file or default)."""
    try:
        from ml.settings import get_settings

        current = {spec["key"]: spec["value"] for spec in get_settings().describe()}
    except Exception:  # invalid settings: --help still works; running reports the error
        current = {}
    p = argparse.ArgumentParser(prog="job.py", description=__doc__.split("\n\n")[0])

    def add(flag: str, text: str, **kwargs) -> None:
        key = SETTING_OPTIONS.get(flag.lstrip("-").replace("-", "_"))
        if key:
            text += f" Default: {current.get(key)!r} (setting {key})."
        p.add_argument(flag, help=text, **kwargs)

    add("--home", "Artifacts root (default: SENTIMENT_HOME).", type=Path)
    add("--name", "Stream name: its files live under <home>/stream/<name>/.")
    add("--input", "files: the landing folder (fault tolerant; default); socket: JSON lines from --host:--port "
                   "(not fault tolerant, Spark documents it as for testing; dead letters are counted, not kept).",
        choices=("files", "socket"), default="files")
    add("--host", "Socket source host (default 127.0.0.1).", default="127.0.0.1")
    add("--port", "Socket source port (required with --input socket).", type=int)
    for option in ("landing", "output", "checkpoint", "deadletter", "status"):
        add(f"--{option}", f"Override the {option} path (default: under the stream's folder).", type=Path)
    add("--trigger-seconds", "Micro-batch interval in seconds.", type=float)
    add("--available-now", "Process the landing files present at start, then stop (exit 0).", action="store_true")
    add("--max-files-per-trigger", "Landing files per micro-batch (maxFilesPerTrigger).", type=int)
    add("--scorer", "service: batched HTTP to the BentoML service; local: the packaged model in the executors.",
        choices=("service", "local"))
    add("--service-url", "Base URL of the service (empty: http://127.0.0.1:<service_port>).")
    add("--service-endpoint-file", "A JSON file {\"url\": ...} naming the service, re-read before each scoring call "
                                   "(a champion roll moves the stream to a new service without a restart); the "
                                   "service URL is used while it is missing.", type=Path)
    add("--model-tag", "Model store tag of the local scorer.")
    add("--score-chunk", "Texts per scoring call.", type=int)
    add("--score-concurrency", "Scoring calls in flight per partition.", type=int)
    add("--score-timeout-s", "Timeout of one scoring call in seconds.", type=float)
    add("--score-retries", "Retries of a failed scoring call before the micro-batch fails.", type=int)
    add("--dedup-window-hours", "Exactly-once window W for re-delivered post ids.", type=float)
    add("--partition-by", "Output partition columns: 'date,keyword', 'date', 'keyword' or ''.")
    add("--state-partitions", "Shuffle/state partitions (fixed by the checkpoint at the stream's first run).",
        type=int)
    add("--arrow-batch-rows", "Rows per Arrow batch handed to the scorer.", type=int)
    add("--stop-grace-s", "How long a stop waits for the running micro-batch, in seconds.", type=float)
    add("--landing-retention-hours", "Delete landing files this long after both queries committed them (0: keep).",
        type=float)
    add("--log-level", "Python log level (default INFO; Spark's own log stays at WARN).", default="INFO")
    return p


def settings_from(args: argparse.Namespace):
    from ml.settings import get_settings

    given = {key: getattr(args, option) for option, key in SETTING_OPTIONS.items()
             if getattr(args, option) is not None}
    return get_settings(home=args.home, **given)


def build_session(settings, name: str):
    """The SparkSession; defaults below apply only where spark-submit did not set the same key (never the master)."""
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    SparkContext._ensure_initialized()  # connects to spark-submit's JVM, so SparkConf() sees its settings
    conf = SparkConf()
    if not conf.contains("spark.master"):
        raise SystemExit("error: no Spark master: run the job with spark-submit --master ... (e.g. local[2])")
    stream = settings.stream
    defaults = {
        "spark.app.name": f"sentiment-stream-{name}",
        "spark.sql.shuffle.partitions": stream.state_partitions,
        "spark.sql.execution.arrow.maxRecordsPerBatch": stream.arrow_batch_rows,
        "spark.sql.streaming.stateStore.providerClass":
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
        "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
        "spark.sql.streaming.noDataMicroBatches.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.log.level": "WARN",
        # The stream's folders are POSIX paths (local disk or a shared mount). Without Hadoop's native library,
        # the FileContext-based checkpoint manager forks `readlink` twice per checkpoint file it renames and the
        # checksummed local file system forks `chmod` per file it creates (about 800 forks per 100k posts,
        # measured): rename with the plain FileSystem API and write no .crc side files instead.
        "spark.sql.streaming.checkpointFileManagerClass":
            "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager",
        "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
    }
    if conf.get("spark.master").startswith("local"):  # Python workers import this checkout, not another copy
        import os

        root = str(Path(__file__).resolve().parents[2])
        defaults["spark.executorEnv.PYTHONPATH"] = os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH")) if p)
    for key, value in defaults.items():
        if not conf.contains(key):
            conf.set(key, str(value))
    conf.set("spark.sql.session.timeZone", "UTC")  # the output's dates and timestamps are UTC
    return SparkSession.builder.config(conf=conf).getOrCreate()


def service_url(settings) -> str:
    """The service's URL now: the endpoint file's when there is one, else ``service_url``."""
    from ml.endpoints import read_endpoint

    doc = read_endpoint(settings.service.endpoint_file)
    return doc["url"] if doc else settings.service.base_url


def resolve_scorer(settings):
    """The scorer's configuration; the service is probed once (a clear failure now rather than in a batch)."""
    from spark_apps.stream.scoring import LocalConfig, Secret, ServiceClient, ServiceConfig

    stream = settings.stream
    if stream.scorer == "local":
        from serving.package import model_store

        model = model_store(settings).get(settings.service.model_tag)
        meta = model.info.metadata
        band = settings.neutral_band if settings.is_set("neutral_low") else tuple(meta.get("neutral_band") or (0.4, 0.6))
        return LocalConfig(model_path=str(model.path), tag=str(model.tag), band=(float(band[0]), float(band[1])),
                           chunk=stream.score_chunk)
    key = settings.service.api_key
    config = ServiceConfig(url=service_url(settings), api_key=Secret(key.get_secret_value()) if key else None,
                           chunk=stream.score_chunk, timeout_s=stream.score_timeout_s, retries=stream.score_retries,
                           backoff_s=stream.score_backoff_s, backoff_max_s=stream.score_backoff_max_s,
                           concurrency=stream.score_concurrency, max_chars=settings.service.max_chars,
                           endpoint_file=str(settings.service.endpoint_file) if settings.service.endpoint_file else None)
    client = ServiceClient(config)
    try:
        client.classify([])
    finally:
        client.close()
    return config


def one_line(error: Any) -> str:
    """The one line that says why a query failed (the scorer's own message when it was the scorer)."""
    text = str(error)
    found = re.search(r"ScoringError: ([^\n]+)", text)
    if found:
        return found.group(1).strip()
    # A Python worker's traceback: its last "SomethingError: message" line says what happened.
    python = [m.group(0).strip() for m in re.finditer(r"^[A-Za-z_][\w.]*(?:Error|Exception): [^\n]+", text, re.M)
              if not m.group(0).startswith(("java.", "org.apache", "scala.", "py4j."))]
    if python:
        return python[-1][:500]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:500]


def supervise(queries: list, stop, grace: float, every: float = 0.5, prune=None,
              on_stopping=None, heartbeat=None) -> tuple[str, str | None]:
    """Wait until the queries end, fail or are asked to stop; return ``(state, reason or error)``.

    ``heartbeat(query_status)`` is called on every round with the main query's ``status`` (a py4j call): the
    status file then shows that the driver and its JVM answer, also during a long micro-batch.
    """
    while True:
        if heartbeat is not None and queries[0].isActive:
            try:
                heartbeat(queries[0].status)
            except Exception:  # the status file is information; never let it end the stream
                log.exception("could not write the heartbeat")
        for query in queries:
            if not query.isActive and query.exception() is not None:
                for other in queries:
                    if other.isActive:
                        other.stop()
                return "failed", one_line(query.exception())
        if not any(query.isActive for query in queries):
            return "stopped", "available-now: every landing file present at start is processed"
        if stop.requested:
            if on_stopping is not None:
                on_stopping(stop.reason)
            deadline = time.monotonic() + grace
            for query in queries:
                while (query.isActive and query.status["isTriggerActive"] and not stop.force
                       and time.monotonic() < deadline):
                    time.sleep(0.2)
                query.stop()
            failed = [q for q in queries if q.exception() is not None]
            return ("failed", one_line(failed[0].exception())) if failed else ("stopped", stop.reason)
        if prune is not None:
            prune()
        time.sleep(every)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    from ml.errors import MLError
    from spark_apps.stream.lock import DriverLock, LockHeld
    from spark_apps.stream.paths import StreamPaths
    from spark_apps.stream.pipeline import committed_output_without_checkpoint

    if args.input == "socket" and not args.port:
        log.error("error: --input socket needs --port")
        return 2
    try:
        settings = settings_from(args)
    except MLError as exc:
        log.error("error: %s", exc)
        return 2
    name = settings.stream.name
    paths = StreamPaths.for_stream(settings, name, landing=args.landing, output=args.output,
                                   checkpoint=args.checkpoint, deadletter=args.deadletter, status=args.status)
    if args.input == "socket":
        from dataclasses import replace

        paths = replace(paths, main="socket")
    paths.create()
    if committed_output_without_checkpoint(paths):
        log.error("error: %s holds committed batches but the checkpoint %s is gone; restore the checkpoint or move "
                  "the output away (a new checkpoint would skip its first batches as already written)",
                  paths.output, paths.main_checkpoint)
        return 2
    lock = DriverLock(paths.lock, stream=name)
    try:
        lock.acquire()
    except LockHeld as exc:
        log.error("error: %s", exc)
        return 3
    try:
        from spark_apps.stream.run import run

        return run(args, settings, paths)
    finally:
        lock.release()


if __name__ == "__main__":
    sys.exit(main())
