"""The small files other parts of the platform write, read for the dashboard; every reader copes with absence.

* ``stream/<name>/status.json`` (the Spark job), ``supervisor.json`` (the Airflow supervisor),
  ``ingest/status.json`` (the ingest bridge): :func:`stream_state` and the verdict of :func:`health`;
* ``stream/<name>/reports/date=YYYY-MM-DD/summary.json`` (the daily report DAG): :func:`daily_reports`;
* ``reports/<run>/leaderboard.json`` and ``run.json`` (training): :func:`runs`, :func:`champion`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Health levels, worst first, and the colour the page paints them.
COLOURS = {"failed": "red", "stale": "red", "missing": "gray", "stopped": "gray", "starting": "orange",
           "ok": "green"}


def read_json(path: Path) -> Any:
    """The JSON in ``path``; ``None`` when it is missing, unreadable or half-written."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s (%s)", path, exc)
        return None


def _object(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def parse_utc(value: Any) -> datetime | None:
    """An ISO-8601 time (``...Z`` or with an offset; naive means UTC) as an aware UTC datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def stream_names(stream_root: Path, default: str) -> list[str]:
    """Streams under ``stream_root`` (a folder with a ``status.json`` or an ``output/``), ``default`` first."""
    found = []
    if Path(stream_root).is_dir():
        for folder in sorted(Path(stream_root).iterdir()):
            if folder.is_dir() and ((folder / "status.json").is_file() or (folder / "output").is_dir()):
                found.append(folder.name)
    return [default, *[name for name in found if name != default]]


@dataclass
class StreamState:
    """What the stream's writers said last: the job's status, the supervisor's and the ingest's."""

    status: dict[str, Any] | None
    supervisor: dict[str, Any] | None
    ingest: dict[str, Any] | None

    @property
    def restarts(self) -> int:
        counts = [(self.status or {}).get("restarts", 0), (self.supervisor or {}).get("restarts", 0)]
        return max([int(c) for c in counts if isinstance(c, int | float) and not isinstance(c, bool)] or [0])

    @property
    def restart_events(self) -> list[dict[str, Any]]:
        events = (self.supervisor or {}).get("events") or []
        return [e for e in events if isinstance(e, dict)][-10:]

    @property
    def totals(self) -> dict[str, int]:
        return dict((self.status or {}).get("totals") or {})

    @property
    def model(self) -> str | None:
        return (self.status or {}).get("model")


def stream_state(stream_dir: Path) -> StreamState:
    return StreamState(status=_object(read_json(stream_dir / "status.json")),
                       supervisor=_object(read_json(stream_dir / "supervisor.json")),
                       ingest=_object(read_json(stream_dir / "ingest" / "status.json")))


@dataclass
class Health:
    """The stream's health: ``level`` (a key of :data:`COLOURS`), the reason, and the ages it was judged on."""

    level: str
    reason: str
    batch_age_s: float | None = None
    update_age_s: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def colour(self) -> str:
        return COLOURS[self.level]

    @property
    def ok(self) -> bool:
        return self.level == "ok"


def health(status: dict[str, Any] | None, *, now: datetime, stale_s: float) -> Health:
    """Judge the stream from its status file: failed, stale (no micro-batch, or no update of the file, for more
    than ``stale_s`` seconds), starting, stopped, missing or ok."""
    if not status:
        return Health("missing", "no status file: the stream has not started here")
    last_batch = parse_utc(status.get("last_progress_utc"))
    updated = parse_utc(status.get("updated_utc"))
    batch_age = None if last_batch is None else max(0.0, (now - last_batch).total_seconds())
    update_age = None if updated is None else max(0.0, (now - updated).total_seconds())
    state = status.get("state") or "unknown"
    ages = {"batch_age_s": batch_age, "update_age_s": update_age}
    if state == "failed":
        return Health("failed", f"failed: {status.get('error') or 'no error recorded'}", **ages)
    if state in ("stopped", "stopping"):
        return Health("stopped", f"{state}: {status.get('stop_reason') or 'no reason recorded'}", **ages)
    if update_age is None or update_age > stale_s:
        since = "never" if update_age is None else f"{update_age:.0f} s ago"
        return Health("stale", f"stale: the status file was last updated {since} (limit {stale_s:.0f} s); "
                               "is the driver alive?", **ages)
    if state == "starting" and batch_age is None:
        return Health("starting", "starting: no micro-batch yet", **ages)
    if batch_age is None or batch_age > stale_s:
        since = "never" if batch_age is None else f"{batch_age:.0f} s ago"
        return Health("stale", f"stale: the last micro-batch finished {since} (limit {stale_s:.0f} s)", **ages)
    return Health("ok", f"{state}: last micro-batch {batch_age:.0f} s ago", **ages)


def daily_reports(stream_dir: Path) -> list[dict[str, Any]]:
    """One row per ``reports/date=YYYY-MM-DD/summary.json``, oldest first: date, rows, drift figures, chart."""
    root = Path(stream_dir) / "reports"
    rows = []
    for folder in sorted(root.glob("date=*")) if root.is_dir() else []:
        summary = _object(read_json(folder / "summary.json"))
        if summary is None:
            continue
        drift = _object(summary.get("drift")) or {}
        chart = folder / "chart.png"
        rows.append({"date": summary.get("date") or folder.name.split("=", 1)[1], "rows": summary.get("rows"),
                     "psi": drift.get("psi"), "js": drift.get("js"), "psi_threshold": drift.get("psi_threshold"),
                     "js_threshold": drift.get("js_threshold"), "drift": drift.get("drift"),
                     "n_live": drift.get("n_live"), "n_reference": drift.get("n_reference"),
                     "reference_model": summary.get("reference_model"),
                     "chart": str(chart) if chart.is_file() else None, "folder": str(folder)})
    return rows


@dataclass
class Run:
    """One training run's reports: its id, leaderboard rows, run record and figure files."""

    run_id: str
    folder: Path
    rows: list[dict[str, Any]]
    record: dict[str, Any]
    mtime: float

    @property
    def succeeded(self) -> bool:
        return self.record.get("status") == "success"

    def figure(self, name: str) -> Path | None:
        path = self.folder / name
        return path if path.is_file() else None

    def confusion(self, model: str) -> Path | None:
        return self.figure(f"confusion_{model}.png")

    def row(self, model: str | None) -> dict[str, Any] | None:
        return next((r for r in self.rows if r.get("model") == model), None)


def runs(reports_root: Path) -> list[Run]:
    """Every run with a readable leaderboard, newest first (by its record's finish time, else file time)."""
    found = []
    for board in Path(reports_root).glob("*/leaderboard.json") if Path(reports_root).is_dir() else []:
        rows = read_json(board)
        if not isinstance(rows, list):
            continue
        record = _object(read_json(board.parent / "run.json")) or {}
        stamp = parse_utc(record.get("finished_at"))
        mtime = stamp.timestamp() if stamp else board.stat().st_mtime
        found.append(Run(board.parent.name, board.parent, [r for r in rows if isinstance(r, dict)], record, mtime))
    return sorted(found, key=lambda r: r.mtime, reverse=True)


def champion(all_runs: list[Run], stream_model: str | None = None) -> dict[str, Any] | None:
    """The model the live stream is compared with, and where that choice came from.

    The run whose packaged ``model_tag`` the stream reports; else the latest successful run's champion; else the
    best row of the newest leaderboard (:func:`ml.champion.select_champion`). ``None`` without any leaderboard.
    """
    from ml.champion import select_champion
    from ml.errors import ModelError

    def pick(run: Run, how: str) -> dict[str, Any] | None:
        row = run.row(run.record.get("champion"))
        if row is None:
            try:
                row = select_champion(run.rows)
            except ModelError:
                return None
        return {"run": run.run_id, "model": row.get("model"), "model_tag": run.record.get("model_tag"),
                "reference": _object(row.get("reference")), "row": row, "how": how}

    if stream_model:
        for run in all_runs:
            if run.record.get("model_tag") == stream_model and (found := pick(run, "the model the stream uses")):
                return found
    for run in all_runs:
        if run.succeeded and run.record.get("champion") and (found := pick(run, "the latest successful run")):
            return found
    for run in all_runs:
        if found := pick(run, "the newest leaderboard"):
            return found
    return None
