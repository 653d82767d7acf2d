"""The run record: ``reports/<run_id>/run.json``, the plan, data version, champion, tags, failures and outcome.

Parallel tasks of a run update it under an exclusive lock with atomic writes, so none loses another's update.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ml.settings import Settings

#: Name of the record each run keeps in ``reports/<run_id>/``.
RUN_RECORD = "run.json"


def record_failure(plan: Mapping[str, Any], *, task_id: str, map_index: int = -1, family: str | None = None,
                   error: str = "") -> dict[str, Any]:
    """Append a failed task (and its family) to the run's record; the history survives later retries."""
    failure = {"task_id": task_id, "map_index": map_index, "family": family, "error": error[:2000], "at": now()}
    from sentiment_platform.pipeline.plan import settings_for

    return update_record(settings_for(plan), lambda record: {"failures": [*record.get("failures", []), failure]})


def read_run_record(settings: Settings) -> dict[str, Any] | None:
    """``reports/<run_id>/run.json``: the run's plan, data version, champion, tags and outcome."""
    path = settings.reports_dir / RUN_RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def update_record(settings: Settings, fields: Mapping[str, Any] | Callable[[dict], Mapping[str, Any]]) -> dict:
    """Merge ``fields`` (or ``fields(record)``) into the run's record, written atomically.

    The read-modify-write holds an exclusive lock, so parallel tasks (mapped training tasks failing at the same
    moment) never lose each other's updates.
    """
    path = settings.reports_dir / RUN_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{RUN_RECORD}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = json.loads(path.read_text()) if path.is_file() else {}
        record.update(fields(record) if callable(fields) else fields)
        fd, tmp = tempfile.mkstemp(prefix=f".{RUN_RECORD}.", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh, indent=2, default=str)
        os.replace(tmp, path)
    return record
