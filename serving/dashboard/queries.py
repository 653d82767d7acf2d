"""The dashboard's queries over a stream's output parquet: DuckDB aggregates that return small frames.

The output is Spark's parquet sink, partitioned by ``date`` (the UTC date of ``ingest_ts``) and/or ``keyword``
(``output/date=2026-12-01/keyword=kindle/part-*.parquet``, plus ``_spark_metadata/``, which is ignored). The
partition columns are read from the folder names, so any ``stream_partition_by`` works. A query lists only the
``date=`` folders its window touches, reads only the columns it needs and aggregates inside DuckDB; what comes
back is one row per (time bucket, keyword, label), the latest posts, or a profile of 10 bins.

What a refresh reads is bounded by what changed (:mod:`serving.dashboard.cache`): the days still being written
(today and yesterday) are aggregated incrementally, each new part file read once; older days are aggregated whole
once and kept in a small LRU keyed by a signature of their folders. The latest posts come from the newest files.
Memory is bounded by those caches and DuckDB's memory limit, not by the stream's history.

Spark's sink writes part files in place, so a file may still be incomplete when it is listed: live days skip files
without a parquet footer until they are whole, and any other query that meets one retries without it.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from ml.drift import LABELS, SCORE_BINS
from serving.dashboard.cache import BASE_BUCKET_S, DayCache, LiveDay, complete, rebucket
from serving.dashboard.layout import Layout, entries, partition_value, unescape

#: Window name -> (length, bucket seconds). Bucket sizes divide a day, so buckets line up with the date partitions.
WINDOWS: dict[str, tuple[timedelta, int]] = {
    "15m": (timedelta(minutes=15), 30),
    "1h": (timedelta(hours=1), 60),
    "6h": (timedelta(hours=6), 300),
    "24h": (timedelta(hours=24), 900),
    "7d": (timedelta(days=7), 3600),
    "30d": (timedelta(days=30), 21600),
}
#: Days this close to today are still written to (late files after midnight): aggregated incrementally.
LIVE_DAYS = 1
#: Newest files the latest-posts query reads first (more when they hold fewer posts than asked for).
LATEST_FILES = 32
SERIES_COLUMNS = ["bucket", "keyword", "label", "n", "sum_p", "n_p"]
POST_COLUMNS = ["ingest_ts", "keyword", "label", "p_positive", "scores", "text", "model", "source", "lang"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def window_spec(window: str) -> tuple[timedelta, int]:
    """The length and bucket size (seconds) of a window name such as ``1h``."""
    try:
        return WINDOWS[window]
    except KeyError:
        raise ValueError(f"unknown window {window!r}; choose one of {', '.join(WINDOWS)}") from None


def window_bounds(window: str, now: datetime) -> tuple[datetime, datetime, int]:
    """``(start, end, bucket_s)``: the window ends at ``now``; its start is aligned down to a bucket boundary."""
    length, bucket_s = window_spec(window)
    end = now.astimezone(UTC)
    start = end - length
    start = datetime.fromtimestamp(int(start.timestamp()) // bucket_s * bucket_s, UTC)
    return start, end, bucket_s


class StreamReader:
    """Queries over one stream's output folder. Thread-safe: each query runs on its own DuckDB cursor.

    Args:
        output: ``<home>/stream/<name>/output``.
        memory_mb: DuckDB's memory limit.
        threads: DuckDB threads (default: DuckDB's, the CPU count).
        cache_entries: Older days' aggregates kept (least recently used first out).
    """

    def __init__(self, output: Path, *, memory_mb: int = 1024, threads: int | None = None,
                 cache_entries: int = 64) -> None:
        import duckdb

        self.output = Path(output)
        # No temp_directory: DuckDB would spill into ./.tmp of whatever folder the server started in.
        self._db = duckdb.connect(config={"memory_limit": f"{memory_mb}MB", "temp_directory": "",
                                          **({"threads": threads} if threads else {})})
        # Spark writes INT96 (naive, UTC) timestamps, others write UTC-adjusted ones: both become naive UTC.
        self._db.execute("SET GLOBAL TimeZone = 'UTC'")
        self._days = DayCache(cache_entries)
        self._live: dict[date, LiveDay] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def layout(self) -> Layout:
        return Layout.detect(self.output)

    # ------------------------------------------------------------------ the SQL
    def _relation(self, layout: Layout, files: list[str]) -> str:
        types = ", ".join(f"'{key}': {'DATE' if key == 'date' else 'VARCHAR'}" for key in layout.keys)
        hive = f", hive_partitioning = true, hive_types = {{{types}}}" if layout.keys else ", hive_partitioning = false"
        return f"read_parquet($files{hive}, union_by_name = true)"

    def _query(self, sql: str, files: list[str], layout: Layout, **params: Any) -> pd.DataFrame | None:
        """Run ``sql`` with ``{rel}`` reading ``files``; ``None`` when none of them is complete yet."""
        import duckdb

        cursor = self._db.cursor()
        try:
            try:
                return cursor.execute(sql.replace("{rel}", self._relation(layout, files)),
                                      {"files": files, **params}).df()
            except duckdb.Error:
                whole = [f for f in files if complete(f)]  # a part file the sink is still writing
                if len(whole) == len(files):
                    raise
                if not whole:
                    return None
                return cursor.execute(sql.replace("{rel}", self._relation(layout, whole)),
                                      {"files": whole, **params}).df()
        finally:
            cursor.close()

    def _series_sql(self, bucket_s: int, timed: bool) -> str:
        where = "WHERE ingest_ts::TIMESTAMP >= $start AND ingest_ts::TIMESTAMP < $end" if timed else ""
        return (f"SELECT time_bucket(INTERVAL '{int(bucket_s)} seconds', ingest_ts::TIMESTAMP) AS bucket, "
                "keyword, label, count(*) AS n, sum(p_positive) AS sum_p, count(p_positive) AS n_p "
                f"FROM {{rel}} {where} GROUP BY ALL")

    # ------------------------------------------------------------------ queries
    def series(self, window: str, now: datetime | None = None) -> pd.DataFrame:
        """Counts of each label per (time bucket, keyword) over the window, with the sum and count of P(positive).

        Columns ``bucket`` (UTC), ``keyword`` (None for posts without one), ``label``, ``n``, ``sum_p``, ``n_p``;
        only buckets with posts appear (:func:`timeline` fills the gaps).
        """
        now = now or utc_now()
        start, end, bucket_s = window_bounds(window, now)
        layout = self.layout()
        if "date" not in layout.keys:
            return self._series_files(layout, layout.files(), bucket_s, start, end)
        today = end.date()
        self._forget_live_days_before(today - timedelta(days=LIVE_DAYS))
        frames = []
        for day in _days(start.date(), today):
            if (today - day).days <= LIVE_DAYS:
                whole = rebucket(self._live_day(layout, day), bucket_s)
            else:
                whole = self._cached_day(layout, day, bucket_s)
            frames.append(whole[(whole["bucket"] >= pd.Timestamp(start)) & (whole["bucket"] < pd.Timestamp(end))])
        frames = [f for f in frames if not f.empty]
        return _normalise_series(pd.concat(frames, ignore_index=True)) if frames else _empty_series()

    def _series_files(self, layout: Layout, files: list[str], bucket_s: int, start: datetime | None,
                      end: datetime | None) -> pd.DataFrame:
        if not files:
            return _empty_series()
        timed = start is not None
        params = {"start": _naive(start), "end": _naive(end)} if timed else {}
        frame = self._query(self._series_sql(bucket_s, timed), files, layout, **params)
        return _empty_series() if frame is None else _normalise_series(frame)

    def _cached_day(self, layout: Layout, day: date, bucket_s: int) -> pd.DataFrame:
        key = (day, bucket_s, layout.keys, layout.signature(day))
        frame = self._days.get(key)
        if frame is None:
            frame = self._series_files(layout, layout.files({day}), bucket_s, None, None)
            self._days.put(key, frame)
        return frame

    def _live_day(self, layout: Layout, day: date) -> pd.DataFrame:
        with self._lock:
            live = self._live.setdefault(day, LiveDay())
        return live.update(layout.files({day}), lambda new: self._series_files(layout, new, BASE_BUCKET_S, None,
                                                                                 None))

    def _forget_live_days_before(self, first: date) -> None:
        with self._lock:
            for day in [d for d in self._live if d < first]:
                del self._live[day]

    def cache_info(self) -> dict[str, int]:
        """Entries and rows held: older days' aggregates, and the live days' (with the files they have read)."""
        info = self._days.info()
        with self._lock:
            live = list(self._live.values())
        info.update(live_days=len(live), live_rows=sum(len(d.aggregate) for d in live),
                    live_files=sum(len(d.seen) for d in live))
        return info

    def latest(self, limit: int = 50, keyword: str | None = None) -> pd.DataFrame:
        """The newest ``limit`` posts (by ``ingest_ts``), newest first, from the newest partitions that hold any."""
        layout = self.layout()
        days: list[set[date] | None] = [{d} for d in reversed(layout.dates())] if "date" in layout.keys else [None]
        frames: list[pd.DataFrame] = []
        found = 0
        where = "WHERE keyword IS NOT DISTINCT FROM $keyword" if keyword is not None else ""
        params = {"keyword": keyword} if keyword is not None else {}
        sql = (f"SELECT ingest_ts::TIMESTAMP AS ingest_ts, keyword, label, p_positive, scores, text, model, source, "
               f"lang FROM {{rel}} {where} ORDER BY ingest_ts DESC LIMIT {int(limit)}")
        for day in days:
            files = _newest_first(layout.files(day))
            taken = 0
            while taken < len(files) and found < limit:  # the newest files first, four times more each round
                chunk = files[taken:taken + max(LATEST_FILES, 3 * taken)]
                taken += len(chunk)
                frame = self._query(sql, chunk, layout, **params)
                if frame is not None:
                    frames.append(frame)
                    found += len(frame)
            if found >= limit:
                break
        if not frames:
            return pd.DataFrame(columns=POST_COLUMNS)
        posts = pd.concat(frames, ignore_index=True).sort_values("ingest_ts", ascending=False).head(limit)
        posts["ingest_ts"] = pd.to_datetime(posts["ingest_ts"]).dt.tz_localize("UTC")
        return posts.reset_index(drop=True)

    def profile(self, window: str, now: datetime | None = None) -> dict[str, Any]:
        """The window's answers as an :mod:`ml.drift` profile: label counts and the P(positive) histogram."""
        now = now or utc_now()
        start, end, _ = window_bounds(window, now)
        layout = self.layout()
        files = layout.files(set(_days(start.date(), end.date())))
        labels = dict.fromkeys(LABELS, 0)
        hist = [0] * SCORE_BINS
        if files:
            frame = self._query(
                f"SELECT label, CASE WHEN p_positive IS NULL OR isnan(p_positive) THEN NULL "
                f"ELSE least({SCORE_BINS - 1}, greatest(0, floor(p_positive * {SCORE_BINS})))::INTEGER END AS bin, "
                "count(*) AS n FROM {rel} WHERE ingest_ts::TIMESTAMP >= $start AND ingest_ts::TIMESTAMP < $end "
                "GROUP BY ALL", files, layout, start=_naive(start), end=_naive(end))
            for row in (frame if frame is not None else pd.DataFrame(columns=["label", "bin", "n"])).itertuples(
                    index=False):
                if row.label is not None:
                    labels[row.label] = labels.get(row.label, 0) + int(row.n)
                if not pd.isna(row.bin):
                    hist[int(row.bin)] += int(row.n)
        return {"labels": labels, "score_hist": hist, "n": int(sum(labels.values()))}

    def keywords(self) -> list[str]:
        """Keywords that have a partition folder (or that appear in the newest day when keyword is not one)."""
        layout = self.layout()
        if "keyword" in layout.keys:
            names: set[str] = set()
            for folder in layout.walk(layout.root, 0, None, stop_at="keyword"):
                names.update(e.name.split("=", 1)[1] for e in entries(folder) if partition_value(e, "keyword"))
            return sorted(unescape(n) for n in names if n != "__HIVE_DEFAULT_PARTITION__")
        dates = layout.dates()
        files = layout.files({dates[-1]} if dates else None)
        if not files:
            return []
        frame = self._query("SELECT DISTINCT keyword FROM {rel} WHERE keyword IS NOT NULL", files, layout)
        return [] if frame is None else sorted(frame["keyword"].tolist())


def _newest_first(files: list[str]) -> list[str]:
    """Files by modification time, newest first (a stream writes its newest posts into its newest files)."""
    def mtime(path: str) -> int:
        try:
            return os.stat(path).st_mtime_ns
        except OSError:
            return 0

    return sorted(files, key=mtime, reverse=True)


def _naive(moment: datetime) -> datetime:
    """A moment as naive UTC (how the queries compare times)."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _empty_series() -> pd.DataFrame:
    return pd.DataFrame({"bucket": pd.Series(dtype="datetime64[us, UTC]"), "keyword": pd.Series(dtype=object),
                         "label": pd.Series(dtype=object), "n": pd.Series(dtype="int64"),
                         "sum_p": pd.Series(dtype="float64"), "n_p": pd.Series(dtype="int64")})


def _normalise_series(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[SERIES_COLUMNS].copy()
    bucket = pd.to_datetime(frame["bucket"])
    bucket = bucket.dt.tz_convert("UTC") if bucket.dt.tz is not None else bucket.dt.tz_localize("UTC")
    frame["bucket"] = bucket.astype("datetime64[us, UTC]")
    frame["keyword"] = frame["keyword"].astype(object).where(frame["keyword"].notna(), None)
    frame["n"] = frame["n"].astype("int64")
    frame["n_p"] = frame["n_p"].astype("int64")
    frame["sum_p"] = frame["sum_p"].astype("float64")
    return frame
