"""The platform's BentoML service as a long-running component: start it, keep it on the current champion, and
roll it to a new champion without a gap.

The service is the component ``service`` (:mod:`ml.components`: ``<home>/run/service.json`` and ``service.log``,
seen by ``make status`` and stopped by ``make down``) on ``settings.service.port``, 127.0.0.1. Its address is also
written to the endpoint file (:mod:`ml.endpoints`, ``<home>/run/service-endpoint.json``), which the stream's
scorer re-reads before each call.

**Rolling to a new champion** (:func:`ensure_service` when the served tag is not the wanted one), blue/green:

1. start the new model as ``service-next`` on a free port and wait until it answers ``/readyz`` and classifies;
2. point the endpoint file at it: the stream's next scoring call goes there (a call the old service is still
   answering completes; one it refuses while stopping is retried and follows the file);
3. stop the old service; start the new model again on the canonical port (so the Airflow connection, users'
   ``curl`` and the dashboard's links never move), wait until it answers;
4. point the endpoint file back at the canonical port; stop ``service-next``.

At every moment a ready service holds the endpoint file, so no micro-batch fails; the Spark checkpoint and the
exactly-once sink make sure each post is written once. The price is a second model load (seconds for the
classical families). One roll at a time (an ``flock`` on ``<home>/run/service.lock``).

**A service deployed elsewhere.** When ``service_url`` is set (the compose deployment's Bento container, a
scaled-out service behind a load balancer), the platform does not start, roll or stop it: :func:`ensure_service`
waits until it is ready, asks it which model it serves and reports ``action: "external"``; rolling it to a new
champion is that deployment's job (a new Bento image).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ml import components
from ml.endpoints import endpoint_file, read_endpoint, write_endpoint
from ml.errors import ModelError
from ml.processes import free_port, http_status, port_open

if TYPE_CHECKING:
    from ml.settings import Settings

log = logging.getLogger(__name__)

SERVICE = "service"
NEXT = "service-next"
TARGET = "serving.service:TweetSentiment"
#: Seconds a retired service keeps answering after the endpoint file left it (calls in flight finish).
HANDOVER_S = 2.0
SMOKE_TEXTS = ["I love this so much", "I hate this so much", ""]


def champion_tag(settings: Settings, tag: str | None = None) -> str:
    """The concrete model store tag of ``tag`` (default ``settings.service.model_tag``, ``...:latest``)."""
    from bentoml.exceptions import NotFound

    from serving.package import model_store

    wanted = tag or settings.service.model_tag
    try:
        return str(model_store(settings).get(wanted).tag)
    except NotFound:
        raise ModelError(f"no packaged model {wanted} in {settings.bentoml_home}: run the training DAG (or "
                         "`python -m serving package`) first") from None


@contextlib.contextmanager
def service_lock(settings: Settings) -> Iterator[None]:
    """One start or roll of the service at a time (``make up``, the stream DAG, the rollout DAG)."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.run_dir / "service.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def url_of(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def is_ready(url: str) -> bool:
    return http_status(f"{url}/readyz") == 200


def current(settings: Settings) -> dict[str, Any] | None:
    """The running service's record (``port``, ``model_tag``, ``url``), or None."""
    record = components.read(settings.run_dir, SERVICE)
    return None if record is None or record.get("leader_gone") else record


def ensure_service(settings: Settings, tag: str | None = None, *, timeout: float = 300.0) -> dict[str, Any]:
    """Make sure the platform's service runs and serves ``tag`` (default: the latest packaged champion).

    Returns ``{"action": "kept" | "started" | "rolled", "model_tag", "url", "previous"}``.

    Raises:
        ModelError: no such packaged model; the service does not start or answer; the port is taken by a program
            the platform did not start.
    """
    if settings.is_set("service_url"):
        return external(settings, tag, timeout=timeout)
    tag = champion_tag(settings, tag)
    port = settings.service.port
    with service_lock(settings):
        record = components.read(settings.run_dir, SERVICE)
        if record and record.get("leader_gone"):
            log.warning("service: stopping the leftovers of a service whose leader died")
            components.stop(settings.run_dir, SERVICE)
            record = None
        if record and record.get("model_tag") == tag:
            if _wait_ready(settings, record["url"], timeout):
                _point(settings, record["url"], tag)
                return {"action": "kept", "model_tag": tag, "url": record["url"], "previous": tag}
            log.warning("service: %s (%s) does not answer; starting it again", record["url"], tag)
            components.stop(settings.run_dir, SERVICE)
            record = None
        if record:
            return roll(settings, record, tag, timeout=timeout)
        _stop_quietly(settings, NEXT)  # an interrupted roll's leftover
        if port_open(port):
            raise ModelError(f"port {port} is in use by a program the platform did not start; stop it or set "
                             "SENTIMENT_SERVICE_PORT")
        started = start(settings, SERVICE, tag, port, timeout=timeout)
        _point(settings, started["url"], tag)
        return {"action": "started", "model_tag": tag, "url": started["url"], "previous": None}


def external(settings: Settings, wanted: str | None = None, *, timeout: float = 300.0) -> dict[str, Any]:
    """The service at ``service_url``, which the platform does not manage: wait until it is ready and return what
    it serves (``model_tag``: the model its answers name)."""
    url = settings.service.base_url.rstrip("/")
    deadline = time.monotonic() + timeout
    while not is_ready(url):
        if time.monotonic() > deadline:
            raise ModelError(f"the service at {url} (service_url, deployed outside the platform) is not ready "
                             f"after {timeout:.0f} s")
        time.sleep(1.0)
    served = served_tag(settings, url)
    if wanted and served != wanted:
        log.warning("service: %s serves %s, not %s; service_url names a service the platform does not manage: "
                    "deploy %s there (a new Bento)", url, served, wanted, wanted)
    else:
        log.info("service: %s (service_url, deployed outside the platform) serves %s", url, served)
    return {"action": "external", "model_tag": served, "url": url, "previous": served}


def served_tag(settings: Settings, url: str) -> str:
    """The model the service at ``url`` answers with (one classification)."""
    from sentiment_platform.hooks import BentoMLHook, BentoMLServiceError

    key = settings.service.api_key
    try:
        answers = BentoMLHook(base_url=url, api_key=key.get_secret_value() if key else None,
                              retries=3).classify(SMOKE_TEXTS[:1])
    except BentoMLServiceError as exc:
        raise ModelError(f"the service at {url} does not classify: {exc}") from exc
    tag = answers[0].get("model") if answers and isinstance(answers[0], dict) else None
    if not tag:
        raise ModelError(f"the service at {url} answered {answers!r}: no model named")
    return str(tag)


def roll(settings: Settings, old: dict[str, Any], tag: str, *, timeout: float = 300.0) -> dict[str, Any]:
    """Replace the running service ``old`` by one serving ``tag`` without a moment with no ready service (see the
    module's doc); call it holding :func:`service_lock`."""
    previous = old.get("model_tag")
    log.info("service: rolling %s -> %s", previous, tag)
    _stop_quietly(settings, NEXT)
    bridge = start(settings, NEXT, tag, free_port(), timeout=timeout)
    smoke(settings, bridge["url"], tag)
    _point(settings, bridge["url"], tag)
    time.sleep(HANDOVER_S)
    log.info("service: the stream now scores with %s at %s; stopping %s", tag, bridge["url"], previous)
    components.stop(settings.run_dir, SERVICE)
    final = start(settings, SERVICE, tag, int(old.get("port") or settings.service.port), timeout=timeout)
    smoke(settings, final["url"], tag)
    _point(settings, final["url"], tag)
    time.sleep(HANDOVER_S)
    components.stop(settings.run_dir, NEXT)
    log.info("service: %s serves %s", final["url"], tag)
    return {"action": "rolled", "model_tag": tag, "url": final["url"], "previous": previous}


def start(settings: Settings, name: str, tag: str, port: int, *, timeout: float = 300.0) -> dict[str, Any]:
    """Start ``bentoml serve`` of ``tag`` on 127.0.0.1:``port`` as component ``name``; wait for ``/readyz``."""
    from serving.launch import REPO_ROOT

    env = dict(os.environ)
    env.update({"SENTIMENT_HOME": str(settings.home), "BENTOML_HOME": str(settings.bentoml_home),
                "SENTIMENT_MODEL_TAG": tag, "BENTOML_DO_NOT_TRACK": "True", "PYTHONUNBUFFERED": "1"})
    env.pop("SENTIMENT_SERVICE_PORT", None)
    cmd = [sys.executable, "-m", "bentoml", "serve", TARGET, "--host", "127.0.0.1", "--port", str(port)]
    url = url_of(port)
    log.info("service: starting %s with %s on %s (log %s)", name, tag, url, components.log_path(settings.run_dir, name))
    record = components.start(settings.run_dir, name, cmd, env, cwd=REPO_ROOT, port=port, model_tag=tag, url=url)
    deadline = time.monotonic() + timeout
    while not is_ready(url):
        if components.read(settings.run_dir, name) is None:
            raise ModelError(f"the service ({name}, {tag}) exited before it was ready:\n{_tail(settings, name)}")
        if time.monotonic() > deadline:
            components.stop(settings.run_dir, name)
            raise ModelError(f"the service ({name}, {tag}) was not ready after {timeout:.0f}s:\n{_tail(settings, name)}")
        time.sleep(0.5)
    return record


def smoke(settings: Settings, url: str, tag: str) -> None:
    """Classify a few texts at ``url``; raise :class:`ModelError` unless ``tag`` answers each."""
    from sentiment_platform.hooks import BentoMLHook, BentoMLServiceError

    key = settings.service.api_key
    api_key = key.get_secret_value() if key else None
    try:
        answers = BentoMLHook(base_url=url, api_key=api_key, retries=3).classify(SMOKE_TEXTS)
    except BentoMLServiceError as exc:
        raise ModelError(f"the service at {url} does not classify: {exc}") from exc
    if len(answers) != len(SMOKE_TEXTS) or {a.get("model") for a in answers} != {tag}:
        raise ModelError(f"the service at {url} answered {answers!r}, not {tag}")


def stop_service(settings: Settings, grace: float = 30.0) -> list[int]:
    """Stop the service (and an interrupted roll's bridge); remove the endpoint file."""
    with service_lock(settings):
        pids = components.stop(settings.run_dir, NEXT, grace) + components.stop(settings.run_dir, SERVICE, grace)
        endpoint_file(settings.run_dir).unlink(missing_ok=True)
    return pids


def _point(settings: Settings, url: str, tag: str) -> None:
    path = settings.service.endpoint_file or endpoint_file(settings.run_dir)
    doc = read_endpoint(path)
    if not doc or doc.get("url") != url or doc.get("model_tag") != tag:
        write_endpoint(path, url, model_tag=tag)
        log.info("service: endpoint file %s -> %s (%s)", path, url, tag)


def _stop_quietly(settings: Settings, name: str) -> None:
    if components.stop(settings.run_dir, name):
        log.info("service: stopped the leftover %s", name)


def _tail(settings: Settings, name: str, lines: int = 30) -> str:
    try:
        text = components.log_path(settings.run_dir, name).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _wait_ready(settings: Settings, url: str, timeout: float) -> bool:
    """Whether the service at ``url`` answers ``/readyz`` within ``timeout`` (False at once if it exited)."""
    deadline = time.monotonic() + timeout
    while not is_ready(url):
        if current(settings) is None or time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True
