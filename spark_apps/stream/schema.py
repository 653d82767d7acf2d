"""The stream's schemas: landing records (the ingest contract), scored output rows and dead letters.

Kept as DDL strings so this module imports without Spark; :func:`struct` turns one into a ``StructType``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

#: The landing contract: one JSON object per line. Required fields must be present and non-null.
LANDING_FIELDS: dict[str, tuple[str, bool]] = {
    # name: (JSON type, required)
    "id": ("string", True),
    "text": ("string", True),
    "created_at": ("ISO-8601 timestamp string", False),
    "keyword": ("string", False),
    "lang": ("string", False),
    "author_id": ("string", False),
    "source": ("string", True),
    "ingest_ts": ("ISO-8601 timestamp string", True),
}
TIMESTAMP_FIELDS = ("created_at", "ingest_ts")

#: A parsed, valid landing record.
POST_DDL = ("id string, text string, created_at timestamp, keyword string, lang string, author_id string, "
            "source string, ingest_ts timestamp")

#: What the scorer adds to each post.
SCORE_DDL = "label string, p_positive double, scores map<string,double>, model string, scored_ts timestamp"

#: The scorer's input: a post and its cleaned text (its output adds SCORE_DDL).
SCORER_INPUT_DDL = ("id string, text string, clean_text string, created_at timestamp, keyword string, lang string, "
                    "author_id string, source string, ingest_ts timestamp")

#: The output rows, in order (``date`` and ``keyword`` are also the default partition columns).
OUTPUT_DDL = ("id string, keyword string, text string, clean_text string, label string, p_positive double, "
              "scores map<string,double>, model string, created_at timestamp, ingest_ts timestamp, "
              "scored_ts timestamp, source string, lang string, author_id string, date date")

#: Dead letters: the raw line, why it was refused, the landing file it came from, when the job saw it.
DEADLETTER_DDL = "raw string, reason string, file string, received_ts timestamp, date date"

LABELS = ("Positive", "Negative", "Neutral")


def struct(ddl: str) -> StructType:
    """The ``StructType`` of a DDL string."""
    from pyspark.sql.types import StructType

    return StructType.fromDDL(ddl)


def columns(ddl: str) -> list[str]:
    """Column names of a DDL string (commas inside ``<...>`` do not separate columns)."""
    return [part.strip().split(" ", 1)[0] for part in re.split(r",(?![^<]*>)", ddl)]


def read_output(spark: SparkSession, output: str) -> DataFrame:
    """The committed output of a stream as a DataFrame, with the declared column types.

    The explicit schema keeps partition values as declared (a keyword such as ``2024`` stays a string instead
    of being inferred as a number); Spark reads ``_spark_metadata``, so uncommitted files are ignored.
    """
    return spark.read.schema(struct(OUTPUT_DDL)).parquet(str(output))
