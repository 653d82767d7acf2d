"""Helpers of the ingest tests: read the landing folder back, poll with deadlines."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIELDS = ("id", "text", "created_at", "keyword", "lang", "author_id", "source", "ingest_ts")


def landed_files(folder: Path) -> list[Path]:
    """The visible landing files (what Spark's file source would read), oldest first."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if not p.name.startswith((".", "_"))),
                  key=lambda p: (int(p.name.split("-")[1]), int(p.name.split("-")[3].split(".")[0])))


def read_landing(folder: Path) -> list[dict[str, Any]]:
    """Every record of the visible landing files, in order; each line must be one whole JSON object."""
    records = []
    for path in landed_files(folder):
        data = path.read_bytes()
        assert data.endswith(b"\n"), f"{path.name} does not end with a newline"
        for line in data.decode("utf-8").split("\n")[:-1]:
            record = json.loads(line)
            assert tuple(record) == FIELDS, record
            records.append(record)
    return records


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)
