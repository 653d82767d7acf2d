"""The training DAG for real: ``airflow dags test`` on a fresh migrated SQLite DB and the fixture archive, ending
with the packaged champion answering through a real ``bentoml serve``."""

from __future__ import annotations

import json
import re
import textwrap
import time

import pytest
from airflow_harness import airflow_env, asset_events, dags_test, tail

from ml.predictor import FAMILIES
from sentiment_platform.pipeline import run_id_from
from serving.launch import BentoServer

pytestmark = pytest.mark.slow
DAG_ID = "sentiment140_training"
LABELS = {"Positive", "Negative", "Neutral"}


def _record(home):
    (path,) = (home / "reports").glob("*/run.json")
    return json.loads(path.read_text())


def test_training_dag_end_to_end_then_served(airflow_home, tmp_path, s140_zip, request, monkeypatch):
    from fixtures import make_neutral_tsv

    home = tmp_path / "home"
    families = ["logreg", "multinomialnb"]
    held_out = make_neutral_tsv(tmp_path / "held_out.tsv", 30, seed=8)
    conf = {"families": families, "max_samples": None, "eval_max_samples": None, "data_url": s140_zip.as_uri(),
            "build_bento": True, "neutral_url": str(make_neutral_tsv(tmp_path / "semeval.tsv")),
            "neutral_families": ["logreg"], "extra_eval": [str(held_out)]}
    if "bert" in FAMILIES:  # the neural issue's transformer family, with a tiny randomly initialised BERT, and a
        # GRU distilled from the run's LogisticRegression (train_teacher, then train_student)
        conf.update(families=[*families, "bert", "gru"], model_name=str(request.getfixturevalue("tiny_transformer")),
                    epochs=1, teacher="logreg")
    started = time.monotonic()
    done = dags_test(airflow_env(home, airflow_home), DAG_ID, conf, log=tmp_path / "dags_test.log")
    seconds = time.monotonic() - started
    assert done.returncode == 0, tail(done.stdout + done.stderr)
    print(f"airflow dags test {DAG_ID} ({', '.join(conf['families'])}): {seconds:.0f}s")

    record = _record(home)
    run_id = record["run_id"]
    assert run_id == run_id_from(record["dag_run_id"])  # artifacts are traceable to the DAG run id
    assert record["status"] == "success" and record["failed_families"] == []
    models = [*conf["families"], "logreg-neutral"]  # the three-class job on the neutral source
    assert sorted(record["models"]) == sorted(models)
    board = json.loads((home / "reports" / run_id / "leaderboard.json").read_text())
    assert sorted(row["model"] for row in board) == sorted(models)
    assert {row["run_id"] for row in board} == {run_id}
    for family in conf["families"]:
        meta = json.loads((home / "models" / run_id / family / "predictor.json").read_text())
        assert meta["run_id"] == run_id and meta["data_version"] == record["data_version"]
    neutral = json.loads((home / "models" / run_id / "logreg-neutral" / "predictor.json").read_text())
    assert neutral["dataset"] == "neutral" and neutral["data_version"] == record["data_versions"]["neutral"]
    assert neutral["labels"] == ["negative", "neutral", "positive"] and neutral["fit"]["class_weights"]
    assert all(set(row["extra"]) == {"held_out"} for row in board)
    assert record["champion"] == "logreg-neutral"  # the default rule: the three-class model, served by argmax
    assert (home / "reports" / run_id / "leaderboard.md").is_file()
    if "gru" in conf["families"]:
        meta = json.loads((home / "models" / run_id / "gru" / "predictor.json").read_text())
        assert meta["fit"]["teacher"]["family"] == "logreg" and meta["params"]["teacher"].endswith("/logreg")
        assert next(row for row in board if row["model"] == "gru")["teacher"] == "logreg:logreg"
    name, version = record["bento_tag"].split(":")
    assert (home / "bentoml" / "bentos" / name / version / "bento.yaml").is_file()  # the optional `bentoml build`

    prepared = asset_events(airflow_home, "sentiment140_prepared")[-1]
    assert prepared["data_version"] == record["data_version"] and prepared["run_id"] == run_id
    assert prepared["data_versions"] == record["data_versions"]
    champion_event = asset_events(airflow_home, "sentiment_champion_model")[-1]
    assert champion_event["tag"] == record["model_tag"] and champion_event["run_id"] == run_id
    assert champion_event["model"] == record["champion"]

    # the packaged champion answers through a real `bentoml serve`, reached with the platform's hook
    from sentiment_platform.hooks import BentoMLHook
    from sentiment_platform.sensors import BentoMLReadySensor

    assert record["verified"]["tag"] == record["model_tag"]  # the DAG's own smoke check served it over HTTP
    env = {"BENTOML_HOME": str(home / "bentoml"), "SENTIMENT_MODEL_TAG": record["model_tag"],
           "SENTIMENT_API_KEY": None, "SENTIMENT_HOME": None}
    with BentoServer(env=env, ready_timeout=180) as server:
        monkeypatch.setenv("AIRFLOW_CONN_BENTOML_DEFAULT", server.url)
        hook = BentoMLHook(timeout=30)
        hook.wait_until_ready(timeout=30)
        assert BentoMLReadySensor(task_id="ready").poke({}) is True
        answers = hook.classify(["I love this so much", "I hate this so much", "what a great day"])
    assert len(answers) == 3
    assert {a["label"] for a in answers} <= LABELS
    assert {a["model"] for a in answers} == {record["model_tag"]}
    if record["champion"] in ("logreg", "multinomialnb", "logreg-neutral"):  # a real model of the fixture's clear examples
        assert [a["label"] for a in answers] == ["Positive", "Negative", "Positive"]


