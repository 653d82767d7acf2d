"""Read Spark's metadata logs without Spark: what the job committed and what it read.

Spark keeps three kinds of logs this platform cares about, each a folder of files named by batch id (``7``, or
``9.compact`` holding every live entry up to batch 9), each file ``v1`` then one JSON object per line:

* ``<output>/_spark_metadata/``: the parquet files the file sink committed (``{"path", "size", "action"}``).
  Only these are the output: a batch that failed or was killed may leave uncommitted part files behind, which
  ``spark.read.parquet(output)`` ignores (it reads this log) and which any other reader (DuckDB, pyarrow, the
  dashboard) must ignore too: read :func:`committed_files`.
* ``<checkpoint>/sources/0/``: the landing files the file source handed to each batch (``{"path", "batchId"}``).
* ``<checkpoint>/commits/``: one file per committed micro-batch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlparse

_NAME = re.compile(r"^(\d+)(\.compact)?$")


def local_path(uri: str) -> str:
    """``file:///a/b%20c`` -> ``/a/b c``; other schemes (``hdfs://``) are returned unchanged."""
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme in ("", "file") else uri


def log_files(folder: Path) -> list[tuple[int, bool, Path]]:
    """``(batch, is_compact, path)`` of a metadata log folder, by batch; hidden and temp files are skipped."""
    found = []
    if Path(folder).is_dir():
        for path in Path(folder).iterdir():
            match = _NAME.match(path.name)
            if match:
                found.append((int(match.group(1)), bool(match.group(2)), path))
    return sorted(found)


def read_entries(path: Path) -> list[dict]:
    """The JSON entries of one log file (its first line is the format version, ``v1``)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[1:] if line.strip()]


def _entries_upto(folder: Path, upto: int | None) -> list[dict]:
    """Every entry of batches ``<= upto`` (all when ``None``): the newest compact file, then later batches."""
    files = [item for item in log_files(folder) if upto is None or item[0] <= upto]
    compacts = [i for i, (_, is_compact, _) in enumerate(files) if is_compact]
    start = compacts[-1] if compacts else 0
    entries: list[dict] = []
    for _, _, path in files[start:]:
        entries.extend(read_entries(path))
    return entries


def committed_files(output: Path, upto: int | None = None) -> list[str]:
    """The files the file sink at ``output`` committed in batches ``<= upto`` (all when ``None``), in order."""
    live: dict[str, None] = {}
    for entry in _entries_upto(Path(output) / "_spark_metadata", upto):
        path = local_path(entry["path"])
        if entry.get("action", "add") == "add":
            live[path] = None
        else:
            live.pop(path, None)
    return list(live)


def batch_files(output: Path, batch: int) -> list[str]:
    """The files the file sink at ``output`` committed in batch ``batch`` alone."""
    before = set(committed_files(output, batch - 1)) if batch > 0 else set()
    return [path for path in committed_files(output, batch) if path not in before]


def last_batch(folder: Path) -> int | None:
    """The newest batch id in a log folder (``<checkpoint>/commits``, ``<output>/_spark_metadata``), or None."""
    files = log_files(folder)
    return files[-1][0] if files else None


def last_commit(checkpoint: Path) -> int | None:
    """The newest micro-batch a query with this checkpoint committed, or None (a new checkpoint)."""
    return last_batch(Path(checkpoint) / "commits")


def source_files(checkpoint: Path, batches: Iterable[int] | None = None, source: int = 0) -> list[str]:
    """Landing files the file source ``source`` of a checkpoint read in ``batches`` (all when ``None``)."""
    wanted = None if batches is None else set(batches)
    upto = None if wanted is None else max(wanted, default=-1)
    if upto is not None and upto < 0:
        return []
    return [local_path(entry["path"]) for entry in _entries_upto(Path(checkpoint) / "sources" / str(source), upto)
            if wanted is None or entry.get("batchId") in wanted]


def committed_table(output: Path, columns: list[str] | None = None):
    """The committed output as a pyarrow Table (with the ``date``/``keyword`` partition columns), without Spark."""
    import pyarrow.dataset as ds

    files = committed_files(output)
    if not files:
        return None
    dataset = ds.dataset(files, format="parquet", partitioning="hive", partition_base_dir=str(output))
    return dataset.to_table(columns=columns)
