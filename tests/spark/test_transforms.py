"""Spark transforms on a real local Spark session: the stream cleans tweets exactly as training does."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from ml.text import clean

pytestmark = pytest.mark.slow

TWEETS = [
    "@jo I LOVE #Spark &amp; cafés! http://x.co/1 :)",
    "RT @user: Great news www.example.org",
    "",
    None,
    "привет мир 😀",
    "it's 2day!!",
    "hello😀world\tand\nnewlines",
    "x" * 5000 + " end",
]


@pytest.fixture(scope="module")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("transforms-test")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
               .getOrCreate())
    yield session
    session.stop()
    # py4j logs "Closing down clientserver connection" from __del__ at interpreter exit, after pytest closed
    # the captured streams: keep its INFO records out so the run ends on pytest's own summary line.
    logging.getLogger("py4j").setLevel(logging.WARNING)


def test_clean_parity_with_training_cleaner(spark):
    from spark_apps.transforms import with_clean_text

    df = spark.createDataFrame([(i, t) for i, t in enumerate(TWEETS)], "id long, text string")
    rows = {r["id"]: r for r in with_clean_text(df).collect()}
    for i, text in enumerate(TWEETS):
        assert rows[i]["clean_text"] == clean(text), text
        assert rows[i]["n_tokens"] == len(clean(text).split())
    assert rows[0]["clean_text"] == "i love spark cafes"


def test_parity_on_many_rows_across_partitions(spark):
    from fixtures import DECOR, NEGATIVE, POSITIVE

    from spark_apps.transforms import with_clean_text

    texts = [f"{p}{d}{d2}" for p in POSITIVE + NEGATIVE for d in DECOR for d2 in DECOR]
    df = spark.createDataFrame([(t,) for t in texts], "text string").repartition(3)
    got = {r["text"]: r["clean_text"] for r in with_clean_text(df, out_col="clean_text").collect()}
    assert got == {t: clean(t) for t in texts}
