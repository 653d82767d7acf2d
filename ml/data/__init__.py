"""Parse, validate and split the data every model family trains and is judged on.

Inputs (as paths or URLs):

* the Sentiment140 archive (official ``trainingandtestdata.zip`` or Kaggle's ``sentiment140.zip``): six quoted
  columns ``polarity,id,date,query,user,text``, no header, latin-1, HTML entities escaped;
* a generic labelled CSV/TSV (optionally gzipped) with a text and a label column, 2 or 3 classes;
* the TweetEval layout: a ``<split>_text.txt`` with its ``<split>_labels.txt`` and ``mapping.txt``.

Rows are deduplicated on their text and split so that no cleaned text is in two splits (:mod:`.split`).
Output, one folder per dataset, ``<home>/data/processed/<dataset>/`` (written atomically as a whole)::

    train.parquet, validation.parquet, test.parquet   columns: id, text, label (+ date, user for Sentiment140)
    manifest.json                                     counts, seed, drops, content hash = data version

Labels are stored as names: ``negative``, ``neutral``, ``positive``.
"""

from ml.data.prepare import (
    DEFAULT_DATASET,
    MANIFEST,
    NEUTRAL_DATASET,
    SPLITS,
    content_hash,
    default_source,
    load_split,
    prepare,
    read_manifest,
    validate,
)
from ml.data.readers import POLARITY, parse_sentiment140, read_labelled, read_sentiment140_zip, read_source
from ml.data.split import deduplicate, drop_overlap, leak_free_split
from ml.data.tweeteval import read_tweeteval

__all__ = [
    "DEFAULT_DATASET", "MANIFEST", "NEUTRAL_DATASET", "POLARITY", "SPLITS", "content_hash", "deduplicate",
    "default_source", "drop_overlap", "leak_free_split", "load_split", "parse_sentiment140", "prepare",
    "read_labelled", "read_manifest", "read_sentiment140_zip", "read_source", "read_tweeteval", "validate",
]
