"""Benchmark the classical family on real Sentiment140 data.

Default run: train LogisticRegression, LinearSVC and MultinomialNB (TF-IDF 1-4 grams, 50,000 features, the
platform's own cleaner and predictor classes) on ``sentiment140/head_tail_100k.csv.gz`` and score them on the
20,000-row random sample of ``trainingandtestdata-sample.zip`` and on the 359 positive/negative tweets of the
official test file. ``--scale N`` instead trains on N rows resampled (with replacement, seeded) from the real
rows, to show what a full 1.6M-row run costs. Each model runs in its own process so its peak memory is its own.

Prints one JSON line per model::

    python bench/classical.py --data ../shared/data
    python bench/classical.py --data ../shared/data --scale 1600000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODELS = ("logreg", "linearsvc", "multinomialnb")


def worker(args: argparse.Namespace) -> dict:
    import numpy as np

    from ml.data import read_labelled, read_sentiment140_zip
    from ml.predictor import family_class
    from ml.settings import get_settings

    data = Path(args.data)
    train = read_labelled(Path(args.train_file) if args.train_file else data / "sentiment140" / "head_tail_100k.csv.gz")
    if args.scale:
        train = train.sample(n=args.scale, replace=True, random_state=args.seed).reset_index(drop=True)
    sample, official = read_sentiment140_zip(data / "sentiment140" / "trainingandtestdata-sample.zip")
    official = official[official["label"] != "neutral"]
    settings = get_settings(home=Path(os.environ.get("TMPDIR", "/tmp")) / "bench-classical", seed=args.seed)
    model = family_class(args.worker).from_options(settings, {"n_jobs": args.n_jobs})
    started = time.perf_counter()
    model.fit(train["text"].tolist(), train["label"].tolist())
    fit_seconds = time.perf_counter() - started

    def accuracy(df):
        return float(np.mean((model.p_positive(df["text"].tolist()) >= 0.5) == (df["label"] == "positive")))

    started = time.perf_counter()
    acc_sample = accuracy(sample)
    predict_rate = len(sample) / (time.perf_counter() - started)
    return {
        "bench": "classical",
        "model": args.worker,
        "n_train": len(train),
        "scale_resampled": bool(args.scale),
        "accuracy_sample20k": round(100 * acc_sample, 2),
        "accuracy_official_test": round(100 * accuracy(official), 2),
        "fit_seconds": round(fit_seconds, 1),
        "predict_tweets_per_s": round(predict_rate),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "reference_accuracy_sample20k": {"logreg": 78.1, "linearsvc": 76.8, "multinomialnb": 76.0}[args.worker],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="Folder laid out like ../shared/data.")
    parser.add_argument("--train-file", help="Training file (default: <data>/sentiment140/head_tail_100k.csv.gz).")
    parser.add_argument("--scale", type=int, default=0, help="Train on this many rows resampled from the real ones.")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, help="Models to run.")
    parser.add_argument("--seed", type=int, default=42, help="Resampling and model seed.")
    parser.add_argument("--n-jobs", type=int, default=1, help="Parallel jobs (LinearSVC calibration folds).")
    parser.add_argument("--worker", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)), flush=True)
        return
    for name in args.models:
        cmd = [sys.executable, __file__, "--data", args.data, "--worker", name, "--seed", str(args.seed),
               "--scale", str(args.scale), "--n-jobs", str(args.n_jobs)]
        if args.train_file:
            cmd += ["--train-file", args.train_file]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(json.dumps({"bench": "classical", "model": name, "error": proc.stderr.strip().splitlines()[-1:]}))
            continue
        print(proc.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
