"""The training pipeline, as plain steps the training DAG calls (and a user can call without Airflow).

* :mod:`~sentiment_platform.pipeline.plan` -- validate a run's params into its plan; run folder names.
* :mod:`~sentiment_platform.pipeline.steps` -- download, prepare, train, evaluate, choose, package, verify.
* :mod:`~sentiment_platform.pipeline.record` -- the run record, ``reports/<run_id>/run.json``.
"""

from sentiment_platform.pipeline.plan import (
    DEFAULT_FAMILIES,
    job_name,
    job_of,
    plan_groups,
    plan_run,
    run_id_from,
    settings_for,
)
from sentiment_platform.pipeline.record import RUN_RECORD, read_run_record, record_failure
from sentiment_platform.pipeline.steps import (
    build_bento,
    check_data_version,
    choose_champion,
    evaluate_run,
    fetch_data,
    finish_run,
    missing_families,
    package_champion,
    prepare_data,
    read_leaderboard,
    train_family,
    verify_champion,
)

__all__ = [
    "DEFAULT_FAMILIES", "RUN_RECORD", "build_bento", "check_data_version", "choose_champion", "evaluate_run",
    "fetch_data", "finish_run", "job_name", "job_of", "missing_families", "package_champion", "plan_groups",
    "plan_run", "prepare_data", "read_leaderboard", "read_run_record", "record_failure", "run_id_from",
    "settings_for", "train_family", "verify_champion",
]
