"""The platform's one process launcher: start a command in its own session with its output in a log, wait until it
is ready, stop the whole session (SIGTERM, then SIGKILL), and find what is left of a session started earlier.

Used by :class:`serving.launch.BentoServer`, the streaming job's supervisor, ``python -m ops`` (``make up``), the
benchmarks and the tests, so every long-running child is started and stopped the same way. It sits at the bottom
of the layers (standard library only) because every layer above starts processes.

>>> with Process([sys.executable, "-m", "http.server", "8001"], name="web") as web:   # doctest: +SKIP
...     web.wait_http("http://127.0.0.1:8001/", timeout=10)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ProcessError(RuntimeError):
    """A child exited while it was awaited, or survived SIGKILL."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def environ(overrides: Mapping[str, str | None] | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with ``overrides`` applied; a ``None`` value removes a name."""
    env = dict(os.environ if base is None else base)
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (guards against a recycled pid); ``None`` if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def session_members(sid: int) -> list[int]:
    """Live processes of session ``sid`` (every child started here leads a session of its own)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def descendants(pids: Sequence[int]) -> list[int]:
    """Live descendants of ``pids`` (children that left the session, such as the workers a process manager starts
    with ``setsid``, included)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], list(pids)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def signal_all(pids: Sequence[int], sig: int) -> None:
    """Send ``sig`` to the process groups of ``pids`` and to each of them (members that left their group)."""
    groups = set()
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            continue
    for group in groups:
        try:
            os.killpg(group, sig)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_session(sid: int, grace: float = 30.0, *, reap: Callable[[], Any] | None = None) -> list[int]:
    """End every process of session ``sid`` and their descendants in other sessions: SIGTERM, then SIGKILL after
    ``grace`` seconds; return their pids.

    ``reap`` (e.g. ``Popen.poll``) is called while waiting so that a child of this process does not linger as a
    zombie. Raises :class:`ProcessError` if a member survives SIGKILL.
    """
    members = session_members(sid)
    # processes that left the session (setsid), known by their start time so that a recycled pid is never hit
    strays = {pid: start_time(pid) for pid in descendants(members) if pid not in members}

    def alive() -> list[int]:
        if reap is not None:
            reap()
        left = session_members(sid)
        return left + [pid for pid, started in strays.items() if pid not in left and started
                       and start_time(pid) == started]

    members = alive()
    signal_all(members, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    left = alive()
    if left:
        signal_all(left, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive() and time.monotonic() < deadline:
            time.sleep(0.1)
    left = alive()
    if left:
        raise ProcessError(f"processes {left} of session {sid} survived SIGKILL")
    return members


def http_status(url: str, timeout: float = 2.0) -> int:
    """The status of ``GET url``; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError):
        return 0


class Process:
    """A command in a session of its own, its output appended to a log file.

    Args:
        cmd: The command line.
        cwd: Working directory.
        env: The child's whole environment (see :func:`environ`); default: this process's.
        log: Log file (appended to); default: a new temporary file, removed by a clean ``__exit__``.
        name: Shown in error messages.
    """

    def __init__(self, cmd: Sequence[str], *, cwd: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None, log: str | os.PathLike[str] | None = None,
                 name: str | None = None) -> None:
        self.cmd = [str(c) for c in cmd]
        self.cwd = Path(cwd) if cwd else None
        self.env = dict(env) if env is not None else None
        self.name = name or Path(self.cmd[0]).name
        self._own_log = log is None
        if log is None:
            fd, path = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")
            os.close(fd)
            log = path
        self.log_path = Path(log)
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ProcessError(f"{self.name} was not started")
        return self.proc.pid

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(self.cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_until(self, check: Callable[[], T], timeout: float, what: str = "ready", interval: float = 0.25) -> T:
        """Poll ``check()`` until it returns something truthy; fail if the process exits or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if not self.running():
                code = None if self.proc is None else self.proc.returncode
                raise ProcessError(f"{self.name} exited with {code} before it was {what}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not {what} after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(interval)

    def wait_http(self, url: str, timeout: float, status: int = 200) -> None:
        """Wait until ``GET url`` answers ``status``."""
        self.wait_until(lambda: http_status(url) == status, timeout, f"answering {url}")

    def stop(self, grace: float = 20.0) -> list[int]:
        """End the process and everything it started in its session; return their pids."""
        if self.proc is None:
            return []
        members = stop_session(self.proc.pid, grace, reap=self.proc.poll)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - the session is gone, so is the leader
            pass
        return members

    def __enter__(self) -> Process:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
        if exc_type is None and self._own_log:  # keep the log when something went wrong
            self.log_path.unlink(missing_ok=True)
