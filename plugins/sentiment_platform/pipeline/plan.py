"""Planning a training run: validate the DAG's params once into the *plan* every later step receives.

The plan is a small JSON-able dict (it travels between Airflow tasks as an XCom): the run's folder name (derived
from the orchestrator's run id), its families grouped by what each waits for, the settings overrides that rebuild
the run's :class:`~ml.settings.Settings`, and the training options.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ml.errors import ConfigError
from ml.predictor import FAMILIES
from ml.settings.sections import DEFAULT_DATASET, NEUTRAL_DATASET
from sentiment_platform.pipeline.record import now, update_record

if TYPE_CHECKING:
    from ml.settings import Settings

log = logging.getLogger(__name__)

#: Families a run trains when its params name none: the classical three, minutes on two CPU cores.
DEFAULT_FAMILIES: tuple[str, ...] = ("logreg", "linearsvc", "multinomialnb")
#: Params that become :class:`ml.settings.Settings` fields (``None`` keeps the environment's value).
SETTINGS_PARAMS = ("data_url", "neutral_low", "neutral_high", "seed", "neutral_url", "class_weight", "class_priors",
                   "champion_rule")
#: Params handed to :func:`ml.training.train` (``None`` keeps the family's default).
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
            ``eval_max_samples``, ``build_bento``; for three classes ``neutral_url``, ``neutral_families``,
            ``transfer``, ``class_weight``, ``class_priors``, ``champion_rule`` and ``extra_eval``. Missing or ``None`` values fall
            back to the environment and the defaults.
        dag_run_id: The orchestrator's run id; the run folder name is derived from it (:func:`run_id_from`).
        dag_id: The DAG's id, recorded for traceability.

    Returns:
        ``{"run_id", "dag_run_id", "families", "neutral_families", "jobs", "independent", "teachers",
        "students", "settings", "train", "eval_max_samples", "extra_eval", "build_bento"}``; ``settings`` holds
        the overrides that rebuild the run's :class:`~ml.settings.Settings`. ``jobs`` names every training job:
        the families on Sentiment140, and ``<family>-neutral`` on the neutral data (:func:`plan_jobs`). They are
        split three ways (see :func:`_groups`): ``teachers`` (the family ``teacher`` names when the run trains it,
        and the Sentiment140 models three-class jobs transfer from), ``students`` (the jobs that wait for them)
        and ``independent`` (every other job, trained at once). The plan is also written to
        ``reports/<run_id>/run.json``.

    Raises:
        ConfigError: An unknown family or an invalid setting (named in the message).
    """
    from ml.settings import get_settings

    families = _families(params.get("families"))
    overrides: dict[str, Any] = {k: params[k] for k in SETTINGS_PARAMS if params.get(k) not in (None, "")}
    overrides["run_id"] = run_id_from(dag_run_id)
    overrides["dataset"] = DEFAULT_DATASET  # Sentiment140; the neutral source is the dataset `neutral`
    settings = get_settings(**overrides)  # validates the band, the run id, the class weights, the rule, ...
    overrides["home"] = str(settings.home)  # every step of the run writes under the same root
    neutral = _neutral_families(params, settings)
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
    jobs = plan_jobs(families, neutral, bool(params.get("transfer")), groups)
    eval_max = params.get("eval_max_samples")
    plan = {
        "dag_id": dag_id,
        "dag_run_id": dag_run_id,
        "run_id": settings.training.run_id,
        "families": families,
        "neutral_families": neutral,
        "jobs": jobs,
        **groups,
        "settings": overrides,
        "train": train_options,
        "eval_max_samples": None if eval_max in (None, "", 0) else _positive_int("eval_max_samples", eval_max),
        "extra_eval": _extra_eval(params.get("extra_eval")),
        "build_bento": bool(params.get("build_bento", False)),
    }
    update_record(settings, {**plan, "status": "running", "planned_at": now()})
    log.info("run %s (%s): families %s, three-class families %s, training options %s", plan["run_id"], dag_run_id,
             families, neutral, train_options)
    return plan


def job_name(family: str, dataset: str = DEFAULT_DATASET) -> str:
    """A training job's (and its model's) name: the family on Sentiment140, ``<family>-<dataset>`` on another
    dataset (``minilm-neutral``)."""
    return family if dataset == DEFAULT_DATASET else f"{family}-{dataset}"


