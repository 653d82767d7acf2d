"""DagBag integrity: every DAG imports, is documented, tagged, and every task has retries and a timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from airflow_harness import ROOT, airflow_env

HEAVY = ("torch", "tensorflow", "keras", "transformers", "pandas", "numpy", "sklearn", "pyspark", "bentoml",
         "tweepy", "matplotlib")

# Runs in a fresh interpreter so that the import time and the loaded modules are the DAG files' own.
PROBE = r"""
import importlib.util, json, sys, time
from pathlib import Path
import airflow.sdk  # Airflow itself is not the DAG files' cost
from airflow.dag_processing.dagbag import DagBag

heavy = set(json.loads(sys.argv[2]))
before = {m.split(".")[0] for m in sys.modules}
files = {}
for path in sorted(Path(sys.argv[1]).glob("*.py")):
    spec = importlib.util.spec_from_file_location(f"probe_{path.stem}", path)
    started = time.perf_counter()
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    files[path.name] = time.perf_counter() - started
loaded = sorted({m.split(".")[0] for m in sys.modules} - before & heavy)
bag = DagBag(dag_folder=sys.argv[1])
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        "tags": sorted(dag.tags), "max_active_tasks": dag.max_active_tasks, "doc_md": dag.doc_md or "",
        "max_active_runs": dag.max_active_runs, "timetable": type(dag.timetable).__name__,
        "schedule": ([getattr(a, "name", str(a)) for a in dag.schedule] if isinstance(dag.schedule, list)
                     else getattr(dag.timetable, "summary", None) or str(dag.schedule)),
        "params": {k: dag.params.get_param(k).dump() for k in dag.params},
        "tasks": {t.task_id: {"retries": t.retries, "timeout": t.execution_timeout.total_seconds()
                              if t.execution_timeout else None, "trigger_rule": str(t.trigger_rule.value),
                              "type": type(t).__name__, "mro": [c.__name__ for c in type(t).__mro__],
                              "conn_id": getattr(t, "_conn_id", None),
                              "backoff": float(getattr(t, "retry_exponential_backoff", 0) or 0),
                              "outlets": [getattr(o, "name", str(o)) for o in t.outlets],
                              "upstream": sorted(t.upstream_task_ids),
                              "mapped": hasattr(t, "expand_input")}
                  for t in dag.tasks},
    }
print(json.dumps({"import_errors": bag.import_errors, "files": files, "heavy": loaded, "dags": dags}))
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("integrity")
    env = airflow_env(home / "sentiment", home / "airflow")
    done = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "dags"), json.dumps(HEAVY)], env=env,
                          capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


STREAM_DAGS = ("sentiment_stream", "sentiment_stream_stop", "sentiment_stream_health", "sentiment_champion_rollout",
               "sentiment_daily_report")


def test_no_import_errors(probe):
    assert probe["import_errors"] == {}
    assert {"sentiment140_training", *STREAM_DAGS} <= set(probe["dags"])


def test_every_dag_is_documented_tagged_and_every_task_retries_with_a_timeout(probe):
    for dag_id, dag in probe["dags"].items():
        assert dag["tags"], f"{dag_id} has no tags"
        assert len(dag["doc_md"]) > 200, f"{dag_id} has no real doc_md"
        for task_id, task in dag["tasks"].items():
            assert task["retries"] >= 1, f"{dag_id}.{task_id} has no retries"
            assert task["timeout"] and task["timeout"] > 0, f"{dag_id}.{task_id} has no execution_timeout"


def test_dag_files_import_fast_without_heavy_modules(probe):
    assert probe["files"], "no DAG files found"
    for name, seconds in probe["files"].items():
        assert seconds < 0.5, f"{name} takes {seconds:.2f}s to import"
    assert sum(probe["files"].values()) < 1.0, probe["files"]
    assert probe["heavy"] == [], f"DAG files import heavy modules at parse time: {probe['heavy']}"


def test_training_dag_shape(probe):
    dag = probe["dags"]["sentiment140_training"]
    tasks = dag["tasks"]
    assert tasks["train"]["mapped"], "one training task per family (dynamic task mapping)"
    assert "prepare" in tasks["train"]["upstream"]
    # a failed family does not stop evaluation of the others; finish tolerates the skipped optional build
    # (all_done: an empty, skipped student stage must not skip it; with no model at all it fails)
    assert tasks["evaluate"]["trigger_rule"] == "all_done"
    assert tasks["evaluate"]["upstream"] == ["plan", "train", "train_student", "train_teacher"]
    # GRU/LSTM distilled from a family of the run train after it, whatever its outcome, and after it alone (not
    # after the other families, which train beside the teacher)
    assert tasks["train_teacher"]["mapped"] and "prepare" in tasks["train_teacher"]["upstream"]
    assert tasks["train_student"]["mapped"] and tasks["train_student"]["trigger_rule"] == "all_done"
    assert "train_teacher" in tasks["train_student"]["upstream"] and "train" not in tasks["train_student"]["upstream"]
    # one cap for the run's three overlapping training tasks (SENTIMENT_TRAIN_PARALLELISM, default the CPU count)
    assert dag["max_active_tasks"] == (int(os.environ.get("SENTIMENT_TRAIN_PARALLELISM") or 0) or os.cpu_count())
    assert tasks["finish"]["trigger_rule"] == "none_failed"
    assert tasks["prepare"]["outlets"] == ["sentiment140_prepared"]
    assert tasks["package"]["outlets"] == ["sentiment_champion_model"]
    chain = ["download", "prepare", "train", "evaluate", "leaderboard", "select_champion", "package", "verify",
             "build_bento", "finish"]
    # the three training tasks map over the run's families grouped by what they wait for
    assert ("families", "teachers", "students") == tuple(
        next(t for t in tasks[name]["upstream"] if t in ("families", "teachers", "students"))
        for name in ("train", "train_teacher", "train_student"))
    for before, after in zip(chain, chain[1:], strict=False):
        assert before in tasks[after]["upstream"], f"{before} must run before {after}"


