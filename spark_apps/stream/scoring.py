"""Score posts in batches inside Spark's Python workers: over HTTP (the BentoML service) or in-process.

(Slightly over 300 lines on purpose: the HTTP client, the local scorer and the partition function are one
unit that Spark pickles to its workers; splitting them would split what a worker must import.)

:class:`PartitionScorer` is the function handed to ``DataFrame.mapInPandas``: Spark gives it the Arrow batches of
one partition (at most ``spark.sql.execution.arrow.maxRecordsPerBatch`` rows each) and it returns them with
``label, p_positive, scores, model, scored_ts`` added, row for row.

* ``service``: one ``POST /classify`` per chunk of ``score_chunk`` texts, up to ``score_concurrency`` chunks in
  flight per partition (the service's adaptive batching merges them), over one keep-alive ``httpx`` client per
  Python worker. The *original* text is sent (cut to the service's ``max_chars``): the service cleans it with the
  same :func:`ml.text.clean` and answers exactly what any other client of the service gets, including the
  defined Neutral with a null ``p_positive`` for a text with nothing left after cleaning. Connection errors,
  timeouts and 429/502/503/504 are retried with exponential backoff and jitter, honouring ``Retry-After``; any
  other answer, or retries exhausted, raises :class:`ScoringError` and fails the micro-batch (nothing of it is
  written; a restart continues from the checkpoint). The API key travels in the task closure, never in a log.
* ``local``: the packaged model loaded once per Python worker from the BentoML model store
  (:func:`ml.predictor.load_predictor`), fed the ``clean_text`` Spark already computed, with the service's rules:
  :func:`ml.predictor.decide` and the packaged model's Neutral band, Neutral/null for an empty cleaned text.

``pyspark.ml.functions.predict_batch_udf`` (a column UDF that caches a model per worker and feeds it numpy
batches) fits the local case, but not the HTTP one (no concurrent calls, no per-chunk retries), and its tensor
checks buy nothing for text; one ``mapInPandas`` function serves both scorers with the same chunking, answer
checks and output assembly.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spark_apps.stream.schema import LABELS

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
#: Python worker caches: one HTTP client / one loaded model per configuration, reused by every task.
_CLIENTS: dict[Any, ServiceClient] = {}
_MODELS: dict[Any, LocalModel] = {}


class ScoringError(RuntimeError):
    """Scoring failed for good: the micro-batch must fail (its message names the service, never the key)."""


class Secret:
    """A string that prints as ``********`` (the API key, pickled into the task closure)."""

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class ServiceConfig:
    """How to reach ``POST /classify``; see the ``stream`` settings for each knob."""

    url: str
    api_key: Secret | None = None
    chunk: int = 256
    timeout_s: float = 30.0
    retries: int = 5
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    concurrency: int = 2
    max_chars: int | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.url.rstrip('/')}/classify"


@dataclass(frozen=True)
class LocalConfig:
    """A packaged model to load in the executors: its folder, tag, labels' Neutral band and chunk size."""

    model_path: str
    tag: str
    band: tuple[float, float]
    chunk: int = 256


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class ServiceClient:
    """A keep-alive client of ``/classify`` with retries; :meth:`classify_chunks` runs chunks concurrently."""

    def __init__(self, config: ServiceConfig, *, sleep=time.sleep, jitter=random.random) -> None:
        import httpx

        self.config = config
        self._sleep = sleep
        self._jitter = jitter
        headers = {"Content-Type": "application/json"}
        if config.api_key is not None:
            headers["Authorization"] = f"Bearer {config.api_key.get()}"
        limits = httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency)
        self.http = httpx.Client(headers=headers, timeout=config.timeout_s, limits=limits)
        self._pool = None

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Wait before retry ``attempt`` (0-based): Retry-After when given, else exponential with equal jitter."""
        cap = self.config.backoff_max_s
        if retry_after is not None:
            return min(retry_after, cap)
        step = min(cap, self.config.backoff_s * 2 ** attempt)
        return step / 2 + step / 2 * self._jitter()

    def classify(self, texts: Sequence[str]) -> list[dict]:
        """One call (with retries) for ``texts``; the service's answers, checked."""
        import httpx

        config = self.config
        body = json.dumps({"texts": list(texts)}).encode()
        started = time.monotonic()
        for attempt in range(config.retries + 1):
            retry_after = None
            try:
                response = self.http.post(config.endpoint, content=body)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return check_answers(response, len(texts), config.endpoint)
                problem = f"HTTP {response.status_code}"
                if response.status_code not in RETRYABLE_STATUS:
                    raise ScoringError(f"scoring service {config.endpoint} answered {problem} (not retryable): "
                                       f"{response.text[:300]!r}")
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if attempt == config.retries:
                raise ScoringError(f"scoring service {config.endpoint} unavailable after {attempt + 1} attempts "
                                   f"in {time.monotonic() - started:.1f}s (last error: {problem})")
            wait = self.delay(attempt, retry_after)
            log.warning("scoring call to %s failed (%s); retry %d of %d in %.1fs", config.endpoint, problem,
                        attempt + 1, config.retries, wait)
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def submit(self, texts: Sequence[str]) -> list:
        """Queue ``texts`` as chunks of ``config.chunk`` (``concurrency`` calls in flight); one future per chunk,
        giving the chunk's answers and when they arrived (epoch seconds)."""
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="score")

        def one(chunk: Sequence[str]) -> tuple[list[dict], float]:
            return self.classify(chunk), time.time()

        size = self.config.chunk
        return [self._pool.submit(one, texts[i:i + size]) for i in range(0, len(texts), size)]

    def classify_chunks(self, texts: Sequence[str]) -> list[tuple[list[dict], float]]:
        """:meth:`submit`, waited for: per chunk, its answers and when they arrived."""
        return [future.result() for future in self.submit(texts)]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self.http.close()


