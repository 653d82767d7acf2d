"""Transformer scoring on a CPU in fp32 against bf16 autocast (``SENTIMENT_CPU_BF16``), side by side.

Scores the same texts with a saved transformer model (a ``models/<run>/<family>`` folder) in both precisions,
alternating, ``--repeats`` times each, through the predictor interface that evaluation, distillation and the
service use. Prints one JSON line per precision (median seconds, texts/s, accuracy) and one comparing them
(speed-up, the largest change of a probability, predictions that flip, Neutral-band decisions that change)::

    python bench/cpu_bf16.py --model $SENTIMENT_HOME/models/<run>/minilm \\
        --texts $SENTIMENT_HOME/data/processed/validation.parquet

bf16 pays only where the CPU multiplies bf16 matrices in hardware (Intel AMX, Sapphire Rapids and later); the
line says whether this one does. Elsewhere bf16 is emulated and slower.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="A saved transformer model folder.")
    p.add_argument("--texts", type=Path, required=True,
                   help="A parquet or CSV file with 'text' and 'label' columns (e.g. a prepared validation split).")
    p.add_argument("--limit", type=int, default=0, help="Score only the first N rows (0: all).")
    p.add_argument("--repeats", type=int, default=3, help="Timed passes per precision (median reported).")
    p.add_argument("--band", type=float, nargs=2, default=(0.4, 0.6), metavar=("LOW", "HIGH"),
                   help="Neutral band on P(positive) for the decision-change count.")
    return p.parse_args(argv)


def main(argv=None) -> list[dict]:
    import numpy as np
    import pandas as pd
    import torch

    from ml.models.transformer.loop import TrainLoop
    from ml.models.transformer.precision import cpu_bf16_native
    from ml.predictor import load_predictor

    args = parse_args(argv)
    frame = pd.read_parquet(args.texts) if args.texts.suffix == ".parquet" else pd.read_csv(args.texts)
    if args.limit:
        frame = frame.head(args.limit)
    texts, truth = frame["text"].astype(str).tolist(), frame["label"].astype(str).tolist()
    predictor = load_predictor(args.model)
    if not hasattr(predictor, "_scoring_loop"):
        raise SystemExit(f"{args.model} holds a {predictor.family} model, not a transformer")
    labels = list(predictor.labels)
    known = np.array([t in labels for t in truth])
    y = np.array([labels.index(t) if t in labels else -1 for t in truth])
    predictor.config.device = "cpu"  # a machine with a GPU too: both loops, and any default one, on the CPU
    loops = {name: TrainLoop(predictor.model, device="cpu", compile=False, bf16=name == "bf16")
             for name in ("fp32", "bf16")}
    for loop in loops.values():  # warm-up (tokenizer, first allocations, each precision's kernels)
        predictor._scorer = loop
        predictor.predict_proba(texts[:256])
    seconds: dict[str, list[float]] = {"fp32": [], "bf16": []}
    proba: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, loop in loops.items():
            predictor._scorer = loop
            started = time.perf_counter()
            proba[name] = predictor.predict_proba(texts)
            seconds[name].append(time.perf_counter() - started)
    common = {"bench": "cpu_bf16", "model": str(args.model), "family": predictor.family, "texts": len(texts),
              "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_amx_bf16": cpu_bf16_native()}
    lines = []
    for name in loops:
        median = statistics.median(seconds[name])
        line = {**common, "precision": name, "repeats": args.repeats, "seconds_median": round(median, 3),
                "texts_per_s": round(len(texts) / median, 1)}
        if known.any():
            line["accuracy"] = round(float((proba[name].argmax(1)[known] == y[known]).mean()) * 100, 2)
        lines.append(line)
    positive = labels.index("positive") if "positive" in labels else -1
    low, high = args.band
    neutral = {n: (p[:, positive] >= low) & (p[:, positive] <= high) for n, p in proba.items()}
    diff = np.abs(proba["bf16"] - proba["fp32"])
    lines.append({**common, "comparison": "bf16 vs fp32",
                  "speedup": round(statistics.median(seconds["fp32"]) / statistics.median(seconds["bf16"]), 2),
                  "max_abs_proba_change": round(float(diff.max()), 5),
                  "mean_abs_proba_change": round(float(diff.mean()), 6),
                  "argmax_flips": int((proba["bf16"].argmax(1) != proba["fp32"].argmax(1)).sum()),
                  "neutral_band_changes": int((neutral["bf16"] != neutral["fp32"]).sum()) if len(labels) == 2
                  else None})
    for line in lines:
        print(json.dumps(line), flush=True)
    return lines


if __name__ == "__main__":
    main()
