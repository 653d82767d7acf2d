"""Benchmark the BentoML service against the write-up's Flask baseline and against the model in-process.

For each model (a LogisticRegression trained here on ``sentiment140/head_tail_100k.csv.gz``, and a saved MiniLM
predictor given with ``--transformer-dir``) the same run measures, on loopback only:

1. ``in-process``: ``predictor.predict_proba`` on batches of 1, 32 and 256 real tweets (the model's own
   batch-inference throughput, no HTTP);
2. ``bentoml``: a real ``bentoml serve`` of the packaged model, driven by concurrent clients posting batches of
   1, 32 and 256 texts to ``/classify`` (plus one client posting single texts, for the latency floor);
3. ``flask-baseline``: the write-up's original design, a Flask development server taking one text per request and
   running the same model on each call.

Every measurement is bounded in time (``--duration``) and requests (``--max-requests``) and prints one JSON line:
tweets/s and p50/p99 latency. A final ``summary`` line per model checks the goals: >= 10x the baseline's tweets/s
(for the transformer), the service's best >= 80% of the model's best in-process batch throughput, single-text
p99 < 100 ms (one client posting one text at a time).

    python bench/serving.py --data ../shared/data
    python bench/serving.py --data ../shared/data --transformer-dir /path/to/models/default/minilm
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BATCHES = (1, 32, 256)


def emit(**row) -> dict:
    print(json.dumps(row), flush=True)
    return row


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def latency_fields(latencies: list[float]) -> dict:
    if not latencies:
        return {"p50_ms": None, "p99_ms": None}
    return {"p50_ms": round(percentile(latencies, 50) * 1000, 2), "p99_ms": round(percentile(latencies, 99) * 1000, 2)}


# ----------------------------------------------------------------------------------------------- models
def bench_texts(data: Path, n: int) -> list[str]:
    """Real tweets to send: the random 20k sample of the training file (not what the model was trained on)."""
    from ml.data import read_sentiment140_zip

    sample, _ = read_sentiment140_zip(data / "sentiment140" / "trainingandtestdata-sample.zip")
    return sample["text"].sample(n=min(n, len(sample)), random_state=0).tolist()


def train_logreg(data: Path, settings, rows: int | None) -> dict:
    """Train the platform's LogisticRegression on head_tail_100k and save it under the bench's models dir."""
    from ml.data import read_labelled
    from ml.predictor import family_class

    train = read_labelled(data / "sentiment140" / "head_tail_100k.csv.gz")
    if rows and rows < len(train):
        train = train.sample(n=rows, random_state=settings.data.seed).reset_index(drop=True)
    model = family_class("logreg").from_options(settings, {})
    started = time.perf_counter()
    model.fit(train["text"].tolist(), train["label"].tolist())
    seconds = time.perf_counter() - started
    model.save(settings.models_dir / "logreg", extra_meta={
        "name": "logreg", "run_id": settings.training.run_id, "data_version": "bench-head_tail_100k",
        "n_train": len(train), "train_seconds": round(seconds, 2)})
    return emit(bench="serving", step="train", model="logreg", n_train=len(train), train_seconds=round(seconds, 1))


def in_process(name: str, predictor, texts: list[str], batch: int, duration: float, max_requests: int) -> dict:
    predictor.predict_proba(texts[:batch])  # warm-up
    latencies: list[float] = []
    n = 0
    started = time.perf_counter()
    while time.perf_counter() - started < duration and len(latencies) < max_requests:
        chunk = [texts[(n + i) % len(texts)] for i in range(batch)]
        t0 = time.perf_counter()
        predictor.predict_proba(chunk)
        latencies.append(time.perf_counter() - t0)
        n += batch
    seconds = time.perf_counter() - started
    return emit(bench="serving", model=name, mode="in-process", batch=batch, concurrency=1, requests=len(latencies),
                tweets=n, seconds=round(seconds, 2), tweets_per_s=round(n / seconds, 1), errors=0,
                **latency_fields(latencies))


# ------------------------------------------------------------------------------------------------ load
async def _drive(url: str, bodies: list[bytes], items: int, concurrency: int, duration: float, max_requests: int,
                 warmup: int) -> dict:
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    next_body = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(limits=limits, timeout=120.0, headers=headers) as client:

        async def one() -> float | None:
            nonlocal next_body
            body = bodies[next_body % len(bodies)]
            next_body += 1
            t0 = time.perf_counter()
            try:
                r = await client.post(url, content=body)
                # Count the answers without parsing them all (keeps the client's CPU share small).
                ok = r.status_code == 200 and (items == 0 or r.content.count(b'"label"') == items)
                key = "ok" if ok else f"http_{r.status_code}"
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            if key != "ok":
                errors[key] = errors.get(key, 0) + 1
                return None
            return time.perf_counter() - t0

        await asyncio.gather(*(one() for _ in range(warmup)))
        deadline = time.perf_counter() + duration
        started = time.perf_counter()

        async def worker() -> None:
            while time.perf_counter() < deadline and len(latencies) + sum(errors.values()) < max_requests:
                latency = await one()
                if latency is not None:
                    latencies.append(latency)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "seconds": seconds}


def drive(name: str, mode: str, url: str, bodies: list[bytes], batch: int, concurrency: int, duration: float,
          max_requests: int) -> dict:
    items = batch if mode == "bentoml" else 0
    result = asyncio.run(_drive(url, bodies, items, concurrency, duration, max_requests,
                                warmup=max(2 * concurrency, 20)))
    done = len(result["latencies"])
    tweets = done * batch
    seconds = result["seconds"]
    return emit(bench="serving", model=name, mode=mode, batch=batch, concurrency=concurrency, requests=done,
                tweets=tweets, seconds=round(seconds, 2), tweets_per_s=round(tweets / seconds, 1),
                errors=sum(result["errors"].values()), error_kinds=result["errors"],
                **latency_fields(result["latencies"]))


def clients_for(batch: int, concurrency: int) -> int:
    """Concurrent clients for a batch size: enough to keep the service busy (one batch running, one queued)
    without queueing past its latency limit (4 x 256 texts of a CPU transformer wait longer than the default
    SENTIMENT_MAX_LATENCY_MS of 10 s)."""
    return max(2, min(concurrency, 512 // batch))


def classify_bodies(texts: list[str], batch: int, count: int = 64) -> list[bytes]:
    return [json.dumps({"texts": [texts[(i * batch + j) % len(texts)] for j in range(batch)]}).encode()
            for i in range(count)]


# -------------------------------------------------------------------------------------------- baseline
def serve_baseline(model_dir: str, port: int) -> None:
    """The write-up's design: a Flask development server, one text per request, the model run on each call."""
    from flask import Flask, jsonify, request

    from ml.predictor import decide, load_predictor
    from ml.settings import get_settings

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request log lines
    predictor = load_predictor(model_dir, cpu_bf16=get_settings().model.cpu_bf16)
    app = Flask("baseline")

    @app.get("/health")
    def health():
        return "ok"

    @app.post("/predict")
    def predict():
        text = request.get_json(force=True)["text"]
        proba = predictor.predict_proba([text])
        return jsonify({"label": decide(proba, predictor.labels)[0],
                        "p_positive": float(proba[0, predictor.labels.index("positive")])})

    app.run(host="127.0.0.1", port=port, threaded=True)


