"""The Airflow side of the tweet sentiment platform: hooks, sensors, the pipeline steps the DAGs call, the run
record and the UI pages. No business logic of its own: each piece composes :mod:`ml`, :mod:`serving` and
:mod:`spark_apps`.

Airflow puts ``plugins/`` on ``sys.path`` of every component, so DAGs import these as
``from sentiment_platform.hooks import BentoMLHook`` or ``from sentiment_platform.pipeline import plan_run``.
Importing this package itself imports nothing (the pipeline steps run without Airflow too).
"""
