"""Benchmark the streaming job end to end against the write-up's streaming design, on loopback only.

For each model (a LogisticRegression trained here on ``sentiment140/head_tail_100k.csv.gz``; a MiniLM given with
``--minilm-model DIR`` or fine-tuned here with ``python -m ml train minilm``) the same run measures:

1. ``in-process``: ``predictor.predict_proba`` on the same tweets in batches of ``--chunk`` (the model's own
   batch throughput, no Spark, no HTTP);
2. ``pipeline``: ``--n`` real tweets written as landing files -> ``spark-submit --master local[*]
   spark_apps/stream/job.py`` -> parquet, scored through a real ``bentoml serve``: tweets/s end to end (first
   file landed -> last micro-batch committed), ingest->parquet latency p50/p95 (a post's ``ingest_ts`` -> the
   commit of its micro-batch in ``_spark_metadata``), missing and duplicated ids in the committed output; then
   (``--paced-seconds``) the same at a steady share of that throughput, for the latency of a stream that keeps up;
3. ``baseline`` (LogisticRegression): the write-up's design (``bench/stream_baseline.py``): a socket source and a
   Python UDF making one HTTP call per row to a one-text Flask endpoint serving the same model.

4. ``cluster`` (``--spark-workers 1,2``): the LogisticRegression pipeline again on a Spark standalone cluster
   started here on loopback (a master and N workers of ``--worker-cores`` cores, :mod:`ops.cluster`), once per
   worker count, with a ``cluster-summary`` line: tweets/s per worker count and the ratio to the first.

One JSON line per figure, then a ``summary`` line per model with the ratios and the goals: LogisticRegression
>= 20x the baseline's tweets/s with zero missing and zero duplicated ids; MiniLM end to end >= 80% of its
in-process batch throughput. ``--quick`` runs a small version of all of it (the tests run it).

    python bench/stream.py --data ../shared/data
    python bench/stream.py --data ../shared/data --minilm-model $SENTIMENT_HOME/models/default/minilm
    python bench/stream.py --data ../shared/data --spark-workers 1,2 --n 100000     # a standalone cluster
    python bench/stream.py --data ../shared/data --master spark://host:7077 --skip-minilm   # an existing one
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent


def emit(**row) -> dict:
    print(json.dumps(row), flush=True)
    return row


def bench_serving():
    """``bench/serving.py`` as a module (its name would clash with the ``serving`` package)."""
    spec = importlib.util.spec_from_file_location("bench_serving", ROOT / "bench" / "serving.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def child_env(home: Path, extra: dict | None = None) -> dict:
    from ml.processes import environ

    return environ({"SENTIMENT_HOME": str(home), "BENTOML_HOME": str(home / "bentoml"), "SENTIMENT_API_KEY": None,
                    "SENTIMENT_CONFIG": None, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}",
                    "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
                    "SPARK_LOCAL_IP": "127.0.0.1", "BENTOML_DO_NOT_TRACK": "True", "OMP_WAIT_POLICY": "PASSIVE",
                    "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", **(extra or {})})


def spark_submit(master: str, *args: str) -> list[str]:
    return [str(BIN / "spark-submit"), "--master", master, "--driver-memory", "1g", "--conf", "spark.ui.enabled=false",
            "--conf", "spark.driver.host=127.0.0.1", *args]


# ------------------------------------------------------------------------------------------- measurements
def in_process(name: str, model_dir: str, texts: list[str], chunk: int) -> dict:
    from ml.predictor import load_predictor

    predictor = load_predictor(model_dir)
    predictor.predict_proba(texts[:chunk])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(texts), chunk):
        predictor.predict_proba(texts[i:i + chunk])
    seconds = time.perf_counter() - started
    return emit(bench="stream", model=name, mode="in-process", batch=chunk, tweets=len(texts),
                seconds=round(seconds, 2), tweets_per_s=round(len(texts) / seconds, 1))


def commit_times(output: Path) -> dict[str, float]:
    """Committed output file -> when its micro-batch was committed (mtime of its ``_spark_metadata`` entry)."""
    from spark_apps.stream.sparklog import batch_files, log_files

    times = {}
    for batch, _, path in log_files(output / "_spark_metadata"):
        for file in batch_files(output, batch):
            times[file] = path.stat().st_mtime
    return times


def output_figures(output: Path, expected: set[str], since: float, ingest_field: str = "ingest_ts") -> dict:
    """Tweets/s, latency percentiles, missing and duplicated ids of the committed output for ``expected`` ids."""
    import numpy as np
    import pyarrow.parquet as pq

    ids, latencies, last = [], [], since
    for file, committed in commit_times(output).items():
        table = pq.read_table(file, columns=["id", ingest_field]).to_pandas()
        table = table[table["id"].isin(expected)]
        if table.empty:
            continue
        ids.extend(table["id"])
        ingest = table[ingest_field]
        if ingest.dtype == object:  # the baseline keeps the landing string
            ingest = ingest.map(lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).replace(tzinfo=None))
        epoch = (ingest - datetime(1970, 1, 1)).dt.total_seconds().to_numpy()
        latencies.extend((committed - epoch) * 1000)
        last = max(last, committed)
    seen = set(ids)
    seconds = max(last - since, 1e-6)
    return {"tweets": len(seen), "seconds": round(seconds, 2), "tweets_per_s": round(len(seen) / seconds, 1),
            "latency_p50_ms": round(float(np.percentile(latencies, 50)), 1) if latencies else None,
            "latency_p95_ms": round(float(np.percentile(latencies, 95)), 1) if latencies else None,
            "missing": len(expected - seen), "duplicated": len(ids) - len(seen)}


def cpu_seconds(root: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the live processes descended from ``root``, by kind:
    ``jvm`` (java), ``python``."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat.rsplit(")", 1)[1].split()
            stats[int(entry.name)] = (name, int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (_, ppid, _) in stats.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    totals = {"jvm": 0.0, "python": 0.0}
    for pid in tree & stats.keys():
        name, _, cpu = stats[pid]
        totals["jvm" if name == "java" else "python"] += cpu
    return totals


def land(landing: Path, texts: list[str], prefix: str, file_size: int) -> tuple[set[str], float]:
    """Write the posts as landing files of ``file_size`` posts; their ids and when the first file landed."""
    from spark_apps.stream.landing import post, write_landing

    ids, first = set(), None
    for start in range(0, len(texts), file_size):
        chunk = [post(f"{prefix}-{i}", text) for i, text in enumerate(texts[start:start + file_size], start)]
        write_landing(landing, chunk)
        first = first or time.time()
        ids.update(p["id"] for p in chunk)
    return ids, first


def wait_written(status_path: Path, total: int, job, timeout: float) -> dict:
    from spark_apps.stream.status import read_status

    def done():
        doc = read_status(status_path) or {}
        return doc if (doc.get("totals") or {}).get("written", 0) >= total else None

    return job.wait_until(done, timeout, f"done with {total} posts")


def pipeline(name: str, home: Path, model: dict, texts: list[str], args: argparse.Namespace) -> dict:
    """Warm up, then drain ``texts`` through the real job and service; optionally a paced run."""
    from ml.processes import Process
    from serving.launch import BentoServer
    from spark_apps.stream.paths import StreamPaths

    env = child_env(home, {"SENTIMENT_MODEL_TAG": model["tag"], "SENTIMENT_MAX_BATCH_SIZE": str(args.service_batch),
                           "SENTIMENT_SERVICE_WORKERS": str(args.service_workers)})
    logs = home / "logs"
    server = BentoServer(env=env, log=logs / f"bentoml-{name}.log")
    paths = StreamPaths.under(home / "stream" / name)
    confs = [item for conf in args.spark_conf for item in ("--conf", conf)]
    job = Process(spark_submit(args.master, *confs, str(ROOT / "spark_apps/stream/job.py"), "--name", name,
                               "--trigger-seconds", str(args.trigger_seconds),
                               "--max-files-per-trigger", str(args.files_per_trigger),
                               "--score-chunk", str(args.chunk), "--score-concurrency", str(args.concurrency),
                               "--state-partitions", str(args.state_partitions),
                               "--arrow-batch-rows", str(args.arrow_batch_rows), "--partition-by", "date"),
                  cwd=ROOT, env={**env, "SENTIMENT_SERVICE_URL": server.url}, log=logs / f"job-{name}.log",
                  name=f"job-{name}")
    job.start()  # before the service, so both start-ups overlap (the job's start-up probe retries meanwhile)
    try:
        server.start()
        # Warm up with a small batch (starts the Python workers), then a full-size one (the JIT compiles the hot
        # paths): the drain below measures the steady state of a stream that runs for weeks.
        warm, _ = land(paths.landing, texts[:args.file_size], "warmup", args.file_size)
        wait_written(paths.status, len(warm), job, 300)
        warm_n = 0 if args.quick else args.warmup or args.file_size * args.files_per_trigger
        if warm_n:
            full, _ = land(paths.landing, [texts[i % len(texts)] for i in range(warm_n)], "warmup2", args.file_size)
            warm |= full
            wait_written(paths.status, len(warm), job, 300)
        roots = [job.pid, *getattr(args, "worker_pids", [])]  # on a cluster, executors run under the workers

        def spark_cpu() -> dict[str, float]:
            parts = [cpu_seconds(root) for root in roots]
            return {kind: sum(part[kind] for part in parts) for kind in ("jvm", "python")}

        cpu = {"job": spark_cpu(), "service": cpu_seconds(server.pid)}
        ids, first = land(paths.landing, texts, "run", args.file_size)
        wait_written(paths.status, len(warm) + len(ids), job, 120 + len(texts) / 20)
        after = {"job": spark_cpu(), "service": cpu_seconds(server.pid)}
        used = {"cpu_s_spark_jvm": after["job"]["jvm"] - cpu["job"]["jvm"],
                "cpu_s_spark_python": after["job"]["python"] - cpu["job"]["python"],
                "cpu_s_service": sum(after["service"].values()) - sum(cpu["service"].values())}
        used = {key: round(value, 1) for key, value in used.items()}
        drain = emit(bench="stream", model=name, mode="pipeline", run="drain", master=args.master,
                     chunk=args.chunk, concurrency=args.concurrency, trigger_s=args.trigger_seconds,
                     file_size=args.file_size, files_per_trigger=args.files_per_trigger,
                     **output_figures(paths.output, ids, first), **used)
        if args.paced_seconds > 0:
            rate = max(1.0, drain["tweets_per_s"] * args.paced_fraction)
            per_file = max(1, int(rate * 0.5))
            paced_ids, started, n = set(), time.time(), 0
            while time.time() - started < args.paced_seconds:
                got, _ = land(paths.landing, texts[(n * per_file) % len(texts):][:per_file], f"paced{n}", per_file)
                paced_ids |= got
                n += 1
                time.sleep(max(0.0, started + n * 0.5 - time.time()))
            wait_written(paths.status, len(warm) + len(ids) + len(paced_ids), job, 120)
            emit(bench="stream", model=name, mode="pipeline", run="paced", rate_per_s=round(rate, 1),
                 **{k: v for k, v in output_figures(paths.output, paced_ids, started).items()
                    if k not in ("tweets_per_s", "seconds")})
    finally:
        job.stop(grace=60)  # SIGTERM: a clean stop
        server.stop()
    emit(bench="stream", model=name, step="job-exit", exit_code=job.proc.returncode)
    return drain


class Baseline:
    """The write-up's design: socket source + one HTTP call per row to a one-text Flask server.

    :meth:`start` brings up Flask, the feeder and the Spark app and waits for a warm-up batch (so the Python
    workers are up, as the pipeline's are after its warm-up); :meth:`measure` sends the posts and counts them."""

    def __init__(self, name: str, home: Path, model_dir: str, texts: list[str], args: argparse.Namespace) -> None:
        sys.path.insert(0, str(ROOT / "bench"))
        from stream_baseline import SocketFeeder

        from spark_apps.stream.landing import post

        self.name, self.home, self.model_dir, self.args = name, home, model_dir, args
        self.out = home / "baseline"
        self.ids = {f"base-{i}" for i in range(len(texts))}
        self.warm_ids = {f"warm-{i}" for i in range(min(20, len(texts)))}
        self.feeder = SocketFeeder(lambda: [json.dumps(post(i, texts[0])) for i in sorted(self.warm_ids)],
                                   lambda: [json.dumps(post(f"base-{i}", t)) for i, t in enumerate(texts)])
        self.flask = self.job = None

    def start(self) -> Baseline:
        from ml.processes import Process

        self.feeder.start()
        self.flask = bench_serving().baseline_server(self.model_dir).start()
        self.job = Process(spark_submit(self.args.master, str(ROOT / "bench/stream_baseline.py"), "--port",
                                        str(self.feeder.port), "--url", f"{self.flask.url}/predict", "--output",
                                        str(self.out / "output"), "--checkpoint", str(self.out / "checkpoint")),
                           cwd=ROOT, env=child_env(self.home), log=self.home / "logs" / "baseline-job.log",
                           name="baseline-job").start()
        self.job.wait_until(lambda: output_figures(self.out / "output", self.warm_ids, 0)["missing"] == 0, 300,
                            "done with its warm-up")
        return self

    def measure(self) -> dict:
        self.feeder.go()
        deadline = time.monotonic() + 120 + len(self.ids) / 5
        while time.monotonic() < deadline and self.job.running():
            if self.feeder.first_sent and output_figures(self.out / "output", self.ids, 0)["missing"] == 0:
                break
            time.sleep(1)
        return emit(bench="stream", model=self.name, mode="baseline", design="socket + one HTTP call per row (Flask)",
                    master=self.args.master, **output_figures(self.out / "output", self.ids, self.feeder.first_sent))

    def stop(self) -> None:
        for process in (self.job, self.flask):
            if process is not None:
                process.stop()
        self.feeder.close()


# ------------------------------------------------------------------------------------------------ models
def train_minilm(home: Path, data: Path, max_samples: int) -> Path:
    """Fine-tune a small MiniLM with the platform's CLI in ``home`` (prepared from the 20k sample)."""
    env = child_env(home)
    for cmd in (["data", "prepare", "--source", str(data / "sentiment140" / "trainingandtestdata-sample.zip")],
                ["train", "minilm", "--max-samples", str(max_samples), "--epochs", "1"]):
        subprocess.run([sys.executable, "-m", "ml", *cmd], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return home / "models" / "default" / "minilm"


def bench_model(name: str, settings, texts: list[str], args: argparse.Namespace, with_baseline: bool) -> None:
    from serving.package import package_model

    model = package_model(settings, name)
    emit(bench="stream", step="package", model=name, tag=model["tag"], family=model["family"])
    own = in_process(name, model["path"], texts, args.chunk)
    base = Baseline(name, settings.home, model["path"], texts[:args.baseline_n], args) if with_baseline else None
    try:
        if base is not None and args.quick:  # overlap the baseline's start-up with the pipeline's (figures are rough)
            base.start()
        run = pipeline(name, settings.home, model, texts, args)
        if base is not None:
            if not args.quick:
                base.start()
            base_run = base.measure()
    finally:
        if base is not None:
            base.stop()
    summary = {"bench": "stream", "summary": True, "model": name, "pipeline_tweets_per_s": run["tweets_per_s"],
               "in_process_tweets_per_s": own["tweets_per_s"],
               "pipeline_vs_in_process": round(run["tweets_per_s"] / own["tweets_per_s"], 3),
               "missing": run["missing"], "duplicated": run["duplicated"],
               "latency_p50_ms": run["latency_p50_ms"], "latency_p95_ms": run["latency_p95_ms"]}
    goals = {}
    if base is not None:
        speedup = run["tweets_per_s"] / base_run["tweets_per_s"] if base_run["tweets_per_s"] else None
        summary.update(baseline_tweets_per_s=base_run["tweets_per_s"], speedup_vs_baseline=round(speedup or 0, 1),
                       baseline_missing=base_run["missing"], baseline_duplicated=base_run["duplicated"])
        goals["ge_20x_baseline_exactly_once"] = bool(speedup and speedup >= 20 and run["missing"] == 0
                                                     and run["duplicated"] == 0)
    else:
        goals["ge_80pct_of_in_process"] = summary["pipeline_vs_in_process"] >= 0.8
    emit(**summary, goals=goals)


def bench_cluster(settings, texts: list[str], args: argparse.Namespace) -> None:
    """The LogisticRegression pipeline on a loopback standalone cluster of each worker count in turn."""
    from ops.cluster.engines import SparkStandalone
    from serving.package import package_model

    model = package_model(settings, "logreg")
    runs = {}
    for workers in args.spark_workers:
        if workers == 0:  # the reference: the same run on local[<cpus>], no cluster
            master = f"local[{os.cpu_count()}]"
            emit(bench="stream", step="cluster", master=master, workers=0)
            run_args = argparse.Namespace(**{**vars(args), "master": master})
            runs[workers] = pipeline("logreg-local", settings.home, model, texts, run_args)
            continue
        cluster = SparkStandalone(settings.home / f"cluster-{workers}", workers=workers, cores=args.worker_cores,
                                  memory=args.worker_memory)
        with cluster:
            emit(bench="stream", step="cluster", master=cluster.master_url, workers=workers,
                 cores_per_worker=args.worker_cores, memory_per_worker=args.worker_memory)
            workers_pids = [p.pid for name, p in cluster.processes.items() if name != "spark-master"]
            run_args = argparse.Namespace(**{**vars(args), "master": cluster.master_url, "worker_pids": workers_pids})
            runs[workers] = pipeline(f"logreg-w{workers}", settings.home, model, texts, run_args)
    first = next(n for n in args.spark_workers if n > 0) if any(args.spark_workers) else args.spark_workers[0]
    emit(bench="stream", summary="cluster", model="logreg", workers=list(runs),
         tweets_per_s={str(n): r["tweets_per_s"] for n, r in runs.items()},
         ratio_to_first={str(n): round(r["tweets_per_s"] / runs[first]["tweets_per_s"], 2) for n, r in runs.items()},
         cpu_s_spark_jvm={str(n): r["cpu_s_spark_jvm"] for n, r in runs.items()},
         cpu_s_spark_python={str(n): r["cpu_s_spark_python"] for n, r in runs.items()},
         cpu_s_service={str(n): r["cpu_s_service"] for n, r in runs.items()},
         missing=sum(r["missing"] for r in runs.values()), duplicated=sum(r["duplicated"] for r in runs.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--data", type=Path, default=ROOT.parent / "shared" / "data", help="Folder laid out like shared/data.")
    add("--quick", action="store_true", help="A small run of everything (under a minute; the tests run it).")
    add("--n", type=int, default=160_000, help="Tweets through the LogisticRegression pipeline (the 20k sample's "
                                              "tweets, again with new ids past 20,000).")
    add("--minilm-n", type=int, default=4_000, help="Tweets through the MiniLM pipeline.")
    add("--baseline-n", type=int, default=2_000, help="Tweets through the baseline.")
    add("--train-rows", type=int, default=None, help="Train the LR on this many rows (default: all).")
    add("--minilm-model", type=Path, help="A saved MiniLM predictor folder (default: fine-tune one here).")
    add("--minilm-file-size", type=int, default=125, help="Posts per landing file in the MiniLM run.")
    add("--minilm-samples", type=int, default=4_000, help="Training rows when fine-tuning the MiniLM here.")
    add("--skip-minilm", action="store_true", help="Only the LogisticRegression and the baseline.")
    add("--skip-logreg", action="store_true", help="Only the MiniLM.")
    add("--master", default="local[*]", help="Spark master of the job and the baseline (spark://host:port: an "
        "existing standalone cluster whose workers can import this repository).")
    add("--spark-workers", type=lambda v: [int(x) for x in v.split(",")], default=None, metavar="N[,N...]",
        help="Start a standalone cluster on loopback with N workers (each count in turn; 0: local[<cpus>] as the "
             "reference) and run the LogisticRegression pipeline on it; skips the baseline and the MiniLM.")
    add("--worker-cores", type=int, default=1, help="Cores of each worker started by --spark-workers.")
    add("--worker-memory", default="1g", help="Memory of each worker started by --spark-workers.")
    add("--chunk", type=int, default=1024, help="Texts per scoring call (and in-process batch).")
    add("--concurrency", type=int, default=2, help="Scoring calls in flight per partition.")
    add("--trigger-seconds", type=float, default=1.0, help="Micro-batch interval of the job.")
    add("--file-size", type=int, default=5000, help="Posts per landing file.")
    add("--files-per-trigger", type=int, default=16, help="maxFilesPerTrigger of the job.")
    add("--state-partitions", type=int, default=2, help="Shuffle/state partitions of the job.")
    add("--arrow-batch-rows", type=int, default=10_000, help="Rows per Arrow batch handed to the scorer.")
    add("--service-batch", type=int, default=1024, help="The service's adaptive batch size (SENTIMENT_MAX_BATCH_SIZE).")
    add("--service-workers", type=int, default=1, help="Service worker processes.")
    add("--warmup", type=int, default=200_000, help="LogisticRegression: posts through the job before the measured "
        "drain, so that the JVM's JIT has compiled the hot paths (a stream runs for weeks); 0: one micro-batch. "
        "The MiniLM warms up with one micro-batch.")
    add("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
        help="Extra spark-submit --conf of the job (repeatable).")
    add("--paced-fraction", type=float, default=0.5, help="Rate of the paced run, as a share of the drain's "
                                                           "tweets/s (LogisticRegression).")
    add("--minilm-paced-fraction", type=float, default=0.25,
        help="The same for the MiniLM (small micro-batches score less efficiently than the drain's big ones).")
    add("--paced-seconds", type=float, default=20.0, help="Length of the paced run (0: none).")
    add("--home", type=Path, help="Artifacts root to use (default: a temporary one, removed).")
    args = parser.parse_args()
    if args.quick:
        args.n, args.baseline_n, args.train_rows, args.skip_minilm = 300, 30, args.train_rows or 3000, True
        args.paced_seconds, args.file_size, args.chunk, args.files_per_trigger = 0, 100, 256, 8

    os.environ.update({"BENTOML_DO_NOT_TRACK": "True", "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"})
    home = args.home or Path(tempfile.mkdtemp(prefix="bench-stream-"))
    os.environ["BENTOML_HOME"] = str(home / "bentoml")
    from ml.settings import get_settings

    serving = bench_serving()
    settings = get_settings(home=home, run_id="bench")
    wanted = max(args.n, args.minilm_n, args.baseline_n)
    texts = serving.bench_texts(args.data, wanted)  # the 20k sample's tweets; cycled (new ids) past 20,000
    texts = [texts[i % len(texts)] for i in range(wanted)]
    emit(bench="stream", step="setup", cpus=os.cpu_count(), load_avg_1m=round(os.getloadavg()[0], 2),
         started_utc=datetime.now(UTC).isoformat(timespec="seconds"), quick=args.quick, home=str(home))
    try:
        if args.spark_workers:
            serving.train_logreg(args.data, settings, args.train_rows)
            bench_cluster(settings, texts[:args.n], args)
            return
        if not args.skip_logreg:
            serving.train_logreg(args.data, settings, args.train_rows)
            bench_model("logreg", settings, texts[:args.n], args, with_baseline=True)
        if not args.skip_minilm:
            source = args.minilm_model or train_minilm(home / "minilm-train", args.data, args.minilm_samples)
            shutil.copytree(source, settings.models_dir / "minilm", dirs_exist_ok=True)
            small = argparse.Namespace(**{**vars(args), "file_size": args.minilm_file_size, "warmup": 0,
                                          "paced_fraction": args.minilm_paced_fraction})
            bench_model("minilm", settings, texts[:args.minilm_n], small, with_baseline=False)
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
