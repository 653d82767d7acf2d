"""Where a running service is: a small JSON file, ``{"url": ..., "model_tag": ..., "updated_utc": ...}``, rewritten
atomically by whoever starts or rolls the service (``make up``, the stream DAGs) and re-read by clients that must
follow it without a restart (the stream's scorer, before each call).

The platform keeps it at ``<home>/run/service-endpoint.json`` (:func:`endpoint_file`); the setting
``service_endpoint_file`` tells the Spark job to follow it. A missing or unreadable file means "use the configured
``service_url``".
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ENDPOINT_FILE = "service-endpoint.json"


def endpoint_file(run_dir: Path) -> Path:
    """The platform's endpoint file under ``<home>/run/``."""
    return Path(run_dir) / ENDPOINT_FILE


def write_endpoint(path: Path, url: str, **facts: Any) -> dict[str, Any]:
    """Point ``path`` at ``url`` (atomically: a temporary sibling renamed over it); return the document."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"url": url.rstrip("/"), **facts,
           "updated_utc": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc) + "\n")
    os.replace(tmp, path)
    return doc


def read_endpoint(path: Path | str | None) -> dict[str, Any] | None:
    """The endpoint document at ``path`` (with a non-empty ``url``), or ``None``."""
    if not path:
        return None
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("url"), str) and doc["url"] else None