def baseline_server(model_dir: str):
    """The write-up's one-text Flask endpoint in a subprocess (started and stopped by the platform's launcher)."""
    from ml.processes import Process, free_port

    port = free_port()

    class Baseline(Process):
        url = f"http://127.0.0.1:{port}"

        def start(self) -> Baseline:
            super().start()
            try:
                self.wait_http(f"{self.url}/health", timeout=120)
            except BaseException:
                self.stop()
                raise
            return self

    return Baseline([sys.executable, __file__, "--serve-baseline", model_dir, "--port", str(port)], name="flask-baseline")


# ------------------------------------------------------------------------------------------------- run
def bench_model(name: str, settings, texts: list[str], args: argparse.Namespace, transformer: bool) -> None:
    from ml.predictor import load_predictor
    from serving.launch import BentoServer
    from serving.package import package_model

    info = package_model(settings, name)
    emit(bench="serving", step="package", model=name, tag=info["tag"], family=info["family"])
    predictor = load_predictor(info["path"], cpu_bf16=settings.model.cpu_bf16)  # as the service scores
    own = {b: in_process(name, predictor, texts, b, args.duration, args.max_requests) for b in BATCHES}
    del predictor

    env = {"BENTOML_HOME": str(settings.bentoml_home), "SENTIMENT_MODEL_TAG": info["tag"],
           "SENTIMENT_API_KEY": None, "SENTIMENT_HOME": str(settings.home), "SENTIMENT_SERVICE_WORKERS": str(args.workers)}
    served: dict[int, dict] = {}
    with BentoServer("serving.service:TweetSentiment", cwd=ROOT, env=env) as server:
        url = f"{server.url}/classify"
        single = drive(name, "bentoml", url, classify_bodies(texts, 1), 1, 1, args.duration, args.max_requests)
        for batch in BATCHES:
            served[batch] = drive(name, "bentoml", url, classify_bodies(texts, batch), batch,
                                  clients_for(batch, args.concurrency), args.duration, args.max_requests)

    one_text = [json.dumps({"text": t}).encode() for t in texts[:512]]
    with baseline_server(info["path"]) as baseline:
        url = f"{baseline.url}/predict"
        base = {c: drive(name, "flask-baseline", url, one_text, 1, c, args.duration, args.max_requests)
                for c in sorted({1, args.concurrency})}

    best = max(served.values(), key=lambda r: r["tweets_per_s"])
    base_best = max(base.values(), key=lambda r: r["tweets_per_s"])
    big = served[max(BATCHES)]
    own_best = max(own.values(), key=lambda r: r["tweets_per_s"])
    speedup = best["tweets_per_s"] / base_best["tweets_per_s"] if base_best["tweets_per_s"] else None
    vs_own = big["tweets_per_s"] / own[max(BATCHES)]["tweets_per_s"]
    vs_own_best = best["tweets_per_s"] / own_best["tweets_per_s"]
    p99_single = single["p99_ms"]
    goals = {"ge_80pct_of_in_process_best": vs_own_best >= 0.8,
             "single_text_p99_under_100ms": p99_single is not None and p99_single < 100}
    if transformer:
        goals["ge_10x_baseline"] = speedup is not None and speedup >= 10
    emit(bench="serving", summary=True, model=name, workers=args.workers, service_best_tweets_per_s=best["tweets_per_s"],
         service_best_batch=best["batch"], baseline_best_tweets_per_s=base_best["tweets_per_s"],
         speedup_vs_baseline=round(speedup, 2) if speedup else None,
         service_batch256_tweets_per_s=big["tweets_per_s"],
         in_process_batch256_tweets_per_s=own[max(BATCHES)]["tweets_per_s"],
         service_vs_in_process_batch256=round(vs_own, 3), in_process_best_tweets_per_s=own_best["tweets_per_s"],
         in_process_best_batch=own_best["batch"], service_vs_in_process_best=round(vs_own_best, 3),
         single_text_p50_ms=single["p50_ms"],
         single_text_p99_ms=p99_single, goals=goals,
         errors=sum(r["errors"] for r in (single, *served.values(), *base.values())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="Folder laid out like shared/data (sentiment140/head_tail_100k.csv.gz, the sample zip).")
    parser.add_argument("--transformer-dir", type=Path, help="A saved MiniLM predictor directory (skipped if absent).")
    parser.add_argument("--train-rows", type=int, default=None, help="Train the LR on this many rows (default all).")
    parser.add_argument("--duration", type=float, default=8.0, help="Seconds per measurement.")
    parser.add_argument("--max-requests", type=int, default=20_000, help="Most requests per measurement.")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="Concurrent clients for batches of 1 and 32 (batches of 256 use 2).")
    parser.add_argument("--workers", type=int, default=1, help="Service worker processes (SENTIMENT_SERVICE_WORKERS).")
    parser.add_argument("--texts", type=int, default=4096, help="Distinct real tweets to send.")
    parser.add_argument("--skip-logreg", action="store_true", help="Only benchmark the transformer.")
    parser.add_argument("--home", type=Path, help="Artifacts root to use (default: a temporary one, removed).")
    parser.add_argument("--serve-baseline", metavar="MODEL_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline, args.port)
        return

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    # The service sets this too (see serving/service.py): the in-process and baseline figures use the same
    # OpenMP wait policy, or a loaded 2-core machine would penalise them and flatter the service.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    home = args.home or Path(tempfile.mkdtemp(prefix="bench-serving-"))
    os.environ["BENTOML_HOME"] = str(home / "bentoml")
    from ml.settings import get_settings

    settings = get_settings(home=home, run_id="bench")
    texts = bench_texts(args.data, args.texts)
    emit(bench="serving", step="setup", cpus=os.cpu_count(), load_avg_1m=round(os.getloadavg()[0], 2),
         texts=len(texts), duration_s=args.duration, concurrency=args.concurrency,
         omp_wait_policy=os.environ["OMP_WAIT_POLICY"], home=str(home))
    try:
        if not args.skip_logreg:
            train_logreg(args.data, settings, args.train_rows)
            bench_model("logreg", settings, texts, args, transformer=False)
        tdir = args.transformer_dir
        if tdir is None:
            emit(bench="serving", model="minilm", skipped="no --transformer-dir given")
        elif not (tdir / "predictor.json").is_file():
            emit(bench="serving", model="minilm", skipped=f"{tdir} is not a saved predictor (no predictor.json)")
        else:
            shutil.copytree(tdir, settings.models_dir / "minilm", dirs_exist_ok=True)
            try:
                bench_model("minilm", settings, texts, args, transformer=True)
            except Exception as exc:  # report and go on: the LR figures above stand
                emit(bench="serving", model="minilm", skipped=f"{type(exc).__name__}: {exc}"[:500])
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
