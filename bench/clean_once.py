"""What cleaning once saves the service: model-side tweets/s of the old and new scoring paths, one JSON line.

The service cleans every text (to answer texts with nothing left without the model). It used to hand the cleaned
text to ``predict_proba``, which cleaned it again; it now calls ``predict_proba_cleaned``. Both paths are timed
here on the same batches of 256 real tweets (the 20k sample), interleaved, 7 rounds; medians and their ratio.

    python bench/clean_once.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HEAD_TAIL = Path("sentiment140") / "head_tail_100k.csv.gz"
SAMPLE_ZIP = Path("sentiment140") / "trainingandtestdata-sample.zip"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="Folder laid out like ../shared/data.")
    p.add_argument("--family", default="logreg", help="A classical family (fast to train here).")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)

    from ml.data import read_labelled, read_sentiment140_zip
    from ml.predictor import family_class
    from ml.settings import Settings
    from ml.text import clean

    train = read_labelled(args.data / HEAD_TAIL).sample(30_000, random_state=0)
    model = family_class(args.family).from_options(Settings(), {})
    model.fit(train["text"].tolist(), train["label"].tolist())
    texts = read_sentiment140_zip(args.data / SAMPLE_ZIP)[0]["text"].tolist()
    batches = [texts[i:i + 256] for i in range(0, 256 * 20, 256)]

    def before(batch):  # clean, then predict_proba (which cleans again)
        return model.predict_proba([clean(t) for t in batch])

    def after(batch):  # clean once
        return model.predict_proba_cleaned([clean(t) for t in batch])

    rates: dict[str, list[float]] = {"clean_twice": [], "clean_once": []}
    before(batches[0])  # warm-up
    after(batches[0])
    for _ in range(args.rounds):
        for name, path in (("clean_twice", before), ("clean_once", after)):
            started = time.perf_counter()
            for batch in batches:
                path(batch)
            rates[name].append(256 * len(batches) / (time.perf_counter() - started))
    medians = {name: round(statistics.median(values)) for name, values in rates.items()}
    result = {"bench": "clean_once", "family": args.family, "batch": 256, "rounds": args.rounds,
              **{f"{k}_tweets_per_s": v for k, v in medians.items()},
              "ratio": round(medians["clean_once"] / medians["clean_twice"], 2)}
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
