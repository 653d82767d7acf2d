"""The training pipeline as plain steps: what each task of the training DAG calls, runnable without Airflow.

Each step takes the run's *plan* (a small JSON-able dict made once by :func:`plan_run` from the DAG's params and
run id) plus the values of earlier steps, calls one function of :mod:`ml` or :mod:`serving`, and returns a small
JSON-able dict, so an orchestrator can pass results between processes. Every step is idempotent: re-running it
rewrites the same files of the same run folder (``models/<run_id>/``, ``reports/<run_id>/``).

Driving it by hand::

    plan = plan_run({"families": ["logreg"], "max_samples": 20000}, "manual_try")
    archive = fetch_data(plan)["archive"]
    data = prepare_data(plan, archive)
    train_family(plan, "logreg", data["data_version"])
    rows = evaluate_run(plan)
    champion = choose_champion(rows)
    package_champion(plan, champion)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.errors import ConfigError, DataError, ModelError
from ml.predictor import FAMILIES

if TYPE_CHECKING:
    from ml.settings import Settings

log = logging.getLogger(__name__)

#: Families a run trains when its params name none: the classical three, minutes on two CPU cores.
DEFAULT_FAMILIES: tuple[str, ...] = ("logreg", "linearsvc", "multinomialnb")
#: Name of the record each run keeps in ``reports/<run_id>/``.
RUN_RECORD = "run.json"
#: Params that become :class:`ml.settings.Settings` fields (``None`` keeps the environment's value).
SETTINGS_PARAMS = ("data_url", "neutral_low", "neutral_high", "seed")
#: Params handed to :func:`ml.train.train` (``None`` keeps the family's default).
TRAIN_PARAMS = ("max_samples", "epochs", "model_name", "batch_size", "max_length", "embeddings", "teacher")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_id_from(dag_run_id: str) -> str:
    """A run folder name for an orchestrator's run id: only ``[A-Za-z0-9._-]``, at most 128 characters.

    ``manual__2026-01-02T03:04:05+00:00`` becomes ``manual__2026-01-02T03_04_05_00_00``. Over-long or fully
    unsafe ids keep a hash of the original so that different runs never share a folder.
    """
    if not dag_run_id:
        raise ConfigError("run id: empty")
    safe = _UNSAFE.sub("_", dag_run_id).strip("._-")
    digest = hashlib.sha256(dag_run_id.encode()).hexdigest()[:12]
    if not safe:
        return f"run-{digest}"
    if len(safe) > 128:
        return f"{safe[:115]}-{digest}"
    return safe


def plan_run(params: Mapping[str, Any], dag_run_id: str, *, dag_id: str | None = None) -> dict[str, Any]:
    """Validate a run's parameters once and return the plan every later step receives.

    Args:
        params: The run's parameters (the DAG's params after ``conf`` overrides): ``families``, ``max_samples``,
            ``epochs``, ``model_name``, ``teacher``, ``neutral_low``, ``neutral_high``, ``data_url``,
            ``eval_max_samples``, ``build_bento``. Missing or ``None`` values fall back to the environment and the defaults.
        dag_run_id: The orchestrator's run id; the run folder name is derived from it (:func:`run_id_from`).
        dag_id: The DAG's id, recorded for traceability.

    Returns:
        ``{"run_id", "dag_run_id", "families", "independent", "teachers", "students", "settings", "train",
        "eval_max_samples", "build_bento"}``; ``settings`` holds the overrides that rebuild the run's
        :class:`~ml.settings.Settings`. ``families`` is split three ways (see :func:`_groups`): ``teachers`` (the
        family ``teacher`` names when the run trains it, else none), ``students`` (the run's GRU/LSTM that distil
        from it, trained once it is done) and ``independent`` (every other family, trained at once). The plan is
        also written to ``reports/<run_id>/run.json``.

    Raises:
        ConfigError: An unknown family or an invalid setting (named in the message).
    """
    from ml.settings import get_settings

    families = _families(params.get("families"))
    overrides: dict[str, Any] = {k: params[k] for k in SETTINGS_PARAMS if params.get(k) not in (None, "")}
    overrides["run_id"] = run_id_from(dag_run_id)
    settings = get_settings(**overrides)  # validates the band, the run id, ...
    overrides["home"] = str(settings.home)  # every step of the run writes under the same root
    train_options = {k: params.get(k) for k in TRAIN_PARAMS if params.get(k) not in (None, "")}
    for key in ("max_samples", "epochs", "batch_size", "max_length"):
        if key in train_options:
            train_options[key] = _positive_int(key, train_options[key])
    if "embeddings" in train_options:  # GRU/LSTM word vectors: checked now, not hours into the run
        from ml.embeddings import resolve_source
        from ml.models.rnn import EMBEDDING_DIM
        from ml.training import takes_word_vectors

        if not any(takes_word_vectors(f) for f in families):
            raise ConfigError("embeddings: no family of this run uses word vectors; add gru or lstm to families, "
                              "or leave embeddings empty")
        train_options["embeddings"] = resolve_source(str(train_options["embeddings"]), EMBEDDING_DIM)
    groups = _groups(families, train_options, settings)
    eval_max = params.get("eval_max_samples")
    plan = {
        "dag_id": dag_id,
        "dag_run_id": dag_run_id,
        "run_id": settings.run_id,
        "families": families,
        **groups,
        "settings": overrides,
        "train": train_options,
        "eval_max_samples": None if eval_max in (None, "", 0) else _positive_int("eval_max_samples", eval_max),
        "build_bento": bool(params.get("build_bento", False)),
    }
    _update_record(settings, {**plan, "status": "running", "planned_at": _now()})
    log.info("run %s (%s): families %s, training options %s", plan["run_id"], dag_run_id, families,
             train_options)
    return plan


def settings_for(plan: Mapping[str, Any]) -> Settings:
    """The run's settings, rebuilt from its plan."""
    from ml.settings import get_settings

    return get_settings(**plan["settings"])


