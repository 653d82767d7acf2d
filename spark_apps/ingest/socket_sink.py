"""The write-up's TCP socket as a sink: each post one JSON line to the connected client (Spark's socket source).

Not fault tolerant (Spark documents its socket source as testing-only): the default sink writes landing files.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections import deque
from typing import Any

from spark_apps.ingest.sinks import Commit

log = logging.getLogger(__name__)


class SocketSink:
    """A TCP server that sends each post as one JSON line to the connected client (Spark's socket source).

    One client at a time: a new connection replaces the current one (whose end may be dead without our knowing),
    and after a client disconnects the next one is accepted, so a restarted Spark query reconnects. While no client
    is connected, posts wait in a buffer of ``buffer`` posts, sent first to the next client; when it is full, the
    oldest post is dropped and counted in :attr:`dropped`. Spark's socket source is not fault tolerant: posts sent
    to a client that dies before reading them are lost. The position is saved once the posts before it were sent.

    Args:
        host: Bind address.
        port: Port (0: any free port; see :attr:`port`).
        buffer: Most posts kept while no client is connected.
        on_commit: Called with the position of the last post handed to a client.
        send_timeout: A client that accepts no data for this long is dropped.
    """

    kind = "socket"

    def __init__(self, host: str = "127.0.0.1", port: int = 9999, *, buffer: int = 10_000,
                 on_commit: Commit | None = None, send_timeout: float = 30.0):
        self.on_commit = on_commit
        self.send_timeout = send_timeout
        self.files = 0
        self.bytes = 0
        self.dropped = 0
        self.clients = 0
        self._buffer: deque[bytes] = deque()
        self._limit = buffer
        self._pending: Any = None
        self._client: socket.socket | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._server = socket.create_server((host, port), reuse_port=False)
        self._server.listen(8)
        self.port = self._server.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name="ingest-socket-accept", daemon=True)
        self._acceptor.start()
        log.info("socket sink listening on %s:%d", host, self.port)

    @property
    def connected(self) -> bool:
        return self._client is not None

    def write(self, line: bytes, state: Any = None) -> None:
        with self._lock:
            if self._client is not None and self._send(self._client, line):
                self._commit(state)
                return
            self._keep(line, state)

    def advance(self, state: Any) -> None:
        with self._lock:
            if self._buffer:
                self._pending = state
            else:
                self._commit(state)

    def next_deadline(self) -> float | None:
        return None

    def tick(self) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._buffer:
                log.warning("socket sink closing with %d posts no client received", len(self._buffer))
            self._drop_client()
        try:
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (a bare close does not)
        except OSError:
            pass
        self._server.close()
        self._acceptor.join(timeout=2)

    # ------------------------------------------------------------------------------------------- internals
    def _keep(self, line: bytes, state: Any) -> None:
        if self._limit == 0:
            self.dropped += 1
        else:
            if len(self._buffer) >= self._limit:
                self._buffer.popleft()
                self.dropped += 1
            self._buffer.append(line)
        self._pending = state if state is not None else self._pending

    def _send(self, client: socket.socket, data: bytes) -> bool:
        try:
            client.sendall(data)
        except OSError as exc:
            log.info("socket client gone (%s): keeping posts for the next one", exc)
            self._drop_client()
            return False
        self.bytes += len(data)
        return True

    def _commit(self, state: Any) -> None:
        if state is not None and self.on_commit is not None:
            self.on_commit(state)

    def _drop_client(self) -> None:
        if self._client is not None:
            try:
                self._client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._client.close()
            self._client = None

    def _accept_loop(self) -> None:
        while True:
            try:
                client, address = self._server.accept()
            except OSError:
                return  # closed
            client.settimeout(self.send_timeout)
            with self._lock:
                if self._closed:
                    client.close()
                    return
                if self._client is not None:
                    log.info("a new socket client replaces the current one")
                    self._drop_client()
                self._client = client
                self.clients += 1
                log.info("socket client %s:%d connected; sending %d buffered posts", *address[:2], len(self._buffer))
                while self._buffer and self._client is client:
                    if not self._send(client, self._buffer[0]):
                        break
                    self._buffer.popleft()
                if not self._buffer and self._client is client:
                    self._commit(self._pending)
                    self._pending = None
            threading.Thread(target=self._watch, args=(client,), name="ingest-socket-client", daemon=True).start()

    def _watch(self, client: socket.socket) -> None:
        """Notice a client that hangs up while no post is being sent (it never sends anything itself)."""
        while True:
            try:
                readable, _, _ = select.select([client], [], [], 1.0)
                if not readable:
                    if self._client is not client:
                        return
                    continue
                data = client.recv(4096)
            except (OSError, ValueError):
                data = b""
            if not data:
                with self._lock:
                    if self._client is client:
                        log.info("socket client disconnected")
                        self._drop_client()
                return
