"""Throughput of the project's transformer trainer: training and inference samples/s, one JSON line each.

It drives the same code as ``ml.models.transformer`` fine-tuning (``TrainLoop.train_step`` over
``length_grouped_batches`` + ``make_batch``, ``TrainLoop.predict_logits`` for inference), so it measures the
project's trainer rather than a separate loop. Needs only torch, transformers and numpy (no pandas, sklearn or
pydantic), and no network: ``--from-config`` builds a model of a known architecture with random weights.

Examples::

    PYTHONPATH=. python bench/transformer.py --quick                       # CPU smoke run, tiny model
    PYTHONPATH=. python bench/transformer.py --from-config bert-base-uncased --device cuda \\
        --max-length 64 --batch-size 256 --padding both --data ../shared/data
    PYTHONPATH=. python bench/transformer.py --model /path/to/local/model --device cpu --no-compile

Padding modes: ``fixed`` makes every sequence exactly ``--max-length`` tokens; ``dynamic`` uses tweet lengths
(word pieces of the cleaned texts of ``sentiment140/head_tail_100k.csv.gz`` under ``--data``, with a real
tokenizer when one is at hand and an estimate otherwise; synthesized lengths without ``--data``), grouped by
length and padded per batch to a multiple of 8, as the trainer does. The dynamic training line carries
``epoch_estimate_minutes``: 2 epochs over 1.28M tweets at the measured rate, plus the measured warm-up/compile.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from ml.lengths import covering_length  # noqa: E402
from ml.models.transformer.batching import length_grouped_batches, make_batch  # noqa: E402
from ml.models.transformer.compilation import DEFAULT_COMPILE_MODE  # noqa: E402
from ml.models.transformer.config import MAX_LENGTH_CAP  # noqa: E402
from ml.models.transformer.hub import load_pretrained, minilm_dir  # noqa: E402
from ml.models.transformer.loop import TrainLoop  # noqa: E402
from ml.text import clean  # noqa: E402

TRAIN_TWEETS = 1_280_000   # the training split of the full 1.6M Sentiment140 file (80%)
ALL_TWEETS = 1_600_000
EPOCHS = 2
GOAL_FIXED_SAMPLES_PER_S = 7_500
GOAL_MINUTES_1_6M = 5.0
HEAD_TAIL = Path("sentiment140") / "head_tail_100k.csv.gz"

#: Architectures ``--from-config`` can build with random weights (no download).
CONFIGS = {
    "bert-base-uncased": ("bert", {}),
    "roberta-base": ("roberta", {"vocab_size": 50265, "max_position_embeddings": 514, "type_vocab_size": 1,
                                 "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}),
    "all-minilm-l6-v2": ("bert", {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
                                  "intermediate_size": 1536}),
    "tiny": ("bert", {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                      "intermediate_size": 512}),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="Local model directory (or a Hub id present in the local cache).")
    src.add_argument("--from-config", choices=sorted(CONFIGS),
                     help="Build this architecture with random weights (default: bert-base-uncased; tiny with --quick).")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available).")
    p.add_argument("--compile", dest="compile", action="store_true", default=None,
                   help="torch.compile(dynamic=True) the step (default: on for CUDA).")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="Eager mode.")
    p.add_argument("--compile-mode", default=DEFAULT_COMPILE_MODE,
                   choices=["default", "reduce-overhead", "max-autotune-no-cudagraphs"],
                   help="torch.compile mode on CUDA (default: the trainer's, %(default)s = CUDA graphs per batch shape).")
    p.add_argument("--compile-scope", default="model", choices=["layers", "model"],
                   help="Compile the whole loss (model, what a full-size fit uses) or the repeated encoder layer "
                        "once (layers); default %(default)s.")
    p.add_argument("--bf16", dest="bf16", action="store_true", default=None,
                   help="bf16 autocast (default: on for CUDA).")
    p.add_argument("--no-bf16", dest="bf16", action="store_false", help="fp32.")
    p.add_argument("--padding", choices=["fixed", "dynamic", "both"], default="both",
                   help="fixed: every sequence --max-length tokens; dynamic: tweet lengths, length-grouped batches.")
    p.add_argument("--max-length", type=int, default=None,
                   help="Fixed length, and the cap for dynamic (default: 64 fixed; dynamic: 99%% coverage).")
    p.add_argument("--batch-size", type=int, default=256, help="Training batch size.")
    p.add_argument("--steps", type=int, default=60, help="Timed training steps.")
    p.add_argument("--warmup-steps", type=int, default=15, help="Untimed steps first (compilation, autotuning).")
    p.add_argument("--infer-batch-size", type=int, default=1024, help="Inference batch size.")
    p.add_argument("--infer-samples", type=int, default=65_536, help="Texts scored in the timed inference run.")
    p.add_argument("--data", type=Path, default=None,
                   help="Folder laid out like ../shared/data (uses sentiment140/head_tail_100k.csv.gz).")
    p.add_argument("--tokenizer", type=Path, default=None,
                   help="Tokenizer directory for exact lengths (default: the model's, else all-MiniLM's if installed).")
    p.add_argument("--skip-inference", action="store_true", help="Only measure training.")
    p.add_argument("--profile", type=int, default=0, metavar="STEPS",
                   help="After timing, profile this many training steps and print the top ops to stderr.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="CPU smoke run: tiny model, a few steps, small batches (overrides the sizes above).")
    args = p.parse_args(argv)
    if args.quick:
        args.device = args.device or "cpu"
        if not args.model and not args.from_config:
            args.from_config = "tiny"
        args.batch_size, args.steps, args.warmup_steps = 16, 4, 1
        args.infer_batch_size, args.infer_samples = 64, 256
    args.from_config = args.from_config or (None if args.model else "bert-base-uncased")
    return args


# --------------------------------------------------------------------------------------------------- lengths
def estimated_pieces(cleaned: str) -> int:
    """Word pieces of a cleaned tweet without a tokenizer: [CLS] + [SEP] + one piece per 6 letters of a word.

    Calibrated on head_tail_100k against the bert-base-uncased tokenizer: mean 16.5 vs 16.3, p99 33 vs 34.
    """
    return 2 + sum(1 + (len(word) - 1) // 6 for word in cleaned.split())


def tweet_lengths(args, tokenizer):
    """``(lengths, source)``: token lengths of real tweets when ``--data`` is given, synthesized otherwise."""
    import numpy as np

    if args.data is not None:
        path = args.data / HEAD_TAIL
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            rows = csv.reader(fh)
            header = next(rows)
            text_col = header.index("text") if "text" in header else 1
            cleaned = [clean(row[text_col]) for row in rows]
        if tokenizer is not None:
            ids = tokenizer(cleaned, truncation=True, max_length=MAX_LENGTH_CAP)["input_ids"]
            return np.array([len(x) for x in ids]), f"{path.name}: tokenizer word pieces"
        return np.array([estimated_pieces(c) for c in cleaned]), f"{path.name}: estimated word pieces"
    # Gamma fitted to the real distribution (mean 16.3, median 15, p90 28; the tail is a little heavier).
    rng = np.random.default_rng(1234)
    lengths = np.round(rng.gamma(3.38, 4.24, size=100_000)).astype(int) + 2
    return np.clip(lengths, 2, MAX_LENGTH_CAP), "synthetic (gamma fitted to head_tail_100k)"


def find_tokenizer(args, tokenizer):
    if tokenizer is not None:
        return tokenizer
    from transformers import AutoTokenizer

    for candidate in (args.tokenizer, None):
        try:
            path = candidate or minilm_dir()
            return AutoTokenizer.from_pretrained(path, local_files_only=True)
        except Exception:  # no tokenizer at hand: lengths are estimated
            continue
    return None


# ---------------------------------------------------------------------------------------------------- model
def build_model(args):
    """``(model, tokenizer or None, description)``."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    if args.model:
        tokenizer, model = load_pretrained(args.model, ("negative", "positive"))
        return model, tokenizer, {"model": args.model, "weights": "pretrained"}
    model_type, sizes = CONFIGS[args.from_config]
    config = AutoConfig.for_model(model_type, num_labels=2, **sizes)
    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
    return model, None, {"model": args.from_config, "weights": "random"}


