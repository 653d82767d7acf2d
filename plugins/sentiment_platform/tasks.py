"""What the platform's DAG tasks share: failing fast on the platform's own errors, and noting failures.

>>> @task
... @fail_fast
... def prepare(plan: dict, fetched: dict) -> dict: ...
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def fail_fast(func: Callable[..., Any]) -> Callable[..., Any]:
    """Errors the platform raises for bad input, data or settings (:class:`ml.errors.MLError`) fail the task at
    once, without retries: retrying cannot help. Other errors (a network blip, a killed process) retry as usual."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        from ml.errors import MLError

        try:
            return func(*args, **kwargs)
        except MLError as exc:
            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc

    return wrapper


def record_failure_callback(context) -> None:
    """Task failure callback of the training DAG: note the failed task (and family) in the run's ``run.json``."""
    try:
        from sentiment_platform.pipeline.record import record_failure

        ti = context["ti"]
        plan = ti.xcom_pull(task_ids="plan")
        if plan:
            record_failure(plan, task_id=ti.task_id, map_index=ti.map_index, family=context.get("family"),
                           error=repr(context.get("exception")))
    except Exception:  # a callback must never hide the task's own error
        log.exception("could not record the failure in run.json")
