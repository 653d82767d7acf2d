"""The job's two streaming queries, built from the transforms; ``job.py`` starts and supervises them.

* main (``stream:<name>``): landing lines -> parse -> valid posts -> drop re-delivered ids -> clean ->
  score (``mapInPandas``) -> parquet under ``output/`` (file sink: exactly once, ``_spark_metadata``).
* dead letters (``stream:<name>:deadletter``): the same landing files -> parse -> refused lines -> JSON lines
  under ``deadletter/`` (its own checkpoint; exactly once too).

Two queries because one query has one sink, and Spark's file sink is what makes each output exactly once; the
dead-letter query only re-reads and re-parses the lines (no scoring), a small cost. The socket source cannot be
read twice (each query would open its own connection), so with ``--input socket`` only the main query runs:
refused lines are counted in the status but not kept.

Exactly once per post id: ``dropDuplicatesWithinWatermark(["id"])`` keyed on the id, with the watermark on the
micro-batch's own timestamp (``current_timestamp()`` is fixed per batch and recorded in the offset log, so a
re-run batch sees the same value). Processing time never runs backwards, so no row is ever "late" and dropped
by the watermark, whatever the sources' clocks say; a re-delivery within W of the first copy's processing is
dropped; state is evicted after W to 2W, so it stays bounded (RocksDB) for a stream that runs for weeks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from spark_apps.stream.paths import LANDING_GLOB, StreamPaths
from spark_apps.stream.quality import REASON, dead_letters, parse_lines, valid_posts
from spark_apps.stream.schema import OUTPUT_DDL, SCORE_DDL, SCORER_INPUT_DDL, columns, struct
from spark_apps.stream.scoring import LocalConfig, PartitionScorer, ServiceConfig

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

#: Spark ignores files older than this relative to the newest one; Spark's default (7 days) would silently skip
#: landing files after a long outage of the job. Effectively never.
MAX_FILE_AGE = "36500d"


@dataclass(frozen=True)
class QueryOptions:
    """What the two queries need to know (from the command line and the settings)."""

    name: str
    paths: StreamPaths
    input: str = "files"  # files | socket
    host: str = "127.0.0.1"
    port: int | None = None
    trigger_seconds: float = 5.0
    available_now: bool = False
    max_files_per_trigger: int = 200
    dedup_window_hours: float = 24.0
    partition_by: tuple[str, ...] = ("date", "keyword")

    @property
    def main_name(self) -> str:
        return f"stream:{self.name}"

    @property
    def deadletter_name(self) -> str:
        return f"stream:{self.name}:deadletter"


def read_lines(spark: SparkSession, options: QueryOptions) -> DataFrame:
    """The landing lines as ``value`` (the line) and ``file`` (its landing file; null for the socket)."""
    from pyspark.sql import functions as F

    if options.input == "socket":
        lines = spark.readStream.format("socket").option("host", options.host).option("port", options.port).load()
        return lines.select("value", F.lit(None).cast("string").alias("file"))
    lines = (spark.readStream.format("text").option("pathGlobFilter", LANDING_GLOB)
             .option("maxFilesPerTrigger", options.max_files_per_trigger).option("maxFileAge", MAX_FILE_AGE)
             .load(str(options.paths.landing)))
    return lines.select("value", F.col("_metadata.file_path").alias("file"))


def dedup(posts: DataFrame, window_hours: float) -> DataFrame:
    """Drop posts whose id the job already saw within the window (see the module docstring)."""
    from pyspark.sql import functions as F

    if not posts.isStreaming:  # a batch (a test, a reprocessing run): plain distinct ids
        return posts.dropDuplicates(["id"])
    seconds = max(1, round(window_hours * 3600))
    return (posts.withColumn("_seen_at", F.current_timestamp())
            .withWatermark("_seen_at", f"{seconds} seconds")
            .dropDuplicatesWithinWatermark(["id"])
            .drop("_seen_at"))


def scored_posts(lines: DataFrame, scorer: ServiceConfig | LocalConfig, window_hours: float) -> DataFrame:
    """Landing lines -> the output rows (``OUTPUT_DDL``), with the observed metrics the status file reads."""
    from pyspark.sql import functions as F

    from spark_apps.transforms import with_clean_text

    # The metrics the status file reads; observe() also keeps the parse from being inlined into the filter below.
    parsed = parse_lines(lines).observe(
        "landing", F.count(F.lit(1)).alias("rows_in"), F.count(REASON).alias("dead_letters"))
    posts = dedup(valid_posts(parsed), window_hours)
    cleaned = with_clean_text(posts).select(*columns(SCORER_INPUT_DDL))
    scored = cleaned.mapInPandas(PartitionScorer(scorer), struct(f"{SCORER_INPUT_DDL}, {SCORE_DDL}"))
    # Belt and braces: a row without a label fails the micro-batch instead of reaching the sink.
    labelled = scored.withColumn("label", F.when(F.col("label").isNull(), F.raise_error(
        F.lit("a scored row has no label"))).otherwise(F.col("label")))
    out = labelled.withColumn("date", F.to_date("ingest_ts")).select(*columns(OUTPUT_DDL))
    latency_ms = (F.unix_micros("scored_ts") - F.unix_micros("ingest_ts")) / 1000.0
    return out.observe("written", F.count(F.lit(1)).alias("written"),
                       F.percentile_approx(latency_ms, F.array(F.lit(0.5), F.lit(0.95)), 1000).alias("latency_ms"),
                       F.collect_set("model").alias("models"))


def _trigger(writer, options: QueryOptions):
    if options.available_now:
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=f"{options.trigger_seconds:g} seconds")


def start_main(spark: SparkSession, options: QueryOptions, scorer: ServiceConfig | LocalConfig) -> StreamingQuery:
    """Start the scoring query (parquet under ``output/``, checkpoint ``checkpoint/main``)."""
    out = scored_posts(read_lines(spark, options), scorer, options.dedup_window_hours)
    writer = (out.writeStream.queryName(options.main_name).format("parquet").outputMode("append")
              .option("path", str(options.paths.output))
              # Nearly every post's id and text are distinct: a dictionary for them is built, then thrown away.
              .options(**{f"parquet.enable.dictionary#{c}": "false" for c in ("id", "text", "clean_text")})
              .option("checkpointLocation", str(options.paths.main_checkpoint)))
    if options.partition_by:
        writer = writer.partitionBy(*options.partition_by)
    return _trigger(writer, options).start()


def start_deadletter(spark: SparkSession, options: QueryOptions) -> StreamingQuery:
    """Start the dead-letter query (JSON lines under ``deadletter/``, checkpoint ``checkpoint/deadletter``)."""
    from pyspark.sql import functions as F

    # observe() before the filter: Spark cannot push a filter below it (the metrics must see every row), so the
    # line is parsed once; without it the optimizer inlines the whole parse into the filter, three times slower.
    parsed = parse_lines(read_lines(spark, options)).observe("deadletters", F.count(REASON).alias("written"))
    refused = dead_letters(parsed)
    writer = (refused.writeStream.queryName(options.deadletter_name).format("json").outputMode("append")
              .option("path", str(options.paths.deadletter))
              .option("checkpointLocation", str(options.paths.deadletter_checkpoint)).partitionBy("date"))
    return _trigger(writer, options).start()


def committed_output_without_checkpoint(paths: StreamPaths) -> bool:
    """True when the output has committed batches but the main checkpoint is gone: starting then would make
    the file sink skip the new query's first batches as "already committed" (silent loss)."""
    from spark_apps.stream.sparklog import last_batch, last_commit

    return last_batch(Path(paths.output) / "_spark_metadata") is not None and last_commit(paths.main_checkpoint) is None