BROKEN_FAMILY = '''
from ml.errors import ModelError
from ml.models.classical import LogRegPredictor


class BrokenPredictor(LogRegPredictor):
    family = "broken"

    def fit(self, *args, **kwargs):
        raise ModelError("injected failure: this family cannot train")
'''


def test_a_failed_family_keeps_the_others(airflow_home, tmp_path, s140_zip):
    """One family fails (a test-only family registered at interpreter start): the others are evaluated and the
    champion packaged; a GRU distilled from it fails naming it; the run fails and says which families; the
    deterministic errors are not retried."""
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "broken_family.py").write_text(textwrap.dedent(BROKEN_FAMILY))
    (inject / "sitecustomize.py").write_text(
        "from ml.predictor import FAMILIES\nFAMILIES['broken'] = 'broken_family:BrokenPredictor'\n")
    home = tmp_path / "home"
    env = airflow_env(home, airflow_home, PYTHONPATH=str(inject))
    # the broken family is also the teacher of a GRU: the student runs after it (all_done) and fails, naming it
    conf = {"families": ["logreg", "broken", "gru"], "teacher": "broken", "max_samples": None,
            "data_url": s140_zip.as_uri()}
    done = dags_test(env, DAG_ID, conf, log=tmp_path / "dags_test.log")
    output = done.stdout + done.stderr
    assert done.returncode != 0, tail(output)  # the run is marked failed ...

    record = _record(home)
    assert record["status"] == "failed" and record["failed_families"] == ["broken", "gru"]
    assert record["champion"] == "logreg" and record["model_tag"].startswith("tweet-sentiment:")  # ... but served
    board = json.loads((home / "reports" / record["run_id"] / "leaderboard.json").read_text())
    assert [row["model"] for row in board] == ["logreg"]
    assert (home / "models" / record["run_id"] / "logreg" / "predictor.json").is_file()
    (failure,) = [f for f in record["failures"] if f["task_id"] == "train_teacher"]
    assert failure["family"] == "broken" and "injected failure" in failure["error"]
    (student,) = [f for f in record["failures"] if f["task_id"] == "train_student"]
    assert student["family"] == "gru" and "distils from this run's broken, which saved no model" in student["error"]
    starts = re.findall(r"\[DAG TEST\] starting task_id=(train\w*)\b", output)
    assert sorted(starts) == ["train", "train_student", "train_teacher"], "a deterministic error was retried"


HOLD_BACK_INDEPENDENT = """
import os

import airflow.sdk.definitions.dag as dag_module

_run_task, _held = dag_module._run_task, []


def _students_unfinished(ti):
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import State

    with create_session() as session:
        states = session.query(TaskInstance.state).filter(
            TaskInstance.dag_id == ti.dag_id, TaskInstance.run_id == ti.run_id,
            TaskInstance.task_id == "train_student").all()
    return not states or any(state not in State.finished for (state,) in states)


def _holding_run_task(*, ti, task, run_triggerer=False):
    # An independent family is held back while a student has not finished (at most 40 times, so a DAG whose
    # students waited for it still ends): the scheduler's own dependency checks decide when the student may run.
    if ti.task_id == "train" and len(_held) < 40 and _students_unfinished(ti):
        _held.append(ti.map_index)
        with open(os.environ["HELD_LOG"], "a") as log:
            log.write(f"held train[{ti.map_index}]\\n")
        return None
    return _run_task(ti=ti, task=task, run_triggerer=run_triggerer)


dag_module._run_task = _holding_run_task
"""


