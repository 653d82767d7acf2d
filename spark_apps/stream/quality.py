"""Parse and validate landing lines; the lines that break the contract become dead letters.

Pure DataFrame -> DataFrame functions, tested on small batch DataFrames. Parsing is native Spark (a VARIANT per
line), so a wrong JSON type is seen as such: ``{"id": 42}`` is refused ("id: expected a string, got BIGINT")
instead of being silently read as the string ``"42"`` as ``from_json`` would.

Rules (the first that fails is the reason):

* the line is blank -> ``blank line``; it is not JSON -> ``bad JSON``; not an object -> ``not a JSON object``;
* ``id``, ``text``, ``source``, ``ingest_ts`` missing or null -> ``no id`` (likewise); an empty ``id`` -> ``no id``;
* a field of another JSON type -> ``<field>: expected a string, got <TYPE>`` (``keyword``, ``lang``,
  ``author_id`` and ``created_at`` may also be null);
* ``created_at`` / ``ingest_ts`` not an ISO-8601 timestamp -> ``<field>: not an ISO-8601 timestamp``.

An empty ``text`` is valid (the service answers Neutral for it); unknown extra fields are ignored.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from spark_apps.stream.schema import LANDING_FIELDS, POST_DDL, TIMESTAMP_FIELDS, columns

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

#: Columns of :func:`parse_lines`'s result besides the post's fields.
RAW, REASON, FILE = "raw", "reason", "file"


def valid_shapes() -> list[str]:
    """The ``schema_of_variant`` strings of every valid post object without extra fields: each required field a
    STRING, each optional one STRING, VOID (null) or absent (81 strings; the keys are sorted, as Spark prints them)."""
    required = [name for name, (_, needed) in LANDING_FIELDS.items() if needed]
    optional = [name for name, (_, needed) in LANDING_FIELDS.items() if not needed]
    shapes = []
    for choice in itertools.product((None, "STRING", "VOID"), repeat=len(optional)):
        kinds = {name: "STRING" for name in required} | {n: k for n, k in zip(optional, choice, strict=True) if k}
        shapes.append("OBJECT<" + ", ".join(f"{name}: {kinds[name]}" for name in sorted(kinds)) + ">")
    return shapes


def _reason(parsed: Column) -> Column:
    """The first rule a parsed JSON object breaks, as a string; null when it is a valid post (the exact rules)."""
    from pyspark.sql import functions as F

    checks: list[tuple[Column, Column]] = []
    for name, (_, required) in LANDING_FIELDS.items():
        kind = F.schema_of_variant(F.variant_get(parsed, f"$.{name}", "variant"))  # null: missing; VOID: null
        if required:
            checks.append((kind.isNull() | (kind == "VOID"), F.lit(f"no {name}")))
        checks.append((kind.isNotNull() & (kind != "VOID") & (kind != "STRING"),
                       F.concat(F.lit(f"{name}: expected a string, got "), kind)))
        if name == "id":
            checks.append((F.variant_get(parsed, "$.id", "string") == "", F.lit("no id")))
    for name in TIMESTAMP_FIELDS:
        text = F.variant_get(parsed, f"$.{name}", "string")
        checks.append((text.isNotNull() & F.try_to_timestamp(text).isNull(),
                       F.lit(f"{name}: not an ISO-8601 timestamp")))
    reason = F.lit(None).cast("string")
    for condition, message in reversed(checks):
        reason = F.when(condition, message).otherwise(reason)
    return reason


def parse_lines(lines: DataFrame, value: str = "value", file: str | None = FILE) -> DataFrame:
    """Parse JSON lines: the post's fields (typed), ``raw`` (the line), ``file`` and ``reason``.

    A line whose object has exactly the contract's shape (:func:`valid_shapes`, one hash lookup), a non-empty id
    and parsable timestamps is valid at once; any other line goes through the exact rules (:func:`_reason`),
    which give the same answer for those lines, and a reason for the rest.

    Args:
        lines: One landing line per row in column ``value``.
        value: The line column.
        file: A column naming the landing file of each line, kept as ``file``; ``None``: a null ``file``.

    Returns:
        One row per line. ``reason`` is null for a valid post; otherwise the fields may be null.
    """
    from pyspark.sql import functions as F

    file_col = F.col(file) if file else F.lit(None).cast("string")
    # Each step is its own projection, so the line is parsed once and each field looked up once.
    step = lines.select(F.col(value).alias(RAW), file_col.alias(FILE), F.try_parse_json(value).alias("_v"))
    step = step.select(RAW, FILE, "_v", F.schema_of_variant("_v").alias("_shape"),
                       *[F.variant_get("_v", f"$.{name}", "string").alias(name) for name in LANDING_FIELDS])
    step = step.select("*", *[F.try_to_timestamp(name).alias(f"_ts_{name}") for name in TIMESTAMP_FIELDS])
    fast = F.col("_shape").isin(valid_shapes()) & (F.col("id") != "")
    for name in TIMESTAMP_FIELDS:
        fast &= F.col(name).isNull() | F.col(f"_ts_{name}").isNotNull()
    reason = (F.when(F.trim(RAW) == "", F.lit("blank line"))
              .when(F.col("_v").isNull(), F.lit("bad JSON"))
              .when(fast, F.lit(None).cast("string"))
              .when(~F.col("_shape").startswith("OBJECT"), F.lit("not a JSON object"))
              .otherwise(_reason(F.col("_v"))))
    fields = [F.col(f"_ts_{name}" if name in TIMESTAMP_FIELDS else name).alias(name) for name in columns(POST_DDL)]
    return step.select(*fields, RAW, FILE, reason.alias(REASON))


def valid_posts(parsed: DataFrame) -> DataFrame:
    """The valid posts of :func:`parse_lines` (its post columns only)."""
    from pyspark.sql import functions as F

    return parsed.where(F.col(REASON).isNull()).select(*columns(POST_DDL))


def dead_letters(parsed: DataFrame) -> DataFrame:
    """The refused lines of :func:`parse_lines`: ``raw, reason, file, received_ts, date`` (the batch's time)."""
    from pyspark.sql import functions as F

    now = F.current_timestamp()
    return (parsed.where(F.col(REASON).isNotNull())
            .select(RAW, REASON, FILE, now.alias("received_ts"), F.to_date(now).alias("date")))
