"""The ingest loop: a source in its own thread hands :class:`~spark_apps.ingest.records.Item` objects through a
bounded queue to this loop, which lands them in the sink, saves the source's position once it is durable, keeps the
status file and stops cleanly.

It stops when the source ends (a replay that does not loop), after ``max_posts`` posts, when ``stop`` is set (the
CLI sets it on SIGTERM and SIGINT), or when the source fails; in every case it renames the current landing file into
place, saves the position and writes the final status, then re-raises a source's failure.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from spark_apps.ingest.records import Item, now_iso, to_line
from spark_apps.ingest.state import StateStore, Status

log = logging.getLogger(__name__)

Emit = Callable[[Item], bool]
_END = object()
_POLL = 0.2


class Source(Protocol):
    """A source of posts: ``run`` calls ``emit`` for each item until the source ends or ``stop`` is set
    (``emit`` returns ``False`` once the runner wants no more). ``state`` is the position saved last time."""

    name: str
    state_key: str | None

    def run(self, emit: Emit, stop: threading.Event, state: dict[str, Any] | None) -> None: ...


class Sink(Protocol):
    kind: str
    files: int
    bytes: int
    dropped: int
    clients: int | None
    on_commit: Callable[[Any], None] | None

    def write(self, line: bytes, state: Any = None) -> None: ...
    def advance(self, state: Any) -> None: ...
    def next_deadline(self) -> float | None: ...
    def tick(self) -> None: ...
    def close(self) -> None: ...


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def _put(q: queue.Queue, item: Any, stop: threading.Event, *, final: bool = False) -> bool:
    while True:
        try:
            q.put(item, timeout=_POLL)
            return True
        except queue.Full:
            if stop.is_set():
                if final:
                    try:  # make room: the runner no longer lands anything
                        q.get_nowait()
                    except queue.Empty:
                        pass
                    continue
                return False


def run_ingest(source: Source, sink: Sink, *, status: Status, store: StateStore | None = None,
               stop: threading.Event | None = None, max_posts: int | None = None, queue_size: int = 1024,
               on_post: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run ``source`` into ``sink`` until it ends, ``max_posts`` posts landed, or ``stop`` is set.

    Args:
        source: What produces posts.
        sink: Where they land; its ``on_commit`` is set here to save the position.
        status: Counters, written to ``status.json`` as they change (at most once a second) and at the end.
        store: Where positions are saved (``None``: nowhere; a restart starts over).
        stop: Set it to stop (from a signal handler or another thread).
        max_posts: Stop after this many landed posts.
        queue_size: Items the source may run ahead of the sink.
        on_post: Called with each landed record (tests, metrics).

    Returns:
        The final status.

    Raises:
        Whatever the source raised, after the clean shutdown.
    """
    stop = stop or threading.Event()
    key = source.state_key
    if store is not None:
        store.settle(getattr(sink, "landed", lambda _name: False))
    initial = store.get(key) if (store is not None and key) else None
    status.set(state=initial)

    def commit(state: Any) -> None:
        if store is not None and key:
            store.save(key, state)
        status.set(state=state)

    def intend(state: Any, file: str) -> None:
        if store is not None and key:
            store.intend(key, state, file)

    sink.on_commit = commit
    if hasattr(sink, "on_intent"):
        sink.on_intent = intend
    q: queue.Queue = queue.Queue(maxsize=queue_size)

    def emit(item: Item) -> bool:
        return not stop.is_set() and _put(q, item, stop)

    def produce() -> None:
        try:
            source.run(emit, stop, initial)
            _put(q, _END, stop, final=True)
        except BaseException as exc:  # handed to the runner, which re-raises it after the shutdown
            _put(q, _Failure(exc), stop, final=True)

    thread = threading.Thread(target=produce, name=f"ingest-{source.name}", daemon=True)
    log.info("ingest from %s into the %s sink%s", source.name, sink.kind,
             f" (resuming from {initial})" if initial else "")
    thread.start()
    failure: BaseException | None = None
    reason = "stopped"
    try:
        while True:
            if stop.is_set():
                reason = "stopped"
                break
            deadline = sink.next_deadline()
            timeout = _POLL if deadline is None else min(_POLL, max(0.0, deadline - time.monotonic()))
            try:
                item = q.get(timeout=timeout) if timeout > 0 else q.get_nowait()
            except queue.Empty:
                item = None
            if item is _END:
                reason = "stopped" if stop.is_set() else "end of input"
                break
            if isinstance(item, _Failure):
                failure, reason = item.exc, f"error: {item.exc}"
                break
            if item is not None:
                _land(item, sink, status, on_post)
            sink.tick()
            _refresh(status, sink)
            if max_posts is not None and status["posts"] >= max_posts:
                reason = f"max posts ({max_posts})"
                break
    except BaseException as exc:
        failure, reason = exc, f"error: {exc}"
        raise
    finally:
        stop.set()
        try:
            sink.close()
        finally:
            thread.join(timeout=5)
            if thread.is_alive():
                log.warning("the %s source did not stop within 5 s; leaving it", source.name)
            _refresh(status, sink)
            status.set(running=False, stop_reason=reason, stopped_at=now_iso())
            status.write(force=True)
            log.info("ingest %s: %d posts, %d files, %d filtered, %d bad, %d dropped", reason, status["posts"],
                     status["files"], status["filtered"], status["bad"], status["dropped"])
    if failure is not None:
        raise failure
    return dict(status.data)


def _land(item: Item, sink: Sink, status: Status, on_post: Callable[[dict[str, Any]], None] | None) -> None:
    if item.record is None:
        if item.skipped == "filtered":
            status.add("filtered")
        elif item.skipped == "bad":
            status.add("bad")
        elif item.skipped == "error":
            status.error(item.note)
        else:
            status.add("skipped")
        if item.state is not None:
            sink.advance(item.state)
        return
    sink.write(to_line(item.record), item.state)
    status.add("posts")
    status.set(last_post_at=item.record["ingest_ts"])
    if on_post is not None:
        on_post(item.record)


def _refresh(status: Status, sink: Sink) -> None:
    status.set(files=sink.files, bytes=sink.bytes, dropped=sink.dropped, clients=sink.clients)
    status.write()
