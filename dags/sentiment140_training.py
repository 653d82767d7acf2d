"""
### Sentiment140 training

Downloads Sentiment140, prepares one validated train/validation/test split, trains **one task per model
family** (in parallel, up to `SENTIMENT_TRAIN_PARALLELISM` tasks of the run at a time, default: the CPU count),
scores every model on the same data, picks the champion and packages it into the BentoML model store;
`bentoml build` is optional.

`plan → download → prepare → train[family] (one mapped task per family) → evaluate → leaderboard →
select_champion → package → verify → build_bento (optional) → finish`; with a `teacher` of the run:
`prepare → train_teacher[family] → train_student[gru, lstm] → evaluate`, beside the other families.

**Trigger form.** Pick the families (the classical three are the default and take minutes on two CPU cores;
`gru`, `lstm` and the transformers `bert`, `roberta`, `minilm` take much longer on a CPU; `minilm` works offline,
`bert`/`roberta` need their checkpoint in the local Hugging Face cache, the network, or a local folder as
`model_name`), the training sample size, epochs, the transformer checkpoint, the Neutral band and the data URL
(empty: the workers' `SENTIMENT140_URL`, else the official archive; a `file://` URL or a local path works offline).

**The write-up's full settings** are one conf away (every family, all 1.28M training rows, the whole validation
split, each family's default epochs):
`{"families": ["logreg", "linearsvc", "multinomialnb", "gru", "lstm", "bert", "roberta", "minilm"],
"max_samples": null, "eval_max_samples": null}`.

**Distilled GRU/LSTM.** Set `teacher` to one of the run's families (say `minilm`): the run trains it
(`train_teacher`) beside the other families, and as soon as it is done (not waiting for the others) trains its GRU
and LSTM (`train_student`) on that model's probabilities for the training tweets, which makes them beat
LogisticRegression on small data. A saved model folder of an earlier run works as well (then everything trains
at once). Other families ignore it; a run without GRU or LSTM refuses it.

**Three classes.** Given a neutral-labelled source (`neutral_url`, or the workers' `SENTIMENT_NEUTRAL_URL`: a
labelled CSV/TSV such as SemEval's, or a TweetEval `train_text.txt`), the run also prepares it as the dataset
`neutral` and trains `neutral_families` on it (`<family>-neutral`), with class weights for its imbalanced classes
(`class_weight`); with `transfer` their transformers and GRU/LSTM start from this run's Sentiment140 model of the same
family. `extra_eval` scores every model on external labelled sets; `champion_rule` (default: the best three-class
model by macro recall, when there is one) picks the model to ship.

**Where results go.** Everything a run writes is keyed by its run id (sanitised to `[A-Za-z0-9._-]`):
`$SENTIMENT_HOME/models/<run>/<family>/`, `$SENTIMENT_HOME/reports/<run>/leaderboard.{json,md,png}` and
`run.json` (the run's params, data version, champion, model tag and outcome). The prepared data is shared by
all runs and versioned by its content hash (`data/processed/manifest.json`).

**Verify.** After packaging, `verify` serves the packaged champion with a real `bentoml serve` on a free loopback
port and classifies a few tweets over HTTP through the BentoML hook: a model that packages but does not answer
fails the run before anything rolls it out.

**Failures.** A family that fails does not stop the others: evaluation, champion selection and packaging use the
models that trained, then the `finish` task fails the run to make the missing family visible. Errors in the
input (unknown family, bad data, invalid settings) fail at once without retries. Every task is idempotent, so
any task can be cleared and re-run.

**Assets.** `prepare` updates `sentiment140_prepared` and `package` updates `sentiment_champion_model`; their
events carry the data version, the run id and the model tag; `sentiment_champion_rollout` is scheduled on the
champion's and rolls the service (and so the running stream) to the new model.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task

from ml.predictor import FAMILIES
from ml.settings import get_settings
from sentiment_platform.assets import CHAMPION_MODEL, PREPARED_DATA
from sentiment_platform.pipeline import DEFAULT_FAMILIES
from sentiment_platform.tasks import fail_fast, record_failure_callback

DAG_ID = "sentiment140_training"

TRAINING = get_settings().training
#: Tasks of a run at once (families training at once; each classical family uses one core, neural ones all).
TRAIN_PARALLELISM = TRAINING.parallelism or max(1, os.cpu_count() or 1)

PARAMS = {
    "families": Param(
        list(DEFAULT_FAMILIES), type="array", items={"type": "string", "enum": list(FAMILIES)},
        examples=list(FAMILIES), uniqueItems=True, minItems=1, title="Model families",
        description="One training task per family, in parallel. The classical three train in minutes on two "
                    "cores; neural families take much longer on a CPU.",
        section="Models",
    ),
    "max_samples": Param(
        50_000, type=["null", "integer"], minimum=10, title="Training sample size",
        description="Train each family on a seeded, stratified sample of this many rows; empty: the whole "
                    "training split (1.28M rows for the real data).",
        section="Models",
    ),
    "epochs": Param(
        None, type=["null", "integer"], minimum=1, title="Epochs (neural families)",
        description="Empty: each neural family's default. Classical families ignore it.", section="Models",
    ),
    "model_name": Param(
        None, type=["null", "string"], title="Transformer checkpoint",
        description="A Hugging Face model name or a local folder for the transformer families; empty: each "
                    "family's default. Offline machines need a local folder or a warm cache.",
        section="Models",
    ),
    "embeddings": Param(
        None, type=["null", "string"], title="Word vectors for GRU/LSTM",
        description="Start the GRU/LSTM embedding from pretrained vectors: minilm (offline, the shipped MiniLM's "
                    "word pieces) or a GloVe/word2vec text file on this machine (e.g. glove.twitter.27B.200d.txt). "
                    "Empty: random initialisation, as in the write-up.",
        section="Models",
    ),
    "teacher": Param(
        None, type=["null", "string"], title="Teacher for GRU/LSTM",
        description="A family of this run (e.g. minilm, trained first) or a saved model folder (e.g. "
                    "$SENTIMENT_HOME/models/<earlier run>/minilm): GRU and LSTM learn from its probabilities "
                    "(knowledge distillation) instead of the labels alone. Empty: labels only.",
        section="Models",
    ),
    "eval_max_samples": Param(
        20_000, type=["null", "integer"], minimum=10, title="Validation sample size",
        description="Score on a stratified sample of the validation split; empty: all of it. The official test "
                    "file is always scored in full.",
        section="Evaluation",
    ),
    "neutral_low": Param(0.4, type="number", minimum=0, maximum=1, title="Neutral band: low",
                         description="A binary model's P(positive) in [low, high] means Neutral.",
                         section="Evaluation"),
    "neutral_high": Param(0.6, type="number", minimum=0, maximum=1, title="Neutral band: high",
                          description="Must not be below the low edge.", section="Evaluation"),
    "extra_eval": Param(
        [], type="array", items={"type": "string"}, title="External test sets",
        description="Also score every model on these labelled sets (URLs or paths on the workers, NAME=REF to name "
                    "one): CSV/TSV, a TweetEval <split>_text.txt with its labels and mapping.txt beside it, or a "
                    "Sentiment140 zip (its test file). One column group per set on the leaderboard.",
        section="Evaluation",
    ),
    "champion_rule": Param(
        None, type=["null", "string"], enum=[None, "three-class", "transformer", "accuracy"], title="Champion rule",
        description="three-class: the best three-class model by validation macro recall, when the run has one; "
                    "transformer: the best transformer by validation accuracy; accuracy: the best validation "
                    "accuracy. Empty: $SENTIMENT_CHAMPION_RULE, else three-class.",
        section="Evaluation",
    ),
    "neutral_url": Param(
        None, type=["null", "string"], title="Neutral-labelled data URL",
        description="A three-class training source (URL or path): a labelled CSV/TSV (SemEval's id<TAB>label<TAB>"
                    "text) or a TweetEval train_text.txt. Empty: $SENTIMENT_NEUTRAL_URL, else none.",
        section="Three classes",
    ),
    "neutral_families": Param(
        None, type=["null", "array"], items={"type": "string", "enum": list(FAMILIES)}, title="Three-class families",
        description="Families trained on the neutral data (one task each, <family>-neutral). Empty: the classical "
                    "three when there is a neutral source.",
        section="Three classes",
    ),
    "transfer": Param(
        False, type="boolean", title="Transfer from Sentiment140",
        description="Three-class transformers and GRU/LSTM start from this run's Sentiment140 model of their "
                    "family (its encoder, a new three-class head); the family must be among the families too.",
        section="Three classes",
    ),
    "class_weight": Param(
        None, type=["null", "string"], enum=[None, "auto", "balanced", "none"], title="Class weights",
        description="balanced, none, or auto (balanced for imbalanced three-class data, none for Sentiment140). "
                    "Empty: $SENTIMENT_CLASS_WEIGHT, else auto.",
        section="Three classes",
    ),
    "class_priors": Param(
        None, type=["null", "string"], enum=[None, "auto", "none"], title="Tuned class priors",
        description="auto: tune each three-class model's class priors on the validation split for macro recall "
                    "(saved with the model); none: its own probabilities. Empty: $SENTIMENT_CLASS_PRIORS, else auto.",
        section="Three classes",
    ),
    "data_url": Param(
        None, type=["null", "string"], title="Data URL",
        description="Sentiment140 archive: http(s)://, file:// or a local path on the workers. Empty: "
                    "$SENTIMENT140_URL, else the official Stanford URL.",
        section="Data",
    ),
    "build_bento": Param(False, type="boolean", title="Build a Bento",
                         description="Also run `bentoml build` around the packaged champion.",
                         section="Packaging"),
}

DEFAULT_ARGS = {
    "owner": "sentiment",
    "retries": 1,
    "retry_delay": timedelta(seconds=30),
    "execution_timeout": timedelta(minutes=30),
}


@dag(
    dag_id=DAG_ID,
    dag_display_name="Sentiment140 training",
    description="Download, prepare, train every family, evaluate, package the champion into BentoML.",
    doc_md=__doc__,
    schedule=TRAINING.schedule,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,  # runs share data/processed: one at a time
    max_active_tasks=TRAIN_PARALLELISM,
    tags=["sentiment", "training", "bentoml"],
    params=PARAMS,
    default_args={**DEFAULT_ARGS, "on_failure_callback": record_failure_callback},
)
def sentiment140_training():
    @task(execution_timeout=timedelta(minutes=2))
    @fail_fast
    def plan() -> dict:
        """Validate the params once and fix the run's folder (from the DAG run id)."""
        from sentiment_platform.pipeline import plan_run

        context = get_current_context()
        return plan_run(dict(context["params"]), context["run_id"], dag_id=DAG_ID)

    # Airflow maps only over a task's whole return value (not over one key of it), hence one small task per group,
    # all three from this one definition: `families` (wait only for the data; one mapped `train` task each),
    # `teachers` (the family `teacher` names when this run trains it; `train_teacher`) and `students` (GRU/LSTM
    # distilling from it; `train_student`)
    @task(execution_timeout=timedelta(minutes=1))
    def group(plan: dict, name: str) -> list[str]:
        """The run's families in one group: independent, teachers or students."""
        from sentiment_platform.pipeline import plan_groups

        return plan_groups(plan)[name]

    @task(retries=3, retry_delay=timedelta(minutes=1), execution_timeout=timedelta(hours=1))
    def download(plan: dict) -> dict:
        """Download and verify the archive, and fetch the neutral source (resumes, retries; no-ops when present)."""
        from sentiment_platform.pipeline import fetch_data

        return fetch_data(plan)

    @task(outlets=[PREPARED_DATA], execution_timeout=timedelta(hours=1))
    @fail_fast
    def prepare(plan: dict, fetched: dict) -> dict:
        """Parse, validate, deduplicate and split Sentiment140 and the neutral source (no-ops when already prepared)."""
        from sentiment_platform.pipeline import prepare_data

        data = prepare_data(plan, fetched["archive"], fetched.get("neutral"))
        get_current_context()["outlet_events"][PREPARED_DATA].extra = {
            "data_version": data["data_version"], "data_versions": data["data_versions"], "rows": data["rows"],
            "run_id": plan["run_id"], "processed_dir": data["processed_dir"],
        }
        return data

    @task(map_index_template="{{ family }}", execution_timeout=timedelta(hours=TRAINING.timeout_hours))
    @fail_fast
    def train(plan: dict, data: dict | None, family: str) -> dict:
        """Train one job (a family, or <family>-neutral); its model replaces any earlier one of this run."""
        from airflow.sdk.exceptions import AirflowSkipException

        from sentiment_platform.pipeline import train_family

        get_current_context()["family"] = family  # names the mapped task in the UI
        if data is None:  # only a student (all_done) gets here without data: prepare failed, which fails the run
            raise AirflowSkipException("the data was not prepared (see the prepare task)")
        return train_family(plan, family, data.get("data_versions") or data["data_version"])

    # all_done: the teacher and student tasks are empty (skipped) in most runs, and Airflow's
    # all_done_min_one_success would skip evaluation with them; a run that saved no model fails here instead
    # (evaluate_run raises).
    @task(trigger_rule="all_done", execution_timeout=timedelta(hours=2))
    @fail_fast
    def evaluate(plan: dict | None) -> list[dict]:
        """Score every model this run saved (a failed family is simply absent) and write the leaderboard."""
        from airflow.sdk.exceptions import AirflowSkipException

        from sentiment_platform.pipeline import evaluate_run

        if plan is None:  # all_done runs it after a failed plan too: that failure already fails the run
            raise AirflowSkipException("the run has no plan (see the plan task)")
        return evaluate_run(plan)

    @task(execution_timeout=timedelta(minutes=5))
    @fail_fast
    def leaderboard(plan: dict) -> dict:
        """Read back the leaderboard files and log the table."""
        from sentiment_platform.pipeline import read_leaderboard

        return read_leaderboard(plan)

    @task(execution_timeout=timedelta(minutes=5))
    @fail_fast
    def select_champion(plan: dict, board: dict) -> dict:
        """Pick the model to serve (the run's champion rule)."""
        from sentiment_platform.pipeline import choose_champion

        return choose_champion(board["rows"], plan)

    @task(outlets=[CHAMPION_MODEL], execution_timeout=timedelta(minutes=30))
    @fail_fast
    def package(plan: dict, champion: dict) -> dict:
        """Put the champion into the BentoML model store (BENTOML_HOME)."""
        from sentiment_platform.pipeline import package_champion

        packaged = package_champion(plan, champion)
        get_current_context()["outlet_events"][CHAMPION_MODEL].extra = {
            "tag": str(packaged.get("tag")), "model": champion.get("model"), "family": champion.get("family"),
            "run_id": plan["run_id"], "data_version": champion.get("data_version"),
        }
        return packaged

    @task(execution_timeout=timedelta(minutes=10))
    @fail_fast
    def verify(plan: dict, packaged: dict) -> dict:
        """Smoke check: serve the packaged champion with a real `bentoml serve` on a free loopback port and
        classify a few tweets over HTTP through the BentoML hook."""
        from sentiment_platform.pipeline import verify_champion

        return verify_champion(plan, packaged)

    @task.run_if(lambda context: bool(context["params"].get("build_bento")), skip_message="build_bento is off")
    @task(execution_timeout=timedelta(minutes=30))
    @fail_fast
    def build_bento(plan: dict) -> str:
        """`bentoml build` the service with the packaged champion."""
        from sentiment_platform.pipeline import build_bento as build

        return build(plan)

    @task(trigger_rule="none_failed", execution_timeout=timedelta(minutes=2))
    @fail_fast
    def finish(plan: dict) -> dict:
        """Close the run's record; fail the run if a requested family has no model."""
        from sentiment_platform.pipeline import finish_run

        return finish_run(plan)

    the_plan = plan()
    data = prepare(the_plan, download(the_plan))
    trained = train.partial(plan=the_plan, data=data).expand(
        family=group.override(task_id="families")(the_plan, "independent"))
    # priority: the teacher takes the first free slot (students wait for it) when the run has more families than
    # SENTIMENT_TRAIN_PARALLELISM, also after a retry delay
    taught = train.override(task_id="train_teacher", priority_weight=100).partial(plan=the_plan, data=data).expand(
        family=group.override(task_id="teachers")(the_plan, "teachers"))
    # Students wait for their teacher alone (not for a slow unrelated family), whatever its outcome: without its
    # model they fail, naming it.
    distilled = train.override(task_id="train_student", trigger_rule=TriggerRule.ALL_DONE).partial(
        plan=the_plan, data=data).expand(family=group.override(task_id="students")(the_plan, "students"))
    scored = evaluate(the_plan)
    taught >> distilled
    [trained, taught, distilled] >> scored
    board = leaderboard(the_plan)
    scored >> board
    packaged = package(the_plan, select_champion(the_plan, board))
    bento = build_bento(the_plan)
    verify(the_plan, packaged) >> bento >> finish(the_plan)


sentiment140_training()
