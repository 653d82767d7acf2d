"""Neural families against the LogisticRegression reference, on CPU: one JSON line per model.

Trains LogisticRegression (the reference), GRU, LSTM and a fine-tuned all-MiniLM-L6-v2 on a seeded, stratified
subset of ``sentiment140/head_tail_100k.csv.gz`` and scores each on the 20,000 random tweets of
``sentiment140/trainingandtestdata-sample.zip`` (validate on that sample, not on a split of head_tail: its
halves come from different weeks). 5% of the subset is held out for early stopping / best-checkpoint choice.
Each model trains in its own process, so ``peak_rss_mb`` is that model's own peak resident memory.

Example (about 20 minutes on 2 busy cores)::

    python bench/neural.py --data ../shared/data --subset 20000 --minilm-subset 4000

``--rnn-teacher minilm`` distils GRU and LSTM from the MiniLM fine-tuned in the same run (trained first). Its
probabilities on the RNNs' training rows are computed for the first RNN's fit, whose seconds include that
pass; the second reuses them (``fit.teacher.seconds``/``reused`` say which)::

    python bench/neural.py --data ../shared/data --subset 0 --minilm-subset 20000 \
        --models logreg,minilm,gru,lstm --rnn-teacher minilm

``--rnn-embeddings minilm`` (or a GloVe/word2vec file) starts the RNN embeddings from pretrained word vectors;
``fit.embeddings`` reports their coverage.

The transformer fine-tune is the slow one on CPU, hence its own, smaller subset (``--minilm-subset``); its
learning rate is the minilm family's 5e-5 (not bert-base's 1e-5: few steps, small model); the output line
states both.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue as queue_module
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HEAD_TAIL = Path("sentiment140") / "head_tail_100k.csv.gz"
SAMPLE_ZIP = Path("sentiment140") / "trainingandtestdata-sample.zip"
MODELS = ("logreg", "gru", "lstm", "minilm")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="Folder laid out like ../shared/data.")
    p.add_argument("--subset", type=int, default=20_000,
                   help="Training rows drawn from head_tail_100k for logreg, GRU and LSTM (0: all 98,643).")
    p.add_argument("--minilm-subset", type=int, default=4_000, help="Training rows for the MiniLM fine-tune.")
    p.add_argument("--models", default=",".join(MODELS), help=f"Comma-separated subset of {','.join(MODELS)}.")
    p.add_argument("--rnn-epochs", type=int, default=4, help="Maximum RNN epochs (early stopping, patience 1).")
    p.add_argument("--rnn-batch-size", type=int, default=256)
    p.add_argument("--rnn-lr", type=float, default=None, help="RNN learning rate (default: the model's).")
    p.add_argument("--rnn-dropout", type=float, default=None, help="RNN dropout (default: the model's).")
    p.add_argument("--rnn-embeddings", default=None,
                   help="Pretrained vectors for the RNN embeddings: minilm, or a word-vector text file (GloVe).")
    p.add_argument("--rnn-teacher", default=None,
                   help="Distil GRU/LSTM from 'minilm' (the one this run fine-tunes) or a saved model directory.")
    p.add_argument("--rnn-teacher-weight", type=float, default=None,
                   help="The teacher's share of each RNN training target (default: the model's, 1).")
    p.add_argument("--minilm-epochs", type=int, default=1)
    p.add_argument("--minilm-batch-size", type=int, default=32)
    p.add_argument("--minilm-lr", type=float, default=5e-5, help="Peak learning rate of the MiniLM fine-tune.")
    p.add_argument("--test-limit", type=int, default=0,
                   help="Score on a stratified random N of the 20k sample (0: all of it).")
    p.add_argument("--seed", type=int, default=42)
    return p.parse_args(argv)


def stratified(texts: list[str], labels: list[str], n: int, seed: int) -> tuple[list[str], list[str]]:
    """A seeded sample of ``n`` rows with the label shares of the whole, in shuffled order."""
    import numpy as np

    if not n or n >= len(texts):
        n = len(texts)
    rng = np.random.default_rng(seed)
    y = np.array(labels)
    picked = []
    for label in sorted(set(labels)):
        idx = np.flatnonzero(y == label)
        picked.append(rng.choice(idx, size=round(n * len(idx) / len(y)), replace=False))
    order = rng.permutation(np.concatenate(picked))
    return [texts[i] for i in order], [labels[i] for i in order]


def hold_out(texts, labels, share: float = 0.05):
    cut = max(int(len(texts) * share), 1)
    return (texts[cut:], labels[cut:]), (texts[:cut], labels[:cut])


def build(name: str, args) -> Any:
    if name == "logreg":
        from ml.models.classical import LogRegPredictor

        return LogRegPredictor(seed=args.seed), {}
    if name in ("gru", "lstm"):
        from ml.models.rnn.predictor import GRUPredictor, LSTMPredictor

        cls = GRUPredictor if name == "gru" else LSTMPredictor
        options = {"epochs": args.rnn_epochs, "batch_size": args.rnn_batch_size, "patience": 1}
        options.update({k: v for k, v in (("learning_rate", args.rnn_lr), ("dropout", args.rnn_dropout),
                                          ("embeddings", args.rnn_embeddings),
                                          ("teacher", args.teacher_dir), ("teacher_weight", args.rnn_teacher_weight))
                        if v is not None})
        return cls(seed=args.seed, **options), options
    from ml.models.transformer.config import TrainConfig
    from ml.models.transformer.predictor import MiniLMPredictor

    config = TrainConfig(epochs=args.minilm_epochs, batch_size=args.minilm_batch_size,
                         learning_rate=args.minilm_lr, seed=args.seed, progress=False)
    options = {"epochs": config.epochs, "batch_size": config.batch_size, "learning_rate": config.learning_rate}
    return MiniLMPredictor(config=config), options


def run_one(name: str, args, train, val, test, queue) -> None:
    """Child process: fit, score, report (its own peak RSS is the model's)."""
    import logging

    import numpy as np

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        from ml.settings import get_settings
        from ml.training import fit_predictor

        predictor, options = build(name, args)
        started = time.perf_counter()
        # A student also gets its teacher's probabilities (computed once, cached for the next RNN).
        facts = fit_predictor(predictor, train[0], train[1], get_settings(), val_texts=val[0], val_labels=val[1],
                              teacher_cache=args.teacher_cache)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        proba = predictor.predict_proba(test[0])
        predict_seconds = time.perf_counter() - started
        if name == "minilm" and args.rnn_teacher == "minilm":  # the RNNs of this run distil from it
            predictor.save(args.teacher_dir)
        predicted = np.array(predictor.labels)[proba.argmax(axis=1)]
        accuracy = float((predicted == np.array(test[1])).mean())
        facts = facts or {}
        queue.put({
            "model": name, "accuracy": round(accuracy, 4), "fit_seconds": round(fit_seconds, 1),
            "predict_seconds": round(predict_seconds, 1), "n_train": len(train[0]), "n_val": len(val[0]),
            "n_test": len(test[0]), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "options": options,
            "fit": {k: facts[k] for k in ("epochs_run", "best_epoch", "max_length", "steps", "best",
                                          "train_samples_per_second", "vocabulary", "embeddings", "teacher") if k in facts},
        })
    except BaseException as exc:  # report, never hang the parent
        queue.put({"model": name, "error": f"{type(exc).__name__}: {exc}"})
        raise


def main(argv=None) -> list[dict]:
    from ml.data import read_labelled, read_sentiment140_zip

    args = parse_args(argv)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(names) - set(MODELS)
    if unknown:
        raise SystemExit(f"unknown models {sorted(unknown)}; choose from {MODELS}")
    head_tail = read_labelled(args.data / HEAD_TAIL)
    sample, _ = read_sentiment140_zip(args.data / SAMPLE_ZIP)
    test = (sample["text"].tolist(), sample["label"].tolist())
    if args.test_limit:  # the sample lists negatives first: take a stratified random part, not the head
        test = stratified(*test, args.test_limit, args.seed)
    all_texts, all_labels = head_tail["text"].tolist(), head_tail["label"].tolist()

    args.teacher_dir = args.teacher_cache = None
    scratch = None
    if args.rnn_teacher:  # GRU and LSTM share one pass of the teacher over their training rows
        scratch = tempfile.TemporaryDirectory(prefix="neural-teacher-")
        args.teacher_cache = str(Path(scratch.name) / "cache")
        args.teacher_dir = str(Path(args.rnn_teacher).resolve())
    if args.rnn_teacher == "minilm":
        if "minilm" not in names:
            raise SystemExit("--rnn-teacher minilm needs minilm in --models")
        names = ["minilm"] + [n for n in names if n != "minilm"]  # the teacher trains first
        args.teacher_dir = str(Path(scratch.name) / "minilm")

    try:
        ctx = mp.get_context("spawn")
        results = []
        for name in names:
            n = args.minilm_subset if name == "minilm" else args.subset
            train, val = hold_out(*stratified(all_texts, all_labels, n, args.seed))
            queue = ctx.Queue()
            proc = ctx.Process(target=run_one, args=(name, args, train, val, test, queue), daemon=False)
            proc.start()
            result = None
            while result is None:  # a child killed by the OOM killer never answers: do not wait forever
                try:
                    result = queue.get(timeout=5)
                except queue_module.Empty:
                    if not proc.is_alive():
                        proc.join()
                        try:  # it may have answered just before it exited
                            result = queue.get(timeout=1)
                        except queue_module.Empty:
                            result = {"model": name, "error": f"the {name} process died without a result (exit "
                                                              f"code {proc.exitcode}; the OOM killer's is -9)"}
            proc.join()
            result["exit_code"] = proc.exitcode
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        if scratch is not None:
            scratch.cleanup()

    reference = next((r["accuracy"] for r in results if r["model"] == "logreg" and "accuracy" in r), None)
    if reference is not None:
        print(json.dumps({"summary": "neural vs logreg", "logreg_accuracy": reference,
                          "beats_logreg": {r["model"]: r["accuracy"] > reference for r in results
                                           if r["model"] != "logreg" and "accuracy" in r}}), flush=True)
    return results


if __name__ == "__main__":
    main()
