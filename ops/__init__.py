"""Run the platform on this machine: ``python -m ops up|down|status|env`` (what ``make up/down/status`` call).

* :mod:`ops.layout` -- where everything lives, ports, and the environment of each component;
* :mod:`ops.components` -- pid-file records of the processes ``up`` started (one session each), start and stop;
* :mod:`ops.airflow_api` -- the few Airflow REST API v2 calls ``up`` needs;
* :mod:`ops.steps` -- starting Airflow, following a training run, serving the champion;
* :mod:`ops.cli` -- the commands.

This is the top of the layers: it may import :mod:`ml`, :mod:`serving`, :mod:`spark_apps` and the Airflow plugin's
pipeline, and nothing imports it.
"""
