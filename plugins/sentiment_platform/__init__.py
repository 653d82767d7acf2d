"""Airflow building blocks of the tweet sentiment platform: thin hooks and sensors, no business logic.

Airflow puts ``plugins/`` on ``sys.path`` of every component, so DAGs import these as
``from sentiment_platform.hooks import BentoMLHook``.
"""

from sentiment_platform.hooks import BentoMLHook
from sentiment_platform.sensors import BentoMLReadySensor

__all__ = ["BentoMLHook", "BentoMLReadySensor"]
