"""Fixture files in the layouts other parts of the platform write: the Spark job's partitioned parquet (with
``_spark_metadata``, ``.crc`` files and Hive's null partition), its status file, the supervisor's and the ingest's
files, the report DAG's daily summaries, and training runs (leaderboard, run record, figures)."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema([
    ("id", pa.string()), ("keyword", pa.string()), ("text", pa.string()), ("clean_text", pa.string()),
    ("label", pa.string()), ("p_positive", pa.float64()), ("scores", pa.map_(pa.string(), pa.float64())),
    ("model", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")), ("ingest_ts", pa.timestamp("us", tz="UTC")),
    ("scored_ts", pa.timestamp("us", tz="UTC")), ("source", pa.string()), ("lang", pa.string()),
    ("author_id", pa.string()),
])
MODEL = "tweet-sentiment:fixture01"
P_BY_LABEL = {"Positive": (0.62, 0.99), "Negative": (0.01, 0.38), "Neutral": (0.41, 0.59)}
#: Posts of the last hour: keyword -> label -> count (None: posts without a keyword).
LAST_HOUR = {"kindle": {"Positive": 12, "Negative": 5, "Neutral": 3},
             "obama": {"Positive": 4, "Negative": 8, "Neutral": 2},
             "machine learning": {"Positive": 3, "Negative": 1},
             None: {"Positive": 1, "Negative": 1, "Neutral": 1}}


def post(ts: datetime, keyword: str | None, label: str, *, p: float | None = None, text: str | None = None,
         scores: dict[str, float] | None = None, rng: random.Random | None = None) -> dict[str, Any]:
    rng = rng or random.Random(0)
    if p is None and label in P_BY_LABEL and text != "":
        p = round(rng.uniform(*P_BY_LABEL[label]), 4)
    text = f"{label.lower()} post about {keyword} {uuid.uuid4().hex[:6]}" if text is None else text
    return {"id": uuid.uuid4().hex, "keyword": keyword, "text": text, "clean_text": text.lower(), "label": label,
            "p_positive": p, "scores": scores, "model": MODEL, "created_at": ts, "ingest_ts": ts,
            "scored_ts": ts + timedelta(seconds=2), "source": "replay", "lang": "en", "author_id": "u1"}


def sample_rows(now: datetime, seed: int = 7) -> list[dict[str, Any]]:
    """:data:`LAST_HOUR` spread over 1..50 minutes ago, plus older posts (3 h, 2 days and 10 days ago), one
    three-class answer with scores and one empty text (Neutral, no probability)."""
    rng = random.Random(seed)
    rows = []
    for keyword, counts in LAST_HOUR.items():
        for label, n in counts.items():
            for _ in range(n):
                rows.append(post(now - timedelta(minutes=rng.uniform(1, 50)), keyword, label, rng=rng))
    rows[-1] = post(now - timedelta(minutes=5), None, "Neutral", p=None, text="")  # nothing left of the text
    rows.append(post(now - timedelta(minutes=3), "kindle", "Positive", p=0.8,
                     scores={"Positive": 0.8, "Negative": 0.05, "Neutral": 0.15}, rng=rng))
    for hours, n in ((3, 6), (48, 10), (240, 8)):
        for i in range(n):
            rows.append(post(now - timedelta(hours=hours, minutes=i), "kindle" if i % 2 else "obama",
                             "Negative" if i % 3 else "Positive", rng=rng))
    return rows


def write_output(output: Path, rows: list[dict[str, Any]], *, partition_by: tuple[str, ...] = ("date", "keyword"),
                 files_per_partition: int = 2, batch: int = 0) -> list[Path]:
    """Write ``rows`` as Spark's parquet sink does: ``date=``/``keyword=`` folders (null keyword:
    ``__HIVE_DEFAULT_PARTITION__``), ``part-*.c000.snappy.parquet`` files with ``.crc`` siblings, INT96 timestamps,
    partition columns left out of the files, and a ``_spark_metadata/<batch>`` log."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        values = {"date": row["ingest_ts"].astimezone(UTC).date().isoformat(),
                  "keyword": row["keyword"] if row["keyword"] is not None else "__HIVE_DEFAULT_PARTITION__"}
        groups[tuple(values[k] for k in partition_by)].append(row)
    schema = pa.schema([f for f in SCHEMA if f.name not in partition_by])
    written = []
    for values, members in sorted(groups.items()):
        folder = Path(output, *[f"{k}={v}" for k, v in zip(partition_by, values, strict=True)])
        folder.mkdir(parents=True, exist_ok=True)
        chunks = [members[i::files_per_partition] for i in range(files_per_partition)]
        for i, chunk in enumerate(c for c in chunks if c):
            path = folder / f"part-{i:05d}-{uuid.uuid4()}.c000.snappy.parquet"
            table = pa.Table.from_pylist([{k: r[k] for k in schema.names} for r in chunk], schema=schema)
            pq.write_table(table, path, compression="snappy", use_deprecated_int96_timestamps=True)
            (folder / f".{path.name}.crc").write_bytes(b"crc")
            written.append(path)
    meta = Path(output, "_spark_metadata")
    meta.mkdir(parents=True, exist_ok=True)
    (meta / str(batch)).write_text("v1\n" + "\n".join(json.dumps({"path": f"file://{p}", "size": p.stat().st_size,
                                                                   "isDir": False, "action": "add"}) for p in written))
    return written


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_status(stream_dir: Path, now: datetime, *, batch_age_s: float = 2.0, update_age_s: float = 1.0,
                 state: str = "running", **fields: Any) -> dict[str, Any]:
    """A status file shaped like the Spark job's (``schema_version`` 1), written atomically."""
    doc = {"schema_version": 1, "stream": stream_dir.name, "state": state, "error": None, "stop_reason": None,
           "query_id": "q-1", "run_id": "r-1", "batch_id": 41, "last_progress_utc": iso(now - timedelta(seconds=batch_age_s)),
           "updated_utc": iso(now - timedelta(seconds=update_age_s)), "input_rows_per_s": 48.5,
           "processed_rows_per_s": 210.25, "batch_duration_ms": 830,
           "last_batch": {"rows_in": 240, "written": 238, "dead_letters": 2, "duplicates": 0},
           "latency_ms": {"p50": 412.0, "p95": 950.5}, "model": MODEL, "models": [MODEL],
           "totals": {"rows_in": 12345, "written": 12000, "dead_letters": 37, "duplicates": 300,
                      "late_rows_dropped": 8, "batches": 42},
           "totals_exact": True, "driver": {"pid": 1, "jvm_pid": 2, "host": "h", "started_utc": iso(now)},
           "config": {}, "paths": {}, **fields}
    stream_dir.mkdir(parents=True, exist_ok=True)
    tmp = stream_dir / ".status.json.tmp"
    tmp.write_text(json.dumps(doc))
    tmp.replace(stream_dir / "status.json")
    return doc