def test_a_student_waits_for_its_teacher_alone(airflow_home, tmp_path, s140_zip):
    """Airflow's own scheduling decisions let the student run while an independent family has not even started:
    ``airflow dags test`` runs with the independent family held back until the student finishes (the student
    could never start before it if it waited for every family). Its start and end times in the metadata DB say
    the same."""
    import sqlite3

    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(HOLD_BACK_INDEPENDENT)
    home, held_log = tmp_path / "home", tmp_path / "held.log"
    env = airflow_env(home, airflow_home, PYTHONPATH=str(inject), HELD_LOG=str(held_log))
    conf = {"families": ["logreg", "multinomialnb", "gru"], "teacher": "logreg", "epochs": 1, "max_samples": None,
            "data_url": s140_zip.as_uri()}
    done = dags_test(env, DAG_ID, conf, log=tmp_path / "dags_test.log")
    assert done.returncode == 0, tail(done.stdout + done.stderr)
    assert held_log.is_file() and "held train[" in held_log.read_text()      # the hold really happened

    run_id = _record(home)["dag_run_id"]
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        rows = db.execute("SELECT task_id, map_index, state, start_date, end_date FROM task_instance "
                          "WHERE dag_id = ? AND run_id = ? AND task_id LIKE 'train%'", (DAG_ID, run_id)).fetchall()
    times = {(task, index): (state, start, end) for task, index, state, start, end in rows}
    assert {state for state, _, _ in times.values()} == {"success"}, times
    (teacher,) = [v for (task, _), v in times.items() if task == "train_teacher"]
    (student,) = [v for (task, _), v in times.items() if task == "train_student"]
    (independent,) = [v for (task, _), v in times.items() if task == "train"]
    assert teacher[2] <= student[1]                                  # the student follows its teacher ...
    assert student[2] <= independent[1], times                       # ... and ends before the other family starts


def test_data_that_fails_to_prepare_fails_the_run_without_training(airflow_home, tmp_path):
    """The archive downloads but its CSV has the wrong shape: prepare fails at once, nothing trains, the student
    task (all_done) skips itself rather than run without data, evaluation says the run saved no model, and the
    run is failed."""
    from fixtures import make_s140_zip

    bad = make_s140_zip(tmp_path / "zips" / "trainingandtestdata.zip", train_bytes=b'"only","three","columns"\n' * 50)
    home = tmp_path / "home"
    conf = {"families": ["logreg", "gru"], "teacher": "logreg", "data_url": bad.as_uri()}
    done = dags_test(airflow_env(home, airflow_home), DAG_ID, conf, log=tmp_path / "dags_test.log")
    output = done.stdout + done.stderr
    assert done.returncode != 0, tail(output)

    record = _record(home)
    failed = [f["task_id"] for f in record["failures"]]
    assert failed == ["prepare", "evaluate"], record["failures"]
    assert "saved no model" in record["failures"][1]["error"]
    models = home / "models" / record["run_id"]
    assert not models.exists() or not any(models.iterdir())
    started = re.findall(r"\[DAG TEST\] starting task_id=(\w+)", output)
    assert sorted(started) == sorted(["plan", "download", "families", "teachers", "students", "prepare",
                                      "train_student", "evaluate"]), started
    # train and train_teacher: upstream_failed; prepare: not retried
    assert "reason='the data was not prepared (see the prepare task)'" in output  # the student skipped itself


def test_a_plan_that_refuses_its_params_fails_the_run_alone(airflow_home, tmp_path, s140_zip):
    """A param the plan refuses (a word-vector file that is not there) fails the run at once: nothing downloads
    or trains, and evaluate (all_done) skips itself instead of failing on the missing plan."""
    home = tmp_path / "home"
    conf = {"families": ["logreg", "gru"], "embeddings": str(tmp_path / "no-glove.txt"), "data_url": s140_zip.as_uri()}
    done = dags_test(airflow_env(home, airflow_home), DAG_ID, conf, log=tmp_path / "dags_test.log")
    output = done.stdout + done.stderr
    assert done.returncode != 0, tail(output)
    started = re.findall(r"\[DAG TEST\] starting task_id=(\w+)", output)
    assert started == ["plan", "evaluate"], started                      # plan is not retried either
    assert "not 'minilm' nor a word-vector file" in output
    assert "reason='the run has no plan (see the plan task)'" in output and "TypeError" not in output
