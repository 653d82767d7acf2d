"""Beyond one machine, on this one: the engines a cluster deployment uses, started on loopback.

* :mod:`ops.cluster.engines` -- a Spark standalone master and workers, PostgreSQL, Redis;
* :mod:`ops.cluster.airflow` -- Airflow's processes split, with the CeleryExecutor on PostgreSQL and Redis;
* :mod:`ops.cluster.cli` -- ``python -m ops cluster up|down|status`` (``make cluster-up``).

The DAGs, the Spark job and the service are the ones of the one-machine platform: only configuration changes
(the executor, the metadata DB, the ``spark_default`` connection's master, the service's workers).
"""
