"""The streaming job: landing files -> clean -> dedup -> batched scoring -> parquet, exactly once.

One module per job: :mod:`~spark_apps.stream.job` (the spark-submit entry point), :mod:`~.pipeline` (the
DataFrames of the two queries), :mod:`~.quality` (parse and validate landing lines; dead letters),
:mod:`~.scoring` (the batched HTTP client and the local scorer), :mod:`~.status` (the listener and the atomic
status file), :mod:`~.lock` (one driver per stream), :mod:`~.paths` (the stream's folders) and
:mod:`~.sparklog` (reading Spark's metadata logs: committed output files, processed landing files).
``docs/streaming.md`` (section "The Spark job") describes how to run and operate it.
"""
