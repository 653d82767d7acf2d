"""DataFrame transforms shared by the Spark jobs.

The Spark side never re-implements the cleaner: :func:`with_clean_text` runs :func:`ml.text.clean` itself in a
vectorised pandas UDF (one Arrow batch at a time), so training, the service and the stream read tweets the same
way. Train/serve skew is the classic silent failure of this kind of platform; a parity test holds this line.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def clean_text_udf():
    """A pandas UDF ``string -> string`` applying :func:`ml.text.clean` (nulls give the empty string).

    (No ``from __future__ import annotations`` in this module: PySpark reads the UDF's type hints at runtime.)
    """
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("string")
    def clean_text(texts: pd.Series) -> pd.Series:
        from ml.text import clean

        return texts.map(clean, na_action="ignore").fillna("")

    return clean_text


def clean_column(column: "str | Column") -> "Column":
    """The cleaned form of a text column."""
    from pyspark.sql.functions import col

    return clean_text_udf()(col(column) if isinstance(column, str) else column)


def with_clean_text(df: "DataFrame", text_col: str = "text", out_col: str = "clean_text") -> "DataFrame":
    """Add ``out_col``, the cleaned ``text_col``, and an ``n_tokens`` count of its words."""
    from pyspark.sql.functions import size, split, when

    cleaned = df.withColumn(out_col, clean_column(text_col))
    return cleaned.withColumn(
        "n_tokens", when(cleaned[out_col] == "", 0).otherwise(size(split(cleaned[out_col], " ")))
    )
