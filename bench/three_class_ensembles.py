"""Probability-averaged ensembles of a run's three-class models, with and without class priors tuned on the
validation split: one JSON line per model and per combination of 2 or 3 of them, with validation and held-out
test macro recall and the test recall of each class. Run it on the artifacts of ``bench/three_class.sh``:

    SENTIMENT_HOME=/tmp/three-class.XXXX SENTIMENT_RUN_ID=three-class \\
        python bench/three_class_ensembles.py minilm-neutral-transfer-unweighted minilm-neutral logreg-neutral
"""

from __future__ import annotations

import itertools
import json
import sys


def main(names: list[str]) -> None:
    import numpy as np

    from ml.data import load_split
    from ml.models import priors
    from ml.predictor import TERNARY_LABELS, load_predictor
    from ml.scoring import recalls
    from ml.settings import get_settings

    settings = get_settings(dataset="neutral")
    val, test = load_split(settings, "validation"), load_split(settings, "test")
    labels = np.array(TERNARY_LABELS)
    own = {}
    for name in names:
        model = load_predictor(settings.models_dir / name)
        if tuple(model.labels) != TERNARY_LABELS:
            raise SystemExit(f"{name} is not a three-class model")
        model.class_priors = None
        own[name] = (model.predict_proba(val["text"].tolist()), model.predict_proba(test["text"].tolist()))

    def pct(x: float) -> float:
        return round(100 * x, 1)

    for k in range(1, min(3, len(names)) + 1):
        for combo in itertools.combinations(names, k):
            p_val = np.mean([own[n][0] for n in combo], axis=0)
            p_test = np.mean([own[n][1] for n in combo], axis=0)
            offsets = priors.tune(p_val, val["label"].tolist(), TERNARY_LABELS)
            for mode, off in (("own", None), ("tuned priors", offsets)):
                val_macro, _ = recalls(val["label"].to_numpy(), labels[priors.apply(p_val, labels, off).argmax(1)])
                test_macro, by_class = recalls(test["label"].to_numpy(),
                                               labels[priors.apply(p_test, labels, off).argmax(1)])
                print(json.dumps({"models": list(combo), "probabilities": mode, "val_macro_recall": pct(val_macro),
                                  "test_macro_recall": pct(test_macro),
                                  "test_recall": {c: pct(v) for c, v in by_class.items()}}))


if __name__ == "__main__":
    main(sys.argv[1:])
