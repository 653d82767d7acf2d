"""One JSON line per model of a leaderboard: the held-out test split's three-class macro recall, accuracy,
macro-F1 and recall of each class, and what the model was (dataset, weights, tuned priors, transfer source,
teacher). A model with tuned class priors is also scored without them (``own_*``: its own probabilities), so each
line shows what the priors change on data they were not tuned on.

    SENTIMENT_HOME=... python bench/three_class_report.py $SENTIMENT_HOME/reports/<run>/leaderboard.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def pct(value):
    return None if value is None else round(100 * float(value), 1)


def own_scores(row: dict) -> dict:
    """Test macro recall and recall by class of the row's model without its tuned priors."""
    import numpy as np

    from ml.data import load_split
    from ml.predictor import load_predictor
    from ml.scoring import recalls
    from ml.settings import get_settings

    model = load_predictor(row["path"])
    model.class_priors = None
    test = load_split(get_settings(dataset=row["dataset"]), "test")
    predicted = np.array(model.labels)[model.predict_proba(test["text"].tolist()).argmax(axis=1)]
    macro, by_class = recalls(test["label"].to_numpy(), predicted)
    return {"own_test_macro_recall": pct(macro), "own_test_recall": {k: pct(v) for k, v in by_class.items()}}


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
            "class_priors": row.get("class_priors"),
            "init_from": row.get("init_from"),
            "teacher": row.get("teacher"),
            "train_seconds": row.get("train_seconds"),
            **(own_scores(row) if row.get("class_priors") else {}),
        }))


if __name__ == "__main__":
    main(sys.argv[1])