def check_answers(response, expected: int, endpoint: str) -> list[dict]:
    """The JSON answers of a 200 response: a list of ``expected`` predictions, each with a known label."""
    try:
        answers = response.json()
    except ValueError:
        raise ScoringError(f"scoring service {endpoint} answered 200 with a body that is not JSON") from None
    if not isinstance(answers, list) or len(answers) != expected:
        got = len(answers) if isinstance(answers, list) else type(answers).__name__
        raise ScoringError(f"scoring service {endpoint} answered {got} predictions for {expected} texts")
    for answer in answers:
        if not isinstance(answer, dict) or answer.get("label") not in LABELS or not answer.get("model"):
            raise ScoringError(f"scoring service {endpoint} answered a prediction without a valid label: "
                               f"{str(answer)[:200]}")
    return answers


class LocalModel:
    """The packaged model inside a Python worker, answering like the service does."""

    def __init__(self, config: LocalConfig) -> None:
        from ml.predictor import load_predictor

        self.config = config
        started = time.perf_counter()
        self.predictor = load_predictor(config.model_path)
        self.labels = tuple(self.predictor.labels)
        log.info("loaded %s in %.1fs", config.tag, time.perf_counter() - started)

    def classify_cleaned(self, cleaned: Sequence[str]) -> list[dict]:
        import numpy as np

        from ml.predictor import decide

        answers = [{"label": "Neutral", "p_positive": None, "scores": None, "model": self.config.tag}] * len(cleaned)
        readable = [i for i, text in enumerate(cleaned) if text]
        positive = self.labels.index("positive")
        three = len(self.labels) > 2
        for start in range(0, len(readable), self.config.chunk):
            rows = readable[start:start + self.config.chunk]
            proba = self.predictor.predict_proba_cleaned([cleaned[i] for i in rows])
            labels = decide(proba, self.labels, self.config.band)
            for i, label, row in zip(rows, labels, np.round(proba, 6).tolist(), strict=True):
                answers[i] = {"label": label, "p_positive": row[positive], "model": self.config.tag,
                              "scores": dict(zip(self.labels, row, strict=True)) if three else None}
        return answers


def service_client(config: ServiceConfig) -> ServiceClient:
    """This worker's client for ``config`` (created once, kept alive across tasks)."""
    if config not in _CLIENTS:
        _CLIENTS[config] = ServiceClient(config)
    return _CLIENTS[config]


def local_model(config: LocalConfig) -> LocalModel:
    """This worker's loaded model for ``config`` (loaded once)."""
    if config not in _MODELS:
        _MODELS[config] = LocalModel(config)
    return _MODELS[config]


class PartitionScorer:
    """The ``mapInPandas`` function: each batch of posts comes back with its scores, row for row.

    With the service, the chunks of the next Arrow batch are queued while the current batch's are in flight, so
    the service always has work while Spark moves rows in and out of Python.
    """

    def __init__(self, config: ServiceConfig | LocalConfig) -> None:
        self.config = config

    def __call__(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        config = self.config
        if not isinstance(config, ServiceConfig):
            for batch in batches:
                answers = local_model(config).classify_cleaned(batch["clean_text"].fillna("").tolist())
                yield with_scores(batch, answers, [time.time()] * len(answers))
            return
        client = service_client(config)
        pending: list[tuple[pd.DataFrame, list]] = []
        for batch in batches:
            texts = batch["text"].fillna("").tolist()
            if config.max_chars:
                texts = [text[:config.max_chars] for text in texts]
            pending.append((batch, client.submit(texts)))
            if len(pending) > 1:
                yield self._collect(*pending.pop(0))
        for item in pending:
            yield self._collect(*item)

    def score(self, batch: pd.DataFrame) -> pd.DataFrame:
        """One batch, scored (what ``__call__`` does for each)."""
        return next(self(iter([batch])))

    @staticmethod
    def _collect(batch: pd.DataFrame, futures: list) -> pd.DataFrame:
        answers: list[dict] = []
        stamps: list[float] = []
        for future in futures:
            chunk_answers, at = future.result()
            answers.extend(chunk_answers)
            stamps.extend([at] * len(chunk_answers))
        return with_scores(batch, answers, stamps)


def with_scores(batch: pd.DataFrame, answers: list[dict], stamps: list[float]) -> pd.DataFrame:
    """``batch`` with ``label, p_positive, scores, model, scored_ts`` from the answers, row for row."""
    import pandas as pd

    out = batch.copy()
    out["label"] = [a["label"] for a in answers]
    out["p_positive"] = pd.Series([a.get("p_positive") for a in answers], dtype="float64", index=batch.index)
    out["scores"] = [a.get("scores") for a in answers]
    out["model"] = [a["model"] for a in answers]
    micros = pd.Series(stamps, index=batch.index, dtype="float64").mul(1e6).round().astype("int64")
    out["scored_ts"] = pd.to_datetime(micros, unit="us")  # naive UTC, whole microseconds (Spark's unit)
    return out
