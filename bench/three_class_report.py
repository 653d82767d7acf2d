"""One JSON line per model of a leaderboard: the held-out test split's three-class macro recall, accuracy,
macro-F1 and recall of each class, and what the model was (dataset, weights, transfer source, teacher).

    python bench/three_class_report.py $SENTIMENT_HOME/reports/<run>/leaderboard.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def pct(value):
    return None if value is None else round(100 * float(value), 1)


def main(path: str) -> None:
    rows = json.loads(Path(path).read_text())
    for row in rows:
        by_class = row.get("test3_recall_by_class") or {}
        print(json.dumps({
            "model": row.get("model"), "dataset": row.get("dataset"),
            "test_macro_recall": pct(row.get("test3_macro_recall")), "test_accuracy": pct(row.get("test3_accuracy")),
            "test_macro_f1": pct(row.get("test3_macro_f1")),
            "test_recall": {k: pct(v) for k, v in by_class.items()},
            "val_macro_recall": pct(row.get("macro_recall")), "n_test": row.get("n_test"),
            "class_weight": row.get("class_weight"),
            "init_from": row.get("init_from"),
            "teacher": row.get("teacher"),
            "train_seconds": row.get("train_seconds"),
        }))


if __name__ == "__main__":
    main(sys.argv[1])
