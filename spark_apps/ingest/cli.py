"""``python -m spark_apps.ingest``: bring posts from a source into the stream's landing folder (or a socket).

Every option defaults to its setting (``python -m ml config`` lists them); an option given wins. The command runs
until the source ends (a replay that does not loop), ``--max-posts`` posts landed, or SIGTERM/SIGINT, then renames
the last landing file into place, saves the position, prints the final status as JSON on stdout and exits 0. A
failure prints one line on stderr and exits 1.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from ml.cli import configure_logging, emit, run
from spark_apps.ingest.errors import IngestError

log = logging.getLogger(__name__)

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  help="Ingest posts (replay, X or Bluesky) into <home>/stream/<name>/landing/ as atomic JSONL files.")

Source = Literal["replay", "x", "bluesky"]
SinkKind = Literal["file", "socket"]
Parts = Literal["test", "train", "both"]


def x_token_from_connection(conn_id: str) -> str:
    """The bearer token of an Airflow connection (its password, else its ``bearer_token`` extra)."""
    try:
        from airflow.sdk import BaseHook
    except ImportError:
        raise IngestError(f"--x-conn-id {conn_id} needs Apache Airflow installed; set X_BEARER_TOKEN instead") from None
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # Airflow raises its own not-found error types
        raise IngestError(f"no Airflow connection {conn_id!r} ({type(exc).__name__})") from None
    token = conn.password or (conn.extra_dejson or {}).get("bearer_token")
    for handler in list(logging.root.handlers):  # importing Airflow routes logging to stdout, which holds our JSON
        logging.root.removeHandler(handler)
    if not token:
        raise IngestError(f"Airflow connection {conn_id!r} has no password or bearer_token extra")
    return token


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: Any) -> None:
        log.info("%s: stopping after the current post", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


@app.command()
def main(
    source: Annotated[Source | None, typer.Option(help="replay (recorded posts, offline), x (X API v2 filtered stream) "
                                                  "or bluesky (Jetstream firehose). (setting stream_source)")] = None,
    name: Annotated[str | None, typer.Option(help="Stream name: files go to <home>/stream/<name>/. "
                                             "(setting stream_name)")] = None,
    keywords: Annotated[str | None, typer.Option(help="Comma-separated keywords (X rules, Bluesky and replay filter). "
                                                 "(setting stream_keywords)")] = None,
    file: Annotated[Path | None, typer.Option(help="Replay: a Sentiment140 zip or csv, a CSV/TSV with a text column, "
                                              "or JSON lines. (setting replay_file; default: the downloaded "
                                              "archive)")] = None,
    rate: Annotated[float | None, typer.Option(min=0, help="Replay: posts per second, steadily (0: as fast as "
                                               "possible). (setting replay_rate)")] = None,
    loop: Annotated[bool | None, typer.Option("--loop/--no-loop", help="Replay: start again at the end, with new "
                                              "ids (<id>-p<pass>). (setting replay_loop)")] = None,
    s140_files: Annotated[Parts | None, typer.Option(help="Replay of a Sentiment140 zip: test, train or both (test "
                                                     "first). (setting replay_s140_files)")] = None,
    from_start: Annotated[bool, typer.Option(help="Replay: ignore the saved position and play from the "
                                             "beginning.")] = False,
    sink: Annotated[SinkKind | None, typer.Option(help="file (atomic JSONL files in the landing folder) or socket "
                                                  "(TCP, one JSON object per line). (setting ingest_sink)")] = None,
    host: Annotated[str | None, typer.Option(help="Socket sink: bind address. (setting ingest_host)")] = None,
    port: Annotated[int | None, typer.Option(help="Socket sink: port. (setting ingest_port)")] = None,
    buffer: Annotated[int | None, typer.Option(help="Socket sink: posts kept while no client is connected (oldest "
                                               "dropped beyond). (setting ingest_buffer)")] = None,
    rotate_bytes: Annotated[int | None, typer.Option(help="File sink: rename a landing file into place at this "
                                                     "size. (setting ingest_rotate_bytes)")] = None,
    rotate_seconds: Annotated[float | None, typer.Option(help="File sink: also rename it this many seconds "
                                                         "after its first post. (setting ingest_rotate_seconds)")] = None,
    max_posts: Annotated[int | None, typer.Option(min=1, help="Stop after this many posts (tests, benchmarks, "
                                                  "bounded runs).")] = None,
    x_conn_id: Annotated[str | None, typer.Option(help="X: take the bearer token from this Airflow connection "
                                                  "(password or bearer_token extra) instead of X_BEARER_TOKEN.")] = None,
    x_api_url: Annotated[str | None, typer.Option(help="X: API base URL. (setting x_api_url)")] = None,
    bluesky_url: Annotated[str | None, typer.Option(help="Bluesky: Jetstream subscribe URL. "
                                                    "(setting bluesky_url)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log warnings and errors only.")] = False,
) -> None:
    """Ingest posts from a source into the stream's landing folder until the source ends or a signal stops it."""
    from ml.settings import get_settings
    from spark_apps.ingest.app import ingest

    overrides = {"stream_source": source, "stream_name": name, "stream_keywords": keywords, "replay_file": file,
                 "replay_rate": rate, "replay_loop": loop, "replay_s140_files": s140_files, "ingest_sink": sink,
                 "ingest_host": host, "ingest_port": port, "ingest_buffer": buffer, "ingest_rotate_bytes": rotate_bytes,
                 "ingest_rotate_seconds": rotate_seconds, "x_api_url": x_api_url, "bluesky_url": bluesky_url}
    settings = get_settings(**{k: v for k, v in overrides.items() if v is not None})
    token = x_token_from_connection(x_conn_id) if (x_conn_id and settings.stream.source == "x") else None
    configure_logging(verbose, quiet)
    stop = threading.Event()
    _stop_on_signals(stop)
    emit(ingest(settings, stop=stop, max_posts=max_posts, from_start=from_start, x_token=token))


def cli() -> None:
    """Entry point of ``python -m spark_apps.ingest``."""
    run(app)
