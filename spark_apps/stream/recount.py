"""Count committed micro-batches again from what they left on disk (when the status file missed them).

The status file is written by the listener just after Spark commits a micro-batch; a driver killed in between
leaves the batch committed but uncounted. At start, the job recounts such batches: rows in and dead letters by
parsing again the landing files the batch read (``checkpoint/main/sources/0``), rows written from the parquet
footers of the files the batch committed (``output/_spark_metadata``); duplicates are the rest.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from spark_apps.stream.paths import StreamPaths
from spark_apps.stream.quality import REASON, parse_lines
from spark_apps.stream.sparklog import batch_files, source_files

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def recount(spark: SparkSession, paths: StreamPaths, batches: range) -> dict[str, int] | None:
    """Counts of the main query's committed ``batches``; None when a landing file they read is gone."""
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    files = source_files(paths.main_checkpoint, batches)
    missing = [f for f in files if not Path(f).exists()]
    if missing:
        log.warning("cannot recount batches %s: %d landing files are gone (e.g. %s)", list(batches), len(missing),
                    missing[0])
        return None
    rows_in = dead = 0
    if files:
        lines = spark.read.text(files).select("value")
        row = parse_lines(lines, file=None).agg(F.count(F.lit(1)).alias("n"), F.count(REASON).alias("dead")).first()
        rows_in, dead = int(row["n"]), int(row["dead"])
    written = sum(pq.ParquetFile(f).metadata.num_rows for batch in batches for f in batch_files(paths.output, batch))
    counts = {"rows_in": rows_in, "dead_letters": dead, "written": written,
              "duplicates": rows_in - dead - written, "late_rows_dropped": 0}
    log.info("recounted committed batches %d..%d: %s", batches[0], batches[-1], counts)
    return counts
