"""Sensors of the sentiment platform."""

from __future__ import annotations

from airflow.sdk import BaseSensorOperator

from sentiment_platform.hooks import BentoMLHook


class BentoMLReadySensor(BaseSensorOperator):
    """Wait until the BentoML service's ``/readyz`` answers 200.

    Args:
        bentoml_conn_id: Connection of the service (see :class:`~sentiment_platform.hooks.BentoMLHook`).
        **kwargs: Sensor arguments: ``poke_interval``, ``timeout``, ``mode="reschedule"`` to free the worker slot
            between pokes, ``soft_fail``...
    """

    template_fields = ("bentoml_conn_id",)

    def __init__(self, *, bentoml_conn_id: str = BentoMLHook.default_conn_name, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bentoml_conn_id = bentoml_conn_id

    def poke(self, context) -> bool:
        return BentoMLHook(self.bentoml_conn_id, retries=0).is_ready()