# ----------------------------------------------------------------------------------------------- measuring
def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sequences(lengths, vocab_size: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    return [rng.integers(1000, vocab_size, size=int(n)) for n in lengths]


def measure_train(loop: TrainLoop, seqs, labels, pad_id: int, args) -> dict:
    """Warm-up steps, then ``args.steps`` timed steps, exactly as ``fit`` runs them (one micro-batch a step)."""
    lengths = [len(s) for s in seqs]
    epoch, queue = 0, []

    def next_batch():
        nonlocal epoch, queue
        if not queue:
            queue = list(length_grouped_batches(lengths, args.batch_size, seed=args.seed, epoch=epoch))
            queue = [b for b in queue if len(b) == args.batch_size] or queue
            epoch += 1
        return queue.pop()

    def run(n: int) -> tuple[int, int]:
        samples = tokens = 0
        loss = None
        for _ in range(n):
            batch = make_batch(seqs, next_batch(), pad_id, labels)
            loss = loop.train_step([batch])
            samples += len(batch[0])
            tokens += batch[0].size
        if loss is not None:
            float(loss)  # wait for the device
        sync(loop.device)
        return samples, tokens

    started = time.perf_counter()
    run(args.warmup_steps)
    warmup_seconds = time.perf_counter() - started
    started = time.perf_counter()
    samples, tokens = run(args.steps)
    seconds = time.perf_counter() - started
    if args.profile:
        profile(loop, run, args.profile)
    return {"steps": args.steps, "warmup_steps": args.warmup_steps, "warmup_seconds": round(warmup_seconds, 2),
            "seconds": round(seconds, 3), "samples_per_s": round(samples / seconds, 1),
            "padded_tokens_per_s": round(tokens / seconds), "mean_padded_length": round(tokens / samples, 2)}


def profile(loop: TrainLoop, run, steps: int) -> None:
    """Top ops by host and by device time over ``steps`` steps (stderr), to tell host-bound from device-bound."""
    import torch
    from torch.profiler import ProfilerActivity

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if loop.device.type == "cuda" else [])
    with torch.profiler.profile(activities=activities) as prof:
        run(steps)
    table = prof.key_averages()
    print(table.table(sort_by="self_cpu_time_total", row_limit=15), file=sys.stderr)
    if loop.device.type == "cuda":
        print(table.table(sort_by="self_device_time_total", row_limit=15), file=sys.stderr)


