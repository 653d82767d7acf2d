"""The Airflow side of the stream: launch and supervise the Spark job, its ingest and the service it scores with.

* :mod:`~sentiment_platform.stream.plan` -- the ``sentiment_stream`` DAG's params validated into a plan;
* :mod:`~sentiment_platform.stream.service` -- the BentoML service as a component; the blue/green champion roll;
* :mod:`~sentiment_platform.stream.ingest` -- the ingest as a component;
* :mod:`~sentiment_platform.stream.health` -- a stream's health from its files; ending a stalled driver;
* :mod:`~sentiment_platform.stream.supervise` -- one try of the launch task: adopt, submit, watch, restart;
* :mod:`~sentiment_platform.stream.operator` -- the launch task (the provider's ``SparkSubmitOperator``);
* :mod:`~sentiment_platform.stream.record` -- ``supervisor.json``: restarts and their causes;
* :mod:`~sentiment_platform.stream.steps` -- what each task of the stream DAGs calls.

Importing this package imports nothing heavy (the DAG files import the operator at parse time).
"""
