"""The processes ``up`` starts, recorded under ``$SENTIMENT_HOME/run/`` (see :mod:`ml.components`, which the
Airflow side uses too, so ``make status`` and ``make down`` see what a DAG started)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ml import components
from ops.layout import ROOT, Layout, PlatformError


def read_pid(layout: Layout, component: str) -> dict[str, Any] | None:
    """The component's record if its leader process still runs (see :func:`ml.components.read`)."""
    return components.read(layout.run_dir, component)


def spawn(layout: Layout, component: str, cmd: list[str], env: dict[str, str], **facts: Any) -> dict[str, Any]:
    """Start ``cmd`` in its own session with its output in ``run/<component>.log``; record its pid."""
    return components.start(layout.run_dir, component, cmd, env, cwd=ROOT, **facts)


def stop(layout: Layout, component: str, grace: float = 30.0) -> list[int]:
    """End every process of the component's session (SIGTERM, then SIGKILL after ``grace`` s); return the pids."""
    try:
        return components.stop(layout.run_dir, component, grace)
    except components.ProcessError as exc:
        raise PlatformError(f"{component}: {exc}") from None


@contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """One ``up``/``down`` at a time."""
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    with open(layout.run_dir / "platform.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("another `python -m ops up/down` is running; waiting for it ...", flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield
