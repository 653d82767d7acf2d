"""Assemble an ingest from the settings: the source, the sink, the state and status files; then run it.

:func:`ingest` is what the CLI (and an Airflow task, or a test) calls; every argument left ``None`` comes from
``settings.stream``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from ml.errors import DataError
from spark_apps.ingest.records import parse_keywords
from spark_apps.ingest.runner import Sink, Source, run_ingest
from spark_apps.ingest.state import StateStore, Status, StreamPaths, stream_lock

log = logging.getLogger(__name__)


def replay_file(settings: Any) -> Path:
    """The file the replay plays: ``replay_file``, else the archive ``python -m ml data download`` fetched."""
    if settings.stream.replay_file is not None:
        return Path(settings.stream.replay_file).expanduser()
    from ml.data import default_source

    path = default_source(settings)
    if not path.is_file():
        raise DataError(f"no replay file: pass --file (or set SENTIMENT_REPLAY_FILE), or download the archive "
                        f"first (`python -m ml data download`; looked for {path})")
    return path


def make_source(settings: Any, *, x_token: str | None = None, from_start: bool = False) -> Source:
    """The source named by ``settings.stream.source``."""
    stream = settings.stream
    keywords = parse_keywords(stream.keywords)
    if stream.source == "replay":
        from spark_apps.ingest.replay import ReplaySource

        return ReplaySource(replay_file(settings), rate=stream.replay_rate, loop=stream.replay_loop,
                            keywords=keywords, s140_parts=stream.replay_s140_files, from_start=from_start)
    if stream.source == "x":
        from spark_apps.ingest.x import XSource

        token = x_token or (stream.x_bearer_token.get_secret_value() if stream.x_bearer_token else "")
        return XSource(token, keywords, stream=stream.name, api_url=stream.x_api_url,
                       retry_initial=stream.ingest_retry_initial_s, retry_max=stream.ingest_retry_max_s,
                       rate_limit_wait=stream.x_rate_limit_wait_s)
    from spark_apps.ingest.bluesky import BlueskySource

    return BlueskySource(stream.bluesky_url, keywords, retry_initial=stream.ingest_retry_initial_s,
                         retry_max=stream.ingest_retry_max_s)


def make_sink(settings: Any, paths: StreamPaths) -> Sink:
    """The sink named by ``settings.stream.ingest_sink``."""
    stream = settings.stream
    if stream.ingest_sink == "socket":
        from spark_apps.ingest.socket_sink import SocketSink

        return SocketSink(stream.ingest_host, stream.ingest_port, buffer=stream.ingest_buffer)
    from spark_apps.ingest.sinks import FileSink

    return FileSink(paths.landing, max_bytes=stream.ingest_rotate_bytes, max_seconds=stream.ingest_rotate_seconds)


def ingest(settings: Any, *, stop: threading.Event | None = None, max_posts: int | None = None,
           from_start: bool = False, x_token: str | None = None, source: Source | None = None,
           sink: Sink | None = None) -> dict[str, Any]:
    """Run the stream's ingest until its source ends, ``max_posts`` posts landed, or ``stop`` is set.

    Args:
        settings: Platform settings (``settings.stream`` names the stream, source, sink and their options).
        stop: Set it to stop cleanly (the CLI sets it on SIGTERM/SIGINT).
        max_posts: Stop after this many posts.
        from_start: Ignore the replay's saved position.
        x_token: The X bearer token, when it comes from elsewhere than the settings (an Airflow connection).
        source, sink: Use these instead of the ones the settings describe.

    Returns:
        The final status (also in ``<home>/stream/<name>/ingest/status.json``).
    """
    paths = StreamPaths.of(settings)
    source = source or make_source(settings, x_token=x_token, from_start=from_start)
    with stream_lock(paths.lock):
        sink = sink or make_sink(settings, paths)
        status = Status(paths.status, stream=settings.stream.name, source=source.name, sink=sink.kind)
        return run_ingest(source, sink, status=status, store=StateStore(paths.state), stop=stop,
                          max_posts=max_posts)