def test_training_params_render_a_form_from_the_family_registry(probe):
    from ml.predictor import FAMILIES
    from sentiment_platform.pipeline import DEFAULT_FAMILIES

    params = probe["dags"]["sentiment140_training"]["params"]
    assert {"families", "max_samples", "epochs", "model_name", "embeddings", "teacher", "neutral_low",
            "neutral_high", "data_url", "eval_max_samples", "build_bento"} <= set(params)
    families = params["families"]
    assert families["schema"]["items"]["enum"] == list(FAMILIES)  # grows with the registry
    assert families["value"] == list(DEFAULT_FAMILIES)
    for name, param in params.items():
        assert param["description"], f"param {name} has no description for the form"
    assert params["data_url"]["value"] is None  # the endpoint comes from the environment, not DAG code


def test_training_schedule_is_opt_in_and_backfillable(tmp_path):
    """Manual by default; ``SENTIMENT_TRAINING_SCHEDULE`` makes it periodic, which `airflow backfill` needs."""
    script = ("from airflow.dag_processing.dagbag import DagBag; import sys; "
              "dag = DagBag(dag_folder=sys.argv[1]).dags['sentiment140_training']; "
              "print(type(dag.timetable).__name__)")
    results = {}
    for schedule in ("", "@weekly"):
        env = airflow_env(tmp_path / "s", tmp_path / "a", SENTIMENT_TRAINING_SCHEDULE=schedule)
        done = subprocess.run([sys.executable, "-c", script, str(ROOT / "dags")], env=env, capture_output=True,
                              text=True, timeout=120, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-2000:]
        results[schedule] = done.stdout.strip().splitlines()[-1]
    assert results[""] == "NullTimetable"
    assert results["@weekly"] == "CronTriggerTimetable"


def test_stream_dag_shape(probe):
    dag = probe["dags"]["sentiment_stream"]
    tasks = dag["tasks"]
    assert dag["max_active_runs"] == 1  # never two launches of a stream
    chain = ["plan", "serve_champion", "service_ready", "start_ingest", "run_stream", "finish"]
    for before, after in zip(chain, chain[1:], strict=False):
        assert before in tasks[after]["upstream"], f"{before} must run before {after}"
    launch = tasks["run_stream"]
    assert "SparkSubmitOperator" in launch["mro"] and launch["conn_id"] == "spark_default"  # the provider's operator
    assert launch["retries"] == 5 and launch["backoff"] == 2.0  # restarts: capped, with exponential backoff
    assert tasks["service_ready"]["type"] == "BentoMLReadySensor"
    assert tasks["finish"]["trigger_rule"] == "all_done"
    params = dag["params"]
    assert {"source", "keywords", "replay_file", "replay_rate", "trigger_seconds", "scorer", "stream_name", "mode",
            "max_posts", "stop_when_ingest_ends"} <= set(params)
    assert params["source"]["schema"]["enum"] == ["replay", "x", "bluesky"] and params["source"]["value"] == "replay"
    assert params["scorer"]["schema"]["enum"] == ["service", "local"]
    assert {p["schema"].get("section") for p in params.values()} == {"Source", "Stream"}  # the form's sections
    for name, param in params.items():
        assert param["description"], f"param {name} has no description for the form"


def test_rollout_runs_on_the_champion_asset_and_the_report_daily(probe):
    rollout = probe["dags"]["sentiment_champion_rollout"]
    assert rollout["schedule"] == ["sentiment_champion_model"]
    assert list(rollout["tasks"]) == ["choose_model", "roll_service", "wait_for_stream"]
    report = probe["dags"]["sentiment_daily_report"]
    # a data interval per day: the run of day D starts after D ends, its logical date is D (the partition it reports)
    assert report["timetable"] == "CronDataIntervalTimetable" and report["schedule"] == "0 0 * * *"
    assert report["tasks"]["build_report"]["outlets"] == ["sentiment_daily_report"]
    assert probe["dags"]["sentiment_stream_health"]["schedule"] == "*/5 * * * *"
