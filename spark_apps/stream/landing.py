"""Write landing files the way the ingest bridge does: one JSON object per line, renamed into place.

A small helper for the tests and the benchmark (the ingest sources have their own writer); it follows the
landing contract: ``landing/part-*.jsonl``, written under a hidden temporary name (Spark ignores names starting
with ``.``) and renamed, so the job never sees half a file.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def iso_utc(moment: datetime | None = None) -> str:
    """``2026-12-01T08:00:00.123Z`` (UTC, milliseconds): the contract's ``ingest_ts`` format."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def post(id: str, text: str, *, source: str = "replay", keyword: str | None = None, created_at: str | None = None,
         lang: str | None = None, author_id: str | None = None, ingest_ts: str | None = None) -> dict[str, Any]:
    """One landing record (``ingest_ts`` defaults to now)."""
    return {"id": id, "text": text, "created_at": created_at, "keyword": keyword, "lang": lang,
            "author_id": author_id, "source": source, "ingest_ts": ingest_ts or iso_utc()}


def write_landing(landing: Path, records: Iterable[dict[str, Any] | str], name: str | None = None) -> Path:
    """Write ``records`` (dicts, or raw lines written as given) to a new landing file; return its path."""
    landing = Path(landing)
    landing.mkdir(parents=True, exist_ok=True)
    name = name or f"part-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.jsonl"
    tmp = landing / f".{name}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write((record if isinstance(record, str) else json.dumps(record, ensure_ascii=False)) + "\n")
    os.replace(tmp, landing / name)
    return landing / name