def fetch_data(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Download and verify the run's data archive into the shared ``data/raw`` (a no-op when already valid)."""
    from ml.download import download

    settings = settings_for(plan)
    path = download(settings.data_url, settings.raw_dir, retries=settings.download_retries, progress=False)
    sha = path.with_name(path.name + ".sha256").read_text().split()[0]  # download() always writes the sidecar
    return {"archive": str(path), "sha256": sha, "data_url": settings.data_url}


def prepare_data(plan: Mapping[str, Any], archive: str | os.PathLike[str]) -> dict[str, Any]:
    """Prepare the shared splits from ``archive`` (a no-op when this archive is already prepared)."""
    from ml.data import prepare

    settings = settings_for(plan)
    manifest = prepare(settings, Path(archive))
    _update_record(settings, {"data_version": manifest["data_version"], "rows": manifest["rows"]})
    return {"data_version": manifest["data_version"], "rows": manifest["rows"], "labels": manifest["labels"],
            "processed_dir": str(settings.processed_dir), "archive": str(archive)}


def check_data_version(settings: Settings, expected: str | None) -> None:
    """Raise :class:`DataError` unless the prepared splits are still the version this run prepared.

    The splits are shared by all runs; another run preparing a different archive in between would otherwise
    make this run's models silently train on other data.
    """
    from ml.data import read_manifest

    current = read_manifest(settings)["data_version"]
    if expected and current != expected:
        raise DataError(f"the prepared data changed during this run (now {current}, this run prepared "
                        f"{expected}); re-run the run's prepare task, then its training tasks")


def train_family(plan: Mapping[str, Any], family: str, data_version: str | None = None) -> dict[str, Any]:
    """Train one family of the run; the model replaces any earlier one at ``models/<run_id>/<family>``."""
    from ml.training import distils, takes_word_vectors, train

    settings = settings_for(plan)
    check_data_version(settings, data_version)
    options = dict(plan.get("train", {}))
    students = plan_groups(plan)["students"]
    if not takes_word_vectors(family):  # word vectors are for GRU and LSTM
        options.pop("embeddings", None)
    if not distils(family) or (students and family not in students):  # the teacher is for the run's students
        options.pop("teacher", None)
    elif family in students:
        _check_teacher_of_run(settings, family, options["teacher"], data_version)
    result = train(family, settings, **options)
    return {k: result[k] for k in ("name", "family", "run_id", "data_version", "n_train", "train_seconds", "path")
            if k in result}


def _check_teacher_of_run(settings: Settings, family: str, teacher: str, data_version: str | None) -> None:
    """A student's teacher of this run must have saved a model, on this run's data (not a stale one)."""
    from ml.predictor import META_FILE, read_meta

    path = settings.models_dir / teacher
    if not (path / META_FILE).is_file():
        raise ModelError(f"{family} distils from this run's {teacher}, which saved no model (its train task "
                         "failed); retry that task, then this one")
    saved = read_meta(path).get("data_version")
    if data_version and saved != data_version:
        raise ModelError(f"{family} distils from this run's {teacher}, whose model was trained on data version "
                         f"{saved}, not this run's {data_version} (a stale model: its train task failed this "
                         "time?); retry that task, then this one")


def evaluate_run(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Score every model the run saved (the families that failed are simply absent); write the leaderboard."""
    from ml.evaluate import evaluate
    from ml.training import trained_models

    settings = settings_for(plan)
    if not trained_models(settings):
        raise ModelError(f"run {settings.run_id} saved no model: every family failed to train, or the data was "
                         "not prepared (see the failed tasks before this one)")
    return evaluate(settings, max_samples=plan.get("eval_max_samples"))


def read_leaderboard(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The run's leaderboard: its rows (best first) and where its files are."""
    from serving.package import read_leaderboard as read_rows

    settings = settings_for(plan)
    rows = read_rows(settings)
    if not rows:
        raise ModelError(f"{settings.reports_dir / 'leaderboard.json'} lists no models")
    md = settings.reports_dir / "leaderboard.md"
    log.info("leaderboard of run %s:\n%s", settings.run_id, md.read_text() if md.is_file() else rows)
    return {"rows": rows, "json": str(settings.reports_dir / "leaderboard.json"), "markdown": str(md),
            "png": str(settings.reports_dir / "leaderboard.png")}


def choose_champion(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The leaderboard row of the model to serve (the serving package's rule)."""
    from serving.package import select_champion

    champion = select_champion(rows)
    log.info("champion: %s", champion.get("model"))
    return champion


def package_champion(plan: Mapping[str, Any], champion: Mapping[str, Any]) -> dict[str, Any]:
    """Put the champion into the BentoML model store; return the package facts (``tag``, ...)."""
    from serving.package import package_model

    settings = settings_for(plan)
    packaged = _already_packaged(settings, champion["model"]) or package_model(settings, model=champion["model"])
    _update_record(settings, {"champion": champion["model"], "model_tag": str(packaged["tag"])})
    return json.loads(json.dumps(packaged, default=str))


def _already_packaged(settings: Settings, model: str) -> dict[str, Any] | None:
    """The store entry of this run's ``model`` if this very training of it was packaged already (a re-run)."""
    from bentoml.exceptions import NotFound

    from ml.predictor import read_meta
    from serving.config import MODEL_NAME
    from serving.package import model_store

    trained_at = read_meta(settings.models_dir / model).get("trained_at")
    try:
        stored_models = model_store(settings).list(MODEL_NAME)
    except NotFound:  # nothing packaged yet
        return None
    for stored in stored_models:
        labels, meta = stored.info.labels, stored.info.metadata
        if (labels.get("run_id"), labels.get("model"), meta.get("trained_at")) == (settings.run_id, model, trained_at):
            log.info("%s of run %s is already packaged as %s; nothing to do", model, settings.run_id, stored.tag)
            keys = ("model", "family", "run_id", "data_version", "metrics", "neutral_band", "labels")
            return {"tag": str(stored.tag), **{k: meta.get(k) for k in keys},
                    "store": str(settings.bentoml_home), "path": str(stored.path)}
    return None


def build_bento(plan: Mapping[str, Any]) -> str:
    """``bentoml build`` the service around the packaged model; return the Bento's tag."""
    from serving.package import build_bento as build

    settings = settings_for(plan)
    tag = str(build(settings))
    _update_record(settings, {"bento_tag": tag})
    return tag


def missing_families(plan: Mapping[str, Any], rows: list[Mapping[str, Any]]) -> list[str]:
    """Families the plan asked for that have no model on the leaderboard (their training failed)."""
    scored = {row.get("family") for row in rows} | {row.get("model") for row in rows}
    return [f for f in plan["families"] if f not in scored]


def finish_run(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Close the run's record; raise :class:`ModelError` if a requested family has no model.

    Runs after packaging, so a failed family still leaves the others' models, the leaderboard and the packaged
    champion in place; the error only makes the run's failure visible.
    """
    settings = settings_for(plan)
    board = settings.reports_dir / "leaderboard.json"
    rows = json.loads(board.read_text()) if board.is_file() else []
    missing = missing_families(plan, rows)
    record = _update_record(settings, {
        "status": "failed" if missing else "success",
        "models": [row.get("model") for row in rows],
        "failed_families": missing,
        "finished_at": _now(),
    })
    if missing:
        raise ModelError(f"families {', '.join(missing)} failed to train; the others were evaluated and "
                         f"{record.get('champion')} was packaged (see {settings.reports_dir / RUN_RECORD})")
    return record


def record_failure(plan: Mapping[str, Any], *, task_id: str, map_index: int = -1, family: str | None = None,
                   error: str = "") -> dict[str, Any]:
    """Append a failed task (and its family) to the run's record; the history survives later retries."""
    failure = {"task_id": task_id, "map_index": map_index, "family": family, "error": error[:2000], "at": _now()}
    return _update_record(settings_for(plan), lambda record: {"failures": [*record.get("failures", []), failure]})


def read_run_record(settings: Settings) -> dict[str, Any] | None:
    """``reports/<run_id>/run.json``: the run's plan, data version, champion, tags and outcome."""
    path = settings.reports_dir / RUN_RECORD
    return json.loads(path.read_text()) if path.is_file() else None


# --------------------------------------------------------------------------------------------- helpers
def _families(value: Any) -> list[str]:
    if value in (None, "", []):
        return list(DEFAULT_FAMILIES)
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    families = list(dict.fromkeys(str(v).strip() for v in value if str(v).strip()))
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ConfigError(f"families: unknown {', '.join(unknown)}; choose from {', '.join(FAMILIES)}")
    return families


def plan_groups(plan: Mapping[str, Any]) -> dict[str, list[str]]:
    """The plan's ``{"independent", "teachers", "students"}``, also for a plan written before the groups existed
    (``"stages": [first, students]``, the teacher among the first), so a run planned by an older release can still
    be cleared and re-run."""
    if "independent" in plan:
        return {k: list(plan.get(k) or []) for k in ("independent", "teachers", "students")}
    first, students = (list(s) for s in (plan.get("stages") or [plan.get("families") or [], []]))
    teacher = (plan.get("train") or {}).get("teacher")
    if students and teacher in first:  # the students' teacher of the run: they must wait for it
        return {"independent": [f for f in first if f != teacher], "teachers": [teacher], "students": students}
    return {"independent": first, "teachers": [], "students": students}


def _groups(families: list[str], train_options: dict[str, Any], settings: Settings) -> dict[str, list[str]]:
    """``{"independent", "teachers", "students"}``: the run's families by what each one waits for.

    ``train_options["teacher"]`` is either a family of this run (then it is the one ``teachers`` entry, and the
    run's GRU/LSTM are its ``students``: they wait for it, and only for it, then find its model by name) or a saved
    model that exists now (resolved to its folder; every family is independent). Without a teacher every family
    is independent.
    """
    from ml.training import distils, resolve_teacher

    teacher = train_options.get("teacher")
    alone = {"independent": families, "teachers": [], "students": []}
    if not teacher:
        return alone
    teacher = str(teacher)
    if not any(distils(f) for f in families):
        raise ConfigError("teacher: no family of this run learns from a teacher; add gru or lstm to families, or "
                          "leave teacher empty")
    if teacher in families:
        students = [f for f in families if f != teacher and distils(f)]
        if not students:
            raise ConfigError(f"teacher: {teacher} is trained by this run, but no gru or lstm of the run learns "
                              "from it; add one to families")
        return {"independent": [f for f in families if f != teacher and f not in students], "teachers": [teacher],
                "students": students}
    try:
        train_options["teacher"] = resolve_teacher(teacher, settings)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; or name a family of this run's families") from None
    return alone


def _positive_int(name: str, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a whole number, got {value!r}") from None
    if number < 1 or number != float(value):
        raise ConfigError(f"{name}: expected a whole number of at least 1, got {value!r}")
    return number


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _update_record(settings: Settings, fields: Mapping[str, Any] | Callable[[dict], Mapping[str, Any]]) -> dict:
    """Merge ``fields`` (or ``fields(record)``) into the run's record, written atomically.

    The read-modify-write holds an exclusive lock, so parallel tasks (mapped training tasks failing at the same
    moment) never lose each other's updates.
    """
    path = settings.reports_dir / RUN_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{RUN_RECORD}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = json.loads(path.read_text()) if path.is_file() else {}
        record.update(fields(record) if callable(fields) else fields)
        fd, tmp = tempfile.mkstemp(prefix=f".{RUN_RECORD}.", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh, indent=2, default=str)
        os.replace(tmp, path)
    return record


__all__ = [
    "DEFAULT_FAMILIES", "run_id_from", "plan_run", "settings_for", "fetch_data", "prepare_data",
    "check_data_version", "train_family", "evaluate_run", "read_leaderboard", "choose_champion",
    "package_champion", "build_bento", "missing_families", "finish_run", "record_failure", "read_run_record",
]
