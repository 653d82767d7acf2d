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
from sentiment_platform.pipeline.record import now, update_record

if TYPE_CHECKING:
    from ml.settings import Settings

log = logging.getLogger(__name__)

#: Families a run trains when its params name none: the classical three, minutes on two CPU cores.
DEFAULT_FAMILIES: tuple[str, ...] = ("logreg", "linearsvc", "multinomialnb")
#: Params that become :class:`ml.settings.Settings` fields (``None`` keeps the environment's value).
SETTINGS_PARAMS = ("data_url", "neutral_low", "neutral_high", "seed")
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
        "run_id": settings.training.run_id,
        "families": families,
        **groups,
        "settings": overrides,
        "train": train_options,
        "eval_max_samples": None if eval_max in (None, "", 0) else _positive_int("eval_max_samples", eval_max),
        "build_bento": bool(params.get("build_bento", False)),
    }
    update_record(settings, {**plan, "status": "running", "planned_at": now()})
    log.info("run %s (%s): families %s, training options %s", plan["run_id"], dag_run_id, families,
             train_options)
    return plan


def settings_for(plan: Mapping[str, Any]) -> Settings:
    """The run's settings, rebuilt from its plan."""
    from ml.settings import get_settings

    return get_settings(**plan["settings"])


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
