"""The partition folders of a stream's output: which keys (``date``, ``keyword``) in which order, which dates
exist, and the data files under chosen dates, found by listing only the folders needed.

Spark's parquet sink writes ``key=value`` folders (values escaped like URLs, a null as
``__HIVE_DEFAULT_PARTITION__``), ``part-*.parquet`` files with hidden ``.crc`` siblings, and ``_spark_metadata/``;
names starting with ``.`` or ``_`` are not data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """The partition folders of an output: ``keys`` in nesting order (e.g. ``("date", "keyword")``)."""

    root: Path
    keys: tuple[str, ...]

    @classmethod
    def detect(cls, root: Path) -> Layout:
        """The keys on the way to the first data file (an empty partition folder does not count)."""

        def search(folder: Path | str, keys: tuple[str, ...]) -> tuple[str, ...] | None:
            listed = entries(folder)
            if any(e.is_file() and e.name.startswith("part-") for e in listed):
                return keys
            for entry in listed:
                if entry.is_dir() and "=" in entry.name and len(keys) < 4:
                    found = search(entry.path, (*keys, entry.name.split("=", 1)[0]))
                    if found is not None:
                        return found
            return None

        return cls(Path(root), search(root, ()) or ())

    def dates(self) -> list[date]:
        """The dates that have a partition folder, oldest first (empty when ``date`` is not a partition key)."""
        if "date" not in self.keys:
            return []
        found: set[date] = set()
        for folder in self.walk(self.root, 0, None, stop_at="date"):
            for entry in entries(folder):
                value = partition_value(entry, "date")
                if value is not None:
                    try:
                        found.add(date.fromisoformat(value))
                    except ValueError:
                        continue
        return sorted(found)

    def files(self, dates: set[date] | None = None) -> list[str]:
        """The data files under the partitions of ``dates`` (all of them when ``None`` or not partitioned by date)."""
        wanted = None if dates is None or "date" not in self.keys else {d.isoformat() for d in dates}
        files = []
        for folder in self.walk(self.root, 0, wanted):
            files.extend(e.path for e in entries(folder)
                         if e.is_file() and e.name.startswith("part-") and e.name.endswith(".parquet"))
        return sorted(files)

    def signature(self, day: date) -> tuple:
        """Changes when a file is added to (or removed from) ``day``'s partitions: names and mtimes of the folders."""
        sig = []
        for folder in self.walk(self.root, 0, {day.isoformat()}):
            try:
                stat = os.stat(folder)
            except OSError:
                continue
            sig.append((folder, stat.st_mtime_ns))
        return tuple(sig)

    def walk(self, folder: Path | str, depth: int, wanted: set[str] | None, stop_at: str | None = None):
        """Leaf folders (or the folders holding ``stop_at`` partitions), descending only into wanted dates."""
        if depth == len(self.keys) or (stop_at is not None and self.keys[depth] == stop_at):
            yield folder
            return
        key = self.keys[depth]
        for entry in entries(folder):
            value = partition_value(entry, key)
            if value is None or (key == "date" and wanted is not None and value not in wanted):
                continue
            yield from self.walk(entry.path, depth + 1, wanted, stop_at)


def entries(folder: Path | str) -> list[os.DirEntry]:
    """The visible entries of ``folder`` (none when it is missing)."""
    try:
        with os.scandir(folder) as it:
            return [e for e in it if not e.name.startswith((".", "_"))]
    except OSError:
        return []


def partition_value(entry: os.DirEntry, key: str) -> str | None:
    """The value of a ``key=value`` folder, ``None`` for anything else."""
    if not entry.is_dir() or not entry.name.startswith(key + "="):
        return None
    return entry.name.split("=", 1)[1]


def unescape(value: str) -> str:
    """A partition value as written by Spark (URL-style escapes) back to the keyword."""
    from urllib.parse import unquote

    return unquote(value)
