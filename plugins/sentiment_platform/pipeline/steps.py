"""The training pipeline's steps: what each task of the training DAG calls, runnable without Airflow.

Each step takes the run's *plan* (see :mod:`sentiment_platform.pipeline.plan`) plus the values of earlier steps,
calls one function of :mod:`ml` or :mod:`serving`, and returns a small JSON-able dict, so an orchestrator can pass
results between processes. Every step is idempotent: re-running it rewrites the same files of the same run folder
(``models/<run_id>/``, ``reports/<run_id>/``).

Driving it by hand::

    plan = plan_run({"families": ["logreg"], "max_samples": 20000}, "manual_try")
    fetched = fetch_data(plan)
    data = prepare_data(plan, fetched["archive"], fetched["neutral"])
    train_family(plan, "logreg", data["data_versions"])
    rows = evaluate_run(plan)
    champion = choose_champion(rows, plan)
    package_champion(plan, champion)
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.errors import DataError, ModelError
from ml.settings.sections import DEFAULT_DATASET, NEUTRAL_DATASET
from sentiment_platform.pipeline.plan import job_of, plan_groups, settings_for
from sentiment_platform.pipeline.record import RUN_RECORD, now, update_record

if TYPE_CHECKING:
    from ml.settings import Settings

log = logging.getLogger(__name__)


def fetch_data(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Download and verify the run's data archive into the shared ``data/raw`` (a no-op when already valid), and
    fetch the neutral-labelled source when the run has one (``neutral``: its local path, else ``None``)."""
    from ml.data.fetch import fetch_source
    from ml.download import download

    settings = settings_for(plan)
    path = download(settings.data.url, settings.raw_dir, retries=settings.data.download_retries, progress=False)
    sha = path.with_name(path.name + ".sha256").read_text().split()[0]  # download() always writes the sidecar
    neutral = None
    if plan.get("neutral_families"):
        neutral = str(fetch_source(settings.data.neutral_url, settings.raw_dir,
                                   retries=settings.data.download_retries))
    return {"archive": str(path), "sha256": sha, "data_url": settings.data.url, "neutral": neutral}


