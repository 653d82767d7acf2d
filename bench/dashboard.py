"""How fast the dashboard's Live page refreshes, and how much memory it holds, as the stream's history grows.

Writes a synthetic stream output (``--sizes`` posts, default 1M and 10M, over ``--days`` days up to now and
``--keywords`` keywords, partitioned ``date=``/``keyword=`` like Spark's sink; today's posts in many small files,
like micro-batches) into a temporary folder, then, for each size, in a fresh process: one Live-page refresh per
window (the functions ``page_live`` calls: the window's series, timeline, totals, per-keyword shares, latest posts,
status and health), first cold (a new reader: empty caches, a new DuckDB; the OS file cache is warm) and then warm
(median of ``--repeat``), and the peak RSS of the measuring process.
Prints one JSON line per figure on stdout::

    python bench/dashboard.py                       # 1M and 10M, about two minutes on 2 cores
    python bench/dashboard.py --sizes 200000 --keep /tmp/dash-bench
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WINDOWS = ("15m", "1h", "24h", "7d", "30d")


def generate(output: Path, rows: int, days: int, keywords: int, today_files: int, now: datetime) -> dict:
    """Posts with uniform ingest times over the last ``days`` days; today's partition in ~``today_files`` files per
    keyword. Timestamps are naive UTC (what Spark's INT96 columns read as)."""
    import duckdb

    db = duckdb.connect(config={"memory_limit": "2GB"})
    start = now - timedelta(days=days)
    span = (now - start).total_seconds()
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    select = f"""
        SELECT 'id' || i AS id, 'kw' || lpad((hash(i) % {keywords})::VARCHAR, 2, '0') AS keyword,
               'post number ' || i AS text, 'post number ' || i AS clean_text,
               CASE WHEN p < 0.4 THEN 'Negative' WHEN p > 0.6 THEN 'Positive' ELSE 'Neutral' END AS label,
               p AS p_positive, NULL::MAP(VARCHAR, DOUBLE) AS scores, 'tweet-sentiment:bench' AS model,
               ts AS created_at, ts AS ingest_ts, ts + INTERVAL 2 SECOND AS scored_ts, 'replay' AS source,
               'en' AS lang, 'u' || (i % 1000) AS author_id, ts::DATE AS date
        FROM (SELECT i, (hash(i * 7) % 1000000) / 1000000.0 AS p,
                     TIMESTAMP '{start.replace(tzinfo=None).isoformat()}'
                       + to_microseconds(((hash(i * 13) % 1000000) / 1000000.0 * {span * 1e6})::BIGINT) AS ts
              FROM range({rows}) r(i))"""
    today_s = today.replace(tzinfo=None).isoformat()
    started = time.perf_counter()
    db.execute(f"COPY ({select} WHERE ts < TIMESTAMP '{today_s}') TO '{output}' "
               "(FORMAT parquet, PARTITION_BY (date, keyword), FILENAME_PATTERN 'part-{uuid}', OVERWRITE_OR_IGNORE)")
    today_rows = db.sql(f"{select} WHERE ts >= TIMESTAMP '{today_s}' ORDER BY keyword, ts").to_arrow_table()
    write_micro_batches(output, today_rows, today_files)
    (output / "_spark_metadata").mkdir(exist_ok=True)
    files = sum(1 for _ in output.rglob("part-*.parquet"))
    today_dir = output / f"date={today.date().isoformat()}"
    return {"rows": rows, "days": days, "keywords": keywords, "files": files,
            "files_today": sum(1 for _ in today_dir.rglob("part-*.parquet")),
            "bytes": sum(p.stat().st_size for p in output.rglob("*.parquet")),
            "generate_s": round(time.perf_counter() - started, 2)}


def write_micro_batches(output: Path, table, files: int) -> None:
    """Today's rows as a stream writes them: per keyword, ``files`` time-ordered small files."""
    import uuid

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    data = table.drop_columns(["date", "keyword"])
    day = table.column("date")[0].as_py().isoformat() if table.num_rows else None
    for keyword in pc.unique(table.column("keyword")).to_pylist():
        rows = data.filter(pc.equal(table.column("keyword"), keyword))
        folder = output / f"date={day}" / f"keyword={keyword}"
        folder.mkdir(parents=True, exist_ok=True)
        step = max(1, -(-rows.num_rows // files))
        for offset in range(0, rows.num_rows, step):
            pq.write_table(rows.slice(offset, step), folder / f"part-{uuid.uuid4()}.c000.snappy.parquet")


def refresh(reader, stream_dir: Path, window: str, now: datetime) -> dict:
    """What one redraw of the Live page computes (page_live._body), without drawing."""
    from serving.dashboard import queries, sources, summary

    start, end, bucket_s = queries.window_bounds(window, now)
    state = sources.stream_state(stream_dir)
    sources.health(state.status, now=now, stale_s=60)
    series = reader.series(window, now)
    summary.overall(series)
    summary.timeline(series, start, end, bucket_s)
    summary.keyword_totals(series)
    summary.keyword_shares(series, start, end, bucket_s)
    reader.latest(50)
    return {"posts": int(series["n"].sum()), "series_rows": len(series)}


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_mb() -> float:
    """Resident memory now."""
    return _status_mb("VmRSS")


def peak_mb() -> float:
    """Peak resident memory of this process image (VmHWM; ru_maxrss would include the generator's peak, which a
    forked child inherits)."""
    return _status_mb("VmHWM")


def measure(stream_dir: Path, repeat: int, memory_mb: int) -> None:
    """Run in a fresh process: cold and warm refreshes of every window, then the peak RSS (one JSON line each)."""
    from serving.dashboard.queries import StreamReader

    now = datetime.fromisoformat(os.environ["BENCH_NOW"])
    base = {"bench": "dashboard", "rows": int(os.environ["BENCH_ROWS"])}
    print(json.dumps({**base, "figure": "rss_mb_start", "value": round(rss_mb(), 1)}), flush=True)
    for window in WINDOWS:
        reader = StreamReader(stream_dir / "output", memory_mb=memory_mb)  # cold: no cache, a new DuckDB
        started = time.perf_counter()
        facts = refresh(reader, stream_dir, window, now)
        cold = time.perf_counter() - started
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            refresh(reader, stream_dir, window, now)
            times.append(time.perf_counter() - started)
        print(json.dumps({**base, "figure": "refresh_s", "window": window, "cold_s": round(cold, 3),
                          "warm_s": round(statistics.median(times), 3), "warm_max_s": round(max(times), 3), **facts,
                          "rss_mb": round(rss_mb(), 1), "peak_rss_mb": round(peak_mb(), 1),
                          "cache": reader.cache_info()}), flush=True)
        reader.close()
    reader = StreamReader(stream_dir / "output", memory_mb=memory_mb)
    for window in ("1h", "24h"):  # the Drift page's live profile (not cached: it reads the window's files)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            reader.profile(window, now)
            times.append(time.perf_counter() - started)
        print(json.dumps({**base, "figure": "drift_profile_s", "window": window, "warm_s": round(
            statistics.median(times), 3)}), flush=True)
    reader.close()
    print(json.dumps({**base, "figure": "peak_rss_mb", "value": round(peak_mb(), 1), "rss_mb_end": round(rss_mb(), 1)}),
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="Comma-separated post counts (default 1M,10M).")
    parser.add_argument("--days", type=int, default=30, help="Days of history (default 30).")
    parser.add_argument("--keywords", type=int, default=20, help="Keywords (default 20).")
    parser.add_argument("--today-files", type=int, default=100,
                        help="About how many files each keyword's partition of today holds (default 100).")
    parser.add_argument("--repeat", type=int, default=5, help="Warm refreshes per window (median reported).")
    parser.add_argument("--memory-mb", type=int, default=1024, help="DuckDB memory limit (dashboard_memory_mb).")
    parser.add_argument("--keep", type=Path, help="Write the data here and keep it (default: a temporary folder).")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.repeat, args.memory_mb)
        return
    root = args.keep or Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    now = datetime.now(UTC)
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            stream = root / f"rows{size}" / "stream" / "bench"
            shutil.rmtree(stream, ignore_errors=True)
            (stream / "output").mkdir(parents=True)
            facts = generate(stream / "output", size, args.days, args.keywords, args.today_files, now)
            (stream / "status.json").write_text(json.dumps({"state": "running", "last_progress_utc": now.isoformat(),
                                                            "updated_utc": now.isoformat()}))
            print(json.dumps({"bench": "dashboard", "figure": "data", **facts}), flush=True)
            env = {**os.environ, "BENCH_NOW": now.isoformat(), "BENCH_ROWS": str(size),
                   "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
            subprocess.run([sys.executable, __file__, "--measure", str(stream), "--repeat", str(args.repeat),
                            "--memory-mb", str(args.memory_mb)], env=env, check=True)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
