"""Start a real ``bentoml serve`` in a subprocess on a free loopback port (for tests, benchmarks and scripts).

>>> with BentoServer(env={"SENTIMENT_HOME": "/data/sentiment"}) as server:   # doctest: +SKIP
...     httpx.post(f"{server.url}/classify", json={"texts": ["I love it"]})
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class BentoServer:
    """``bentoml serve [target] --port N`` as a context manager that waits for ``/readyz`` and stops the server.

    Args:
        target: What to serve (``serving.service:TweetSentiment``, a Bento tag); ``None`` serves the
            ``bentofile.yaml`` of ``cwd``.
        cwd: Working directory (default: the repository root).
        env: Extra environment variables (merged over the current environment; ``None`` values remove one).
        host: Passed as ``--host`` when given; otherwise the service's own default (127.0.0.1) applies.
        port: Default: a free port.
        ready_timeout: Seconds to wait for ``/readyz``.
    """

    def __init__(self, target: str | None = "serving.service:TweetSentiment", *, cwd: str | os.PathLike | None = None,
                 env: dict[str, str | None] | None = None, host: str | None = None, port: int | None = None,
                 ready_timeout: float = 120.0) -> None:
        self.target = target
        self.cwd = Path(cwd) if cwd else REPO_ROOT
        self.env = {**os.environ, "BENTOML_DO_NOT_TRACK": "True"}
        for key, value in (env or {}).items():
            if value is None:
                self.env.pop(key, None)
            else:
                self.env[key] = value
        self.host = host
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="bentoml-serve-", suffix=".log", delete=False)

    @property
    def log_path(self) -> Path:
        return Path(self._log.name)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> BentoServer:
        cmd = [sys.executable, "-m", "bentoml", "serve"]
        if self.target:
            cmd.append(self.target)
        cmd += ["--port", str(self.port)]
        if self.host:
            cmd += ["--host", self.host]
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bentoml serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"bentoml serve not ready after {self.ready_timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the server's process group (the server and its workers), then SIGKILL what is left."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def __enter__(self) -> BentoServer:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
        self._log.close()
        if exc_type is None:  # keep the log when something went wrong
            self.log_path.unlink(missing_ok=True)