def prepare_data(plan: Mapping[str, Any], archive: str | os.PathLike[str],
                 neutral: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Prepare the shared splits from ``archive`` (the dataset ``default``) and, given, from the ``neutral``
    source (the dataset ``neutral``); each is a no-op when that source is already prepared.

    Returns ``data_version`` (Sentiment140's) and ``data_versions`` (by dataset), which the training steps check.
    """
    from ml.data import prepare

    settings = settings_for(plan)
    manifest = prepare(settings, Path(archive))
    versions = {DEFAULT_DATASET: manifest["data_version"]}
    rows = {DEFAULT_DATASET: manifest["rows"]}
    if neutral:
        neutral_manifest = prepare(settings.override(dataset=NEUTRAL_DATASET), Path(neutral))
        versions[NEUTRAL_DATASET] = neutral_manifest["data_version"]
        rows[NEUTRAL_DATASET] = neutral_manifest["rows"]
    update_record(settings, {"data_version": manifest["data_version"], "rows": manifest["rows"],
                             "data_versions": versions})
    return {"data_version": manifest["data_version"], "data_versions": versions, "rows": manifest["rows"],
            "rows_by_dataset": rows, "labels": manifest["labels"], "processed_dir": str(settings.processed_dir),
            "archive": str(archive)}


def check_data_version(settings: Settings, expected: str | None) -> None:
    """Raise :class:`DataError` unless the prepared splits (of ``settings.data.dataset``) are still the version
    this run prepared.

    The splits are shared by all runs; another run preparing a different archive in between would otherwise
    make this run's models silently train on other data.
    """
    from ml.data import read_manifest

    current = read_manifest(settings)["data_version"]
    if expected and current != expected:
        raise DataError(f"the prepared data changed during this run (now {current}, this run prepared "
                        f"{expected}); re-run the run's prepare task, then its training tasks")


def train_family(plan: Mapping[str, Any], job: str,
                 data_version: str | Mapping[str, str] | None = None) -> dict[str, Any]:
    """Train one job of the run (a family on Sentiment140, or ``<family>-neutral`` on the neutral data); the model
    replaces any earlier one at ``models/<run_id>/<job>``.

    ``data_version``: the version this run prepared (of Sentiment140), or the versions by dataset
    (:func:`prepare_data`'s ``data_versions``).
    """
    from ml.training import distils, takes_word_vectors, train

    spec = job_of(plan, job)
    family, dataset = spec["family"], spec["dataset"]
    settings = settings_for(plan)
    if dataset != settings.data.dataset:
        settings = settings.override(dataset=dataset)
    if isinstance(data_version, Mapping):
        expected = data_version.get(dataset)
    else:  # one version: Sentiment140's
        expected = data_version if dataset == DEFAULT_DATASET else None
    check_data_version(settings, expected)
    options = dict(plan.get("train", {}))
    students = plan_groups(plan)["students"]
    if not takes_word_vectors(family):  # word vectors are for GRU and LSTM
        options.pop("embeddings", None)
    if dataset != DEFAULT_DATASET or not distils(family) or (students and job not in students):
        options.pop("teacher", None)  # the teacher is for the run's Sentiment140 students
    elif job in students:
        _check_model_of_run(settings, job, options["teacher"], expected, "distils from")
    if spec.get("init_from"):
        source_settings = settings.override(dataset=DEFAULT_DATASET)
        versions = data_version if isinstance(data_version, Mapping) else {}
        _check_model_of_run(source_settings, job, spec["init_from"], versions.get(DEFAULT_DATASET), "starts from")
        options["init_from"] = str(source_settings.models_dir / spec["init_from"])
    result = train(family, settings, name=job, **options)
    return {k: result[k] for k in ("name", "family", "run_id", "data_version", "n_train", "train_seconds", "path")
            if k in result} | {"dataset": dataset}


def _check_model_of_run(settings: Settings, job: str, source: str, data_version: str | None, how: str) -> None:
    """A model of this run that ``job`` needs (its teacher, or the model it starts from) must have saved a model,
    on this run's data (not a stale one)."""
    from ml.predictor import META_FILE, read_meta

    path = settings.models_dir / source
    if not (path / META_FILE).is_file():
        raise ModelError(f"{job} {how} this run's {source}, which saved no model (its train task "
                         "failed); retry that task, then this one")
    saved = read_meta(path).get("data_version")
    if data_version and saved != data_version:
        raise ModelError(f"{job} {how} this run's {source}, whose model was trained on data version "
                         f"{saved}, not this run's {data_version} (a stale model: its train task failed this "
                         "time?); retry that task, then this one")


def evaluate_run(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Score every model the run saved (the families that failed are simply absent); write the leaderboard."""
    from ml.evaluate import evaluate
    from ml.training import trained_models

    settings = settings_for(plan)
    if not trained_models(settings):
        raise ModelError(f"run {settings.training.run_id} saved no model: every family failed to train, or the data was "
                         "not prepared (see the failed tasks before this one)")
    return evaluate(settings, max_samples=plan.get("eval_max_samples"), extra=plan.get("extra_eval") or ())


def read_leaderboard(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The run's leaderboard: its rows (best first) and where its files are."""
    from ml.champion import read_leaderboard as read_rows

    settings = settings_for(plan)
    rows = read_rows(settings)
    if not rows:
        raise ModelError(f"{settings.reports_dir / 'leaderboard.json'} lists no models")
    md = settings.reports_dir / "leaderboard.md"
    log.info("leaderboard of run %s:\n%s", settings.training.run_id, md.read_text() if md.is_file() else rows)
    return {"rows": rows, "json": str(settings.reports_dir / "leaderboard.json"), "markdown": str(md),
            "png": str(settings.reports_dir / "leaderboard.png")}


def choose_champion(rows: list[dict[str, Any]], plan: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The leaderboard row of the model to serve, by the run's champion rule (``champion_rule``, else
    ``SENTIMENT_CHAMPION_RULE``; see :func:`ml.champion.select_champion`)."""
    from ml.champion import select_champion

    if plan is not None:
        rule = settings_for(plan).training.champion_rule
    else:
        from ml.settings import get_settings

        rule = get_settings().training.champion_rule
    champion = select_champion(rows, rule)
    log.info("champion (rule %s): %s", rule, champion.get("model"))
    return champion


def package_champion(plan: Mapping[str, Any], champion: Mapping[str, Any]) -> dict[str, Any]:
    """Put the champion into the BentoML model store; return the package facts (``tag``, ...)."""
    from serving.package import package_model

    settings = settings_for(plan)
    packaged = _already_packaged(settings, champion["model"]) or package_model(settings, model=champion["model"])
    update_record(settings, {"champion": champion["model"], "model_tag": str(packaged["tag"])})
    return json.loads(json.dumps(packaged, default=str))


def _already_packaged(settings: Settings, model: str) -> dict[str, Any] | None:
    """The store entry of this run's ``model`` if this very training of it was packaged already (a re-run)."""
    from bentoml.exceptions import NotFound

    from ml.predictor import read_meta
    from serving import MODEL_NAME
    from serving.package import model_store

    trained_at = read_meta(settings.models_dir / model).get("trained_at")
    try:
        stored_models = model_store(settings).list(MODEL_NAME)
    except NotFound:  # nothing packaged yet
        return None
    for stored in stored_models:
        labels, meta = stored.info.labels, stored.info.metadata
        if (labels.get("run_id"), labels.get("model"), meta.get("trained_at")) == (settings.training.run_id, model, trained_at):
            log.info("%s of run %s is already packaged as %s; nothing to do", model, settings.training.run_id, stored.tag)
            keys = ("model", "family", "run_id", "data_version", "metrics", "neutral_band", "labels")
            return {"tag": str(stored.tag), **{k: meta.get(k) for k in keys},
                    "store": str(settings.bentoml_home), "path": str(stored.path)}
    return None


def build_bento(plan: Mapping[str, Any]) -> str:
    """``bentoml build`` the service around the packaged model; return the Bento's tag."""
    from serving.package import build_bento as build

    settings = settings_for(plan)
    tag = str(build(settings))
    update_record(settings, {"bento_tag": tag})
    return tag


#: What ``verify_champion`` asks the freshly served champion: a clear positive, a clear negative, an empty text.
SMOKE_TEXTS = ("I love this, what a great day!", "I hate this, worst day ever", "")


def verify_champion(plan: Mapping[str, Any], packaged: Mapping[str, Any], *, timeout: float = 300.0) -> dict[str, Any]:
    """Serve the packaged champion with a real ``bentoml serve`` on a free loopback port and classify
    :data:`SMOKE_TEXTS` over HTTP through :class:`~sentiment_platform.hooks.BentoMLHook`.

    Raises:
        ModelError: the server does not start, or its answers are not one valid label per text from this tag.
    """
    from sentiment_platform.hooks import BentoMLHook, BentoMLServiceError
    from serving.launch import BentoServer

    settings = settings_for(plan)
    tag = str(packaged["tag"])
    env = {"SENTIMENT_HOME": str(settings.home), "BENTOML_HOME": str(settings.bentoml_home),
           "SENTIMENT_MODEL_TAG": tag, "SENTIMENT_API_KEY": None, "SENTIMENT_SERVICE_URL": None,
           "SENTIMENT_SERVICE_PORT": None}
    try:
        with BentoServer(env=env, ready_timeout=timeout) as server:
            answers = BentoMLHook(base_url=server.url, retries=2).classify(list(SMOKE_TEXTS))
    except (RuntimeError, TimeoutError, BentoMLServiceError) as exc:
        raise ModelError(f"the packaged champion {tag} does not answer over HTTP: {exc}") from exc
    labels = [answer.get("label") for answer in answers]
    if len(answers) != len(SMOKE_TEXTS) or {a.get("model") for a in answers} != {tag} \
            or not set(labels) <= {"Positive", "Negative", "Neutral"} or labels[-1] != "Neutral":
        raise ModelError(f"the packaged champion {tag} answered {answers!r} to {list(SMOKE_TEXTS)!r}")
    log.info("verified %s over HTTP: %s", tag, labels)
    update_record(settings, {"verified": {"tag": tag, "labels": labels, "at": now()}})
    return {"tag": tag, "labels": labels}


def missing_families(plan: Mapping[str, Any], rows: list[Mapping[str, Any]]) -> list[str]:
    """Jobs the plan asked for (families, and ``<family>-neutral``) that have no model on the leaderboard (their
    training failed)."""
    models = {row.get("model") for row in rows}
    families = {row.get("family") for row in rows if (row.get("dataset") or DEFAULT_DATASET) == DEFAULT_DATASET}
    jobs = list(plan.get("jobs") or plan["families"])
    return [j for j in jobs if j not in models and not (job_of(plan, j)["dataset"] == DEFAULT_DATASET
                                                        and j in families)]


def finish_run(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Close the run's record; raise :class:`ModelError` if a requested family has no model.

    Runs after packaging, so a failed family still leaves the others' models, the leaderboard and the packaged
    champion in place; the error only makes the run's failure visible.
    """
    settings = settings_for(plan)
    board = settings.reports_dir / "leaderboard.json"
    rows = json.loads(board.read_text()) if board.is_file() else []
    missing = missing_families(plan, rows)
    record = update_record(settings, {
        "status": "failed" if missing else "success",
        "models": [row.get("model") for row in rows],
        "failed_families": missing,
        "finished_at": now(),
    })
    if missing:
        raise ModelError(f"families {', '.join(missing)} failed to train; the others were evaluated and "
                         f"{record.get('champion')} was packaged (see {settings.reports_dir / RUN_RECORD})")
    return record