def write_side_files(stream_dir: Path, now: datetime, restarts: int = 2) -> None:
    """The ingest's status and the supervisor's record."""
    (stream_dir / "ingest").mkdir(parents=True, exist_ok=True)
    (stream_dir / "ingest" / "status.json").write_text(json.dumps({
        "source": "replay", "running": True, "posts": 12400, "files": 80, "filtered": 0, "skipped": 0, "bad": 3,
        "dropped": 0, "errors": 0, "last_error": None, "last_post_at": iso(now), "updated_at": iso(now)}))
    (stream_dir / "supervisor.json").write_text(json.dumps({"restarts": restarts, "events": [
        {"at": iso(now - timedelta(hours=2)), "cause": "driver exited with 137"},
        {"at": iso(now - timedelta(hours=1)), "cause": "status file stale for 300 s"}][-restarts:]}))


def reference_profile(n: int = 1000) -> dict[str, Any]:
    return {"labels": {"Negative": 400, "Neutral": 150, "Positive": 450},
            "score_hist": [150, 120, 80, 50, 70, 80, 50, 90, 140, 170], "n": n}


def write_daily_reports(stream_dir: Path, days: list[date], drift_on: set[date] = frozenset()) -> None:
    for i, day in enumerate(days):
        folder = stream_dir / "reports" / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        drifted = day in drift_on
        (folder / "summary.json").write_text(json.dumps({
            "stream": stream_dir.name, "date": day.isoformat(), "rows": 1000 + i,
            "by_keyword": {"kindle": {"counts": {"Positive": 10}, "shares": {"Positive": 1.0}, "mean_p_positive": 0.8}},
            "drift": {"psi": 0.35 if drifted else 0.05 + 0.01 * i, "js": 0.15 if drifted else 0.02,
                      "psi_threshold": 0.2, "js_threshold": 0.1, "drift": drifted, "n_reference": 1000,
                      "n_live": 1000 + i},
            "reference_model": MODEL}))
        _png(folder / "chart.png", (200, 120, 120))


def write_run(reports_root: Path, run_id: str, *, status: str = "success", champion: str = "logreg",
              model_tag: str = MODEL, extra_column: bool = False) -> Path:
    """A training run's report folder: leaderboard.json (best first), run.json, leaderboard.png, confusion PNGs."""
    folder = reports_root / run_id
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for model, family, acc, ref in (("logreg", "logreg", 0.7921, 79.2), ("linearsvc", "linearsvc", 0.7833, 78.8),
                                    ("multinomialnb", "multinomialnb", 0.7712, 77.5)):
        row = {"model": model, "family": family, "accuracy": acc, "precision": acc - 0.01, "recall": acc + 0.01,
               "f1": acc - 0.002, "roc_auc": acc + 0.08, "n_val": 1000, "test_accuracy": acc + 0.02,
               "test3_accuracy": acc - 0.2, "test3_macro_f1": acc - 0.25, "n_test": 498, "train_seconds": 12.5,
               "n_train": 4000, "labels": ["negative", "positive"], "data_version": "dv-1234", "run_id": run_id,
               "path": f"/models/{run_id}/{model}", "reference_accuracy": ref, "teacher": None,
               "reference": reference_profile()}
        if extra_column:
            row["test3_balanced_accuracy"] = acc - 0.1
        rows.append(row)
        _png(folder / f"confusion_{model}.png", (120, 120, 200))
    (folder / "leaderboard.json").write_text(json.dumps(rows))
    _png(folder / "leaderboard.png", (120, 200, 120))
    (folder / "run.json").write_text(json.dumps({
        "dag_id": "sentiment140_training", "dag_run_id": f"manual__{run_id}", "run_id": run_id,
        "families": ["logreg", "linearsvc", "multinomialnb"], "train": {"max_samples": 4000},
        "settings": {"seed": 42}, "status": status, "data_version": "dv-1234", "champion": champion,
        "model_tag": model_tag, "finished_at": "2026-11-30T10:00:00+00:00"}))
    return folder


def _png(path: Path, colour: tuple[int, int, int]) -> None:
    from PIL import Image

    Image.new("RGB", (64, 48), colour).save(path)