def job_of(plan: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A job of the plan: ``{"family", "dataset", "init_from"}`` (plans written before jobs: the family itself)."""
    jobs = plan.get("jobs") or {}
    return dict(jobs.get(name) or {"family": name, "dataset": DEFAULT_DATASET, "init_from": None})


def plan_jobs(families: list[str], neutral: list[str], transfer: bool, groups: dict[str, list[str]]) -> dict:
    """The run's training jobs by name, and (in place) their waiting groups.

    Sentiment140 jobs are the families. Each family of ``neutral`` trains on the neutral dataset as
    ``<family>-neutral``; with ``transfer``, one that can start from another model (GRU, LSTM, transformers)
    starts from this run's Sentiment140 model of its family, which must be among ``families``: then that model
    is a ``teachers`` job and the neutral job a ``students`` job (it waits for it). Others are ``independent``.

    Raises:
        ConfigError: ``transfer`` without any neutral family that can use it, or without its source family.
    """
    from ml.training import transfers

    jobs = {f: {"family": f, "dataset": DEFAULT_DATASET, "init_from": None} for f in families}
    movers = [f for f in neutral if transfer and transfers(f)]
    if transfer and not movers:
        raise ConfigError("transfer: no three-class family of this run can start from a Sentiment140 model; add "
                          "minilm, bert, roberta, gru or lstm to neutral_families, or turn transfer off")
    missing = [f for f in movers if f not in families]
    if missing:
        raise ConfigError(f"transfer: {', '.join(missing)} start from this run's Sentiment140 model of their family; "
                          "add them to families too")
    chained = [f for f in movers if f in groups["students"]]
    if chained:  # a distilled Sentiment140 model would be a third stage
        raise ConfigError(f"transfer: {', '.join(chained)} on Sentiment140 already wait for the teacher; a "
                          "three-class model cannot start from them in the same run (train it in a later run "
                          "with --init-from)")
    for f in neutral:
        name = job_name(f, NEUTRAL_DATASET)
        jobs[name] = {"family": f, "dataset": NEUTRAL_DATASET, "init_from": f if f in movers else None}
        if f not in movers:
            groups["independent"].append(name)
            continue
        groups["students"].append(name)
        if f not in groups["teachers"]:
            groups["teachers"].append(f)
            groups["independent"].remove(f)
    return jobs


def _neutral_families(params: Mapping[str, Any], settings: Settings) -> list[str]:
    """The families trained on the neutral dataset: given, or the classical three when there is a neutral
    source; none without one.

    Raises:
        ConfigError: neutral families without a neutral source, or a local source that does not exist.
    """
    from ml.download import local_source

    source = settings.data.neutral_url
    given = params.get("neutral_families")
    if not source:
        if given:
            raise ConfigError("neutral_families: no neutral source; set neutral_url (or SENTIMENT_NEUTRAL_URL)")
        return []
    local = local_source(source)
    if local is not None and not local.exists():
        raise ConfigError(f"neutral_url: no such file: {local}")
    return list(DEFAULT_FAMILIES) if given is None else _families(given, allow_empty=True)


def _extra_eval(value: Any) -> list[str]:
    """External evaluation sets (paths or URLs, ``NAME=REF``); local files must exist when the run is planned."""
    import re

    from ml.download import local_source

    if value in (None, "", []):
        return []
    refs = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    for ref in filter(None, refs):
        target = ref.split("=", 1)[1] if re.match(r"^[A-Za-z0-9._-]+=", ref) else ref
        local = local_source(target)
        if local is not None and not local.exists():
            raise ConfigError(f"extra_eval: no such file: {local}")
    return [ref for ref in refs if ref]


def settings_for(plan: Mapping[str, Any]) -> Settings:
    """The run's settings, rebuilt from its plan."""
    from ml.settings import get_settings

    return get_settings(**plan["settings"])


def _families(value: Any, allow_empty: bool = False) -> list[str]:
    if value in (None, "", []):
        return [] if allow_empty else list(DEFAULT_FAMILIES)
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    families = list(dict.fromkeys(str(v).strip() for v in value if str(v).strip()))
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ConfigError(f"families: unknown {', '.join(unknown)}; choose from {', '.join(FAMILIES)}")
    return families


def plan_groups(plan: Mapping[str, Any]) -> dict[str, list[str]]:
    """The plan's ``{"independent", "teachers", "students"}``: what each family of the run waits for."""
    return {k: list(plan.get(k) or []) for k in ("independent", "teachers", "students")}


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
