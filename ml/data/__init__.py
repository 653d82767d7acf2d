"""Parse, validate and split the data every model family trains and is judged on.

Two inputs are accepted:

* the Sentiment140 archive (official ``trainingandtestdata.zip`` or Kaggle's ``sentiment140.zip``): six quoted
  columns ``polarity,id,date,query,user,text``, no header, latin-1, HTML entities escaped;
* a generic labelled CSV/TSV (optionally gzipped) with a text and a label column, 2 or 3 classes.

Output, in ``<home>/data/processed/`` (written atomically as a whole)::

    train.parquet, validation.parquet, test.parquet   columns: id, text, label (+ date, user for Sentiment140)
    manifest.json                                     counts, seed, drops, content hash = data version

Labels are stored as names: ``negative``, ``neutral``, ``positive``.
"""

from ml.data.prepare import (
    MANIFEST,
    SPLITS,
    content_hash,
    deduplicate,
    default_source,
    load_split,
    prepare,
    read_manifest,
    validate,
)
from ml.data.readers import POLARITY, parse_sentiment140, read_labelled, read_sentiment140_zip

__all__ = [
    "MANIFEST", "POLARITY", "SPLITS", "content_hash", "deduplicate", "default_source", "load_split",
    "parse_sentiment140", "prepare", "read_labelled", "read_manifest", "read_sentiment140_zip", "validate",
]