def dynamo_stats() -> dict:
    """Graphs compiled and graph breaks so far (a recompiling or breaking step shows here)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return {}
    stats = {"unique_graphs": counters["stats"].get("unique_graphs", 0),
             "graph_breaks": sum(counters["graph_break"].values())}
    if counters["graph_break"]:
        stats["graph_break_reasons"] = [str(k)[:160] for k, _ in counters["graph_break"].most_common(3)]
    return stats


def measure_inference(loop: TrainLoop, seqs, pad_id: int, args) -> dict:
    import numpy as np

    rng = np.random.default_rng(args.seed + 1)
    pick = rng.choice(len(seqs), size=args.infer_samples, replace=len(seqs) < args.infer_samples)
    sample = [seqs[i] for i in pick]
    started = time.perf_counter()
    loop.predict_logits(sample[: args.infer_batch_size * 2], pad_id, args.infer_batch_size, compiled=True)  # warm-up
    sync(loop.device)
    warmup_seconds = time.perf_counter() - started
    started = time.perf_counter()
    logits = loop.predict_logits(sample, pad_id, args.infer_batch_size, compiled=True)
    sync(loop.device)
    seconds = time.perf_counter() - started
    assert logits.shape == (len(sample), 2)
    return {"samples": len(sample), "batch_size": args.infer_batch_size, "warmup_seconds": round(warmup_seconds, 2),
            "seconds": round(seconds, 3), "samples_per_s": round(len(sample) / seconds, 1)}


def main(argv=None) -> list[dict]:
    import numpy as np
    import torch
    import transformers

    from ml.models.transformer.loop import resolve_device

    args = parse_args(argv)
    device = resolve_device(args.device)
    model, tokenizer, described = build_model(args)
    vocab_size = model.config.vocab_size
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    loop = TrainLoop(model, device=device, total_steps=10 * (args.steps + args.warmup_steps) + 10, lr=1e-5,
                     warmup_steps=0, bf16=args.bf16, compile=args.compile,
                     compile_mode=args.compile_mode, compile_scope=args.compile_scope)
    common = {
        "bench": "transformer", **described, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "transformers": transformers.__version__,
        "compiled": loop.compiled, "compile_mode": loop.compile_mode, "compile_scope": loop.compile_scope,
        "bf16": loop.bf16, "params_millions": round(model.num_parameters() / 1e6, 1),
    }
    modes = ["fixed", "dynamic"] if args.padding == "both" else [args.padding]
    results = []
    for mode in modes:
        if mode == "fixed":
            max_length = args.max_length or 64
            lengths, source = np.full(max(args.batch_size * 8, args.infer_samples), max_length), "fixed"
        else:
            raw, source = tweet_lengths(args, find_tokenizer(args, tokenizer))
            max_length = args.max_length or covering_length(raw.tolist(), multiple=8, cap=MAX_LENGTH_CAP)
            lengths = np.minimum(raw, max_length)
        seqs = sequences(lengths, vocab_size, args.seed)
        labels = np.random.default_rng(args.seed).integers(0, 2, size=len(seqs))
        info = {**common, "padding": mode, "max_length": int(max_length), "lengths": source,
                "mean_length": round(float(np.mean(lengths)), 2)}
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        train = {**info, "phase": "train", "batch_size": args.batch_size, **measure_train(loop, seqs, labels, pad_id,
                                                                                              args)}
        if device.type == "cuda":
            train["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if loop.compiled:
            train["dynamo"] = dynamo_stats()
        sps = train["samples_per_s"]
        if mode == "fixed":
            train["goal_samples_per_s"] = GOAL_FIXED_SAMPLES_PER_S
            train["meets_goal"] = sps >= GOAL_FIXED_SAMPLES_PER_S
        else:
            train["epoch_estimate_minutes"] = round((EPOCHS * TRAIN_TWEETS / sps + train["warmup_seconds"]) / 60, 2)
            train["estimate_minutes_1_6m"] = round((EPOCHS * ALL_TWEETS / sps + train["warmup_seconds"]) / 60, 2)
            train["meets_goal"] = train["estimate_minutes_1_6m"] < GOAL_MINUTES_1_6M
        print(json.dumps(train), flush=True)
        results.append(train)
        if not args.skip_inference:
            line = {**info, "phase": "inference", **measure_inference(loop, seqs, pad_id, args)}
            print(json.dumps(line), flush=True)
            results.append(line)
    return results


if __name__ == "__main__":
    main()
