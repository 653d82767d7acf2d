"""Start a real ``bentoml serve`` in a subprocess on a free loopback port (tests, benchmarks, the platform).

>>> with BentoServer(env={"SENTIMENT_HOME": "/data/sentiment"}) as server:   # doctest: +SKIP
...     httpx.post(f"{server.url}/classify", json={"texts": ["I love it"]})
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ml.processes import Process, environ, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVICE = "serving.service:TweetSentiment"

__all__ = ["BentoServer", "REPO_ROOT", "SERVICE", "free_port"]


class BentoServer(Process):
    """``bentoml serve [target] --port N`` as a context manager that waits for ``/readyz`` and stops the server.

    Args:
        target: What to serve (``serving.service:TweetSentiment``, a Bento tag); ``None`` serves the
            ``bentofile.yaml`` of ``cwd``.
        cwd: Working directory (default: the repository root).
        env: Extra environment variables (merged over the current environment; ``None`` values remove one).
        host: Passed as ``--host`` when given; otherwise the service's own default (127.0.0.1) applies.
        port: Default: a free port.
        ready_timeout: Seconds to wait for ``/readyz``.
        log: Log file; default: a temporary file, kept when the server failed.
    """

    def __init__(self, target: str | None = SERVICE, *, cwd: str | os.PathLike | None = None,
                 env: dict[str, str | None] | None = None, host: str | None = None, port: int | None = None,
                 ready_timeout: float = 120.0, log: str | os.PathLike | None = None) -> None:
        self.target = target
        self.host = host
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_timeout = ready_timeout
        cmd = [sys.executable, "-m", "bentoml", "serve", *([target] if target else []), "--port", str(self.port)]
        if host:
            cmd += ["--host", host]
        super().__init__(cmd, cwd=cwd or REPO_ROOT, env=environ({"BENTOML_DO_NOT_TRACK": "True", **(env or {})}),
                         log=log, name="bentoml-serve")

    def start(self) -> BentoServer:
        super().start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until ``/readyz`` answers 200 (raises ``ProcessError`` if the server exits, or ``TimeoutError``)."""
        self.wait_http(f"{self.url}/readyz", self.ready_timeout if timeout is None else timeout)
