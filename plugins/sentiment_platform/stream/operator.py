"""The launch task of a stream: the apache-spark provider's ``SparkSubmitOperator`` on the ``spark_default``
connection, wrapped by the platform's supervisor (:mod:`sentiment_platform.stream.supervise`).

The master comes only from the connection (``local[*]`` on one machine; ``spark://host:7077``, YARN or Kubernetes
by changing the connection). In local and client mode the provider's ``spark-submit`` is a blocking child of the
task, holding a worker slot for the stream's life, so this operator adds what the provider lacks there: a watchdog
that ends a stalled driver, adoption of a driver left running by a try whose worker died (never a second one), a
graceful stop on ``on_kill`` (the stop file and SIGTERM, before the provider's SIGKILL) and causes for every restart.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from sentiment_platform.stream.plan import JOB

#: Spark settings for a ``local[...]`` master: everything on loopback.
LOOPBACK_CONF = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}


class StreamSubmitOperator(SparkSubmitOperator):
    """``spark-submit spark_apps/stream/job.py`` for the stream a plan describes, supervised.

    Args:
        plan: The run's plan (:func:`sentiment_platform.stream.plan.plan_stream`), usually an XCom.
        conn_id: The Spark connection (default ``spark_default``): its host is the master.
        **kwargs: ``SparkSubmitOperator``/``BaseOperator`` arguments (``conf``, ``driver_memory``, ``retries``...).
    """

    template_fields = (*SparkSubmitOperator.template_fields, "plan")
    ui_color = "#f4a261"

    def __init__(self, *, plan: Any, conn_id: str = "spark_default", **kwargs: Any) -> None:
        kwargs.setdefault("name", "sentiment-stream")
        super().__init__(application=str(JOB), conn_id=conn_id, **kwargs)
        self.plan = plan

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from sentiment_platform.hooks import BentoMLHook
        from sentiment_platform.stream.plan import job_env, settings_for
        from sentiment_platform.stream.supervise import SERVICE_WAIT_S, BadArguments, run_supervised
        from spark_apps.stream.job import service_url

        plan = self.plan
        settings = settings_for(plan)
        model_tag = None
        self.application_args = list(plan["job_args"])
        if plan["scorer"] == "local":
            from sentiment_platform.stream.service import champion_tag

            model_tag = champion_tag(settings)
            self.application_args += ["--model-tag", model_tag]
        self.name = f"sentiment-stream-{plan['name']}"
        self.env_vars = {**(self.env_vars or {}), **job_env(settings, model_tag)}
        if self._get_hook()._connection["master"].startswith("local"):
            self.conf = {**LOOPBACK_CONF, **(self.conf or {})}
            self.env_vars["SPARK_LOCAL_IP"] = "127.0.0.1"

        def submit() -> None:
            self._hook = None  # a fresh hook (and spark-submit) per start
            SparkSubmitOperator.execute(self, context)

        def returncode() -> int | None:
            process = getattr(self._hook, "_submit_sp", None)
            return None if process is None else process.returncode

        def wait_service() -> None:
            BentoMLHook(base_url=service_url(settings)).wait_until_ready(timeout=SERVICE_WAIT_S, interval=2.0)

        ti = context["ti"]
        dag_run = context.get("dag_run")
        try:
            return run_supervised(plan, settings, try_number=ti.try_number, retries=self.retries or 0,
                                  run_started=getattr(dag_run, "start_date", None), submit=submit,
                                  returncode=returncode,
                                  wait_service=wait_service if plan["scorer"] == "service" else None)
        except BadArguments as exc:
            raise AirflowFailException(str(exc)) from exc

    def on_kill(self) -> None:
        """Stop the stream cleanly (stop file and SIGTERM: the running micro-batch finishes), then let the provider
        kill what is left of spark-submit."""
        try:
            if isinstance(self.plan, dict):
                from sentiment_platform.stream import record
                from sentiment_platform.stream.plan import settings_for
                from spark_apps.stream.control import request_stop
                from spark_apps.stream.paths import StreamPaths

                settings = settings_for(self.plan)
                paths = StreamPaths.for_stream(settings, self.plan["name"])
                record.add_event(paths.root, "stop", "the launch task was killed (timeout, shutdown or marked "
                                                     "failed): stopping the driver cleanly")
                request_stop(paths.stop_file, paths.lock, timeout=min(settings.stream.stop_grace_s, 60.0))
        except Exception:  # the provider's kill must run whatever happened here
            self.log.exception("could not stop the stream cleanly")
        finally:
            super().on_kill()
