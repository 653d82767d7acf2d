"""What the queries keep between refreshes, so a refresh reads only what changed and memory stays bounded.

* :class:`LiveDay` -- the running aggregate of a day that is still being written (today, yesterday), at
  :data:`BASE_BUCKET_S` buckets; each refresh reads only the files it has not read yet (Spark's part files never
  change once complete; a file still being written has no parquet footer yet and waits for the next refresh).
* :class:`DayCache` -- whole-day aggregates of older days, keyed by a signature of the day's folders, in an LRU.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import pandas as pd

#: The finest bucket of any window; coarser buckets are sums of these (they all divide a day).
BASE_BUCKET_S = 30
KEYS = ["bucket", "keyword", "label"]
MAGIC = b"PAR1"


def complete(path: str) -> bool:
    """Whether a parquet file is whole: it starts and ends with the magic bytes (the footer is written last)."""
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != MAGIC:
                return False
            fh.seek(-4, os.SEEK_END)
            return fh.read(4) == MAGIC
    except OSError:
        return False


def merge(*frames: pd.DataFrame) -> pd.DataFrame:
    """Sum aggregates of the same shape (``bucket``, ``keyword``, ``label``, ``n``, ``sum_p``, ``n_p``)."""
    frames = tuple(f for f in frames if not f.empty)
    if not frames:
        return pd.DataFrame(columns=[*KEYS, "n", "sum_p", "n_p"])
    return _sum(frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True))


def _sum(both: pd.DataFrame) -> pd.DataFrame:
    summed = both.groupby(KEYS, dropna=False, sort=False)[["n", "sum_p", "n_p"]].sum().reset_index()
    summed["keyword"] = summed["keyword"].astype(object).where(summed["keyword"].notna(), None)
    return summed.astype({"n": "int64", "n_p": "int64", "sum_p": "float64"})


def rebucket(frame: pd.DataFrame, bucket_s: int) -> pd.DataFrame:
    """An aggregate at :data:`BASE_BUCKET_S` summed into ``bucket_s`` buckets (aligned to midnight UTC)."""
    if bucket_s == BASE_BUCKET_S or frame.empty:
        return frame
    return _sum(frame.assign(bucket=frame["bucket"].dt.floor(f"{bucket_s}s")))


class LiveDay:
    """One day's aggregate at :data:`BASE_BUCKET_S`, fed incrementally; a removed file starts it afresh."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.aggregate = merge()

    def update(self, files: list[str], read: Callable[[list[str]], pd.DataFrame]) -> pd.DataFrame:
        """Add the complete files of ``files`` not read before (``read`` aggregates them); return the aggregate."""
        with self.lock:
            if len(self.seen) > len(files) or not self.seen.issubset(files):
                self.seen, self.aggregate = set(), merge()  # files went away: compaction or a rewrite
            new = [f for f in files if f not in self.seen and complete(f)]
            if new:
                self.aggregate = merge(self.aggregate, read(new))
                self.seen.update(new)
            return self.aggregate


class DayCache:
    """A small LRU of whole-day aggregates; ``key[:-1]`` names the day, ``key[-1]`` is its folders' signature."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._items: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Hashable, ...]) -> pd.DataFrame | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: tuple[Hashable, ...], frame: pd.DataFrame) -> None:
        with self._lock:
            for old in [k for k in self._items if k[:-1] == key[:-1]]:  # an older version of the same day
                del self._items[old]
            self._items[key] = frame
            while len(self._items) > self.entries:
                self._items.popitem(last=False)

    def info(self) -> dict[str, int]:
        with self._lock:
            return {"entries": len(self._items), "rows": int(sum(len(f) for f in self._items.values()))}
