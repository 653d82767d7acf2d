"""The BentoML service: tweet texts in, sentiment labels out.

Run it with ``cd serving && bentoml serve`` or ``bentoml serve serving.service:TweetSentiment`` from the repository
root. It loads the model ``tweet-sentiment:latest`` from the BentoML model store (``SENTIMENT_MODEL_TAG`` picks
another) with :func:`ml.predictor.load_predictor`, so it works the same for every model family.

APIs (JSON in, JSON out):

* ``POST /classify`` ``{"texts": ["...", ...]}`` -> one prediction per text. Batchable: concurrent requests are
  merged into one model call (adaptive batching, ``SENTIMENT_MAX_BATCH_SIZE`` / ``SENTIMENT_MAX_LATENCY_MS``).
* ``POST /predict`` ``{"text": "..."}`` -> one prediction.

A prediction is ``{"label": "Positive"|"Negative"|"Neutral", "p_positive": float, "scores": null | {class: prob},
"model": "<tag>"}``; ``scores`` holds the three class probabilities of a three-class model (a binary model's are
``1 - p_positive`` and ``p_positive``). Texts are read by the model with :mod:`ml.text`, the cleaner used in training; a text with
nothing left after that cleaning (empty, blank, only a URL, mention or emoji) gets the defined answer
``{"label": "Neutral", "p_positive": null, "scores": null}`` instead of a guess from the model's bias.

Limits, bad input and the optional API key are handled by :class:`serving.guard.RequestGuard` (see there).
Settings come from the ``service`` section of :mod:`ml.settings`, read once at import (BentoML fixes the batching
parameters and the bind address when the service class is declared).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections import Counter
from typing import Annotated, Literal

import bentoml
from bentoml.validators import ContentType
from pydantic import BaseModel, Field

from ml.settings import get_settings
from serving import MODEL_NAME
from serving.admission import Admission
from serving.guard import RequestGuard

log = logging.getLogger(__name__)

SETTINGS = get_settings()
CONFIG = SETTINGS.service
#: The Neutral band the service applies: the packaged model's, unless SENTIMENT_NEUTRAL_LOW/HIGH are set.
BAND_OVERRIDE = SETTINGS.model.neutral_band if SETTINGS.is_set("neutral_low") else None
#: Decimals of the probabilities in answers (the label is decided on the unrounded value).
DECIMALS = 6
#: Where the guard sends big /classify requests (see TweetSentiment.classify_bulk); not in the public spec.
BULK_ROUTE = "/classify_bulk"


def _default_store() -> None:
    """Point BentoML at the platform's model store (``$SENTIMENT_HOME/bentoml``) unless BENTOML_HOME is set.

    ``python -m serving package`` writes there. ``bentoml serve`` has already opened its default store (``~/bentoml``)
    when it imports this module, so that store is replaced; its workers inherit the variable. A Bento's own
    store (``bentoml serve <bento>``) is left alone, and in a container BENTOML_HOME is always set.
    """
    if SETTINGS.is_set("bentoml_home"):
        return
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.models.model import ModelStore

    home = SETTINGS.bentoml_home
    os.environ["BENTOML_HOME"] = str(home)
    default_dir = os.path.realpath(BentoMLContainer.model_store_dir.get())
    if os.path.realpath(BentoMLContainer.model_store.get()._path) == default_dir:
        (home / "models").mkdir(parents=True, exist_ok=True)
        BentoMLContainer.model_store.set(ModelStore(home / "models"))


_default_store()
# OpenMP threads (torch, some scikit-learn kernels) busy-wait between parallel regions by default. In a service
# they share the CPUs with the HTTP event loop and other processes, and a spinning thread that loses its core
# stalls every barrier: on 2 shared cores a MiniLM call went from 10 ms to 480 ms. Sleep instead (read by the
# OpenMP runtime when the model's framework is first imported, in TweetSentiment.__init__).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@functools.cache
def _predictions_counter():
    """Prometheus counter of answers by label, created once per worker after BentoML set up metrics."""
    import prometheus_client

    return prometheus_client.Counter("sentiment_predictions", "Texts classified, by label.", ["label", "model"])


class Prediction(BaseModel):
    """The answer for one text."""

    label: Literal["Positive", "Negative", "Neutral"] = Field(description="Sentiment of the text.")
    p_positive: float | None = Field(
        description="P(positive) from the model, rounded to 6 decimals; null when nothing was left of the text "
                    "after cleaning."
    )
    scores: dict[str, float] | None = Field(
        description="For a three-class model, the probability of each class (negative, neutral, positive); null "
                    "for a binary model (P(negative) is 1 - p_positive) and when nothing was left of the text."
    )
    model: str = Field(description="Tag of the model that answered.")


@bentoml.service(
    name=MODEL_NAME,
    workers=CONFIG.workers,
    traffic={"timeout": CONFIG.timeout_s},
    http={"host": CONFIG.host, "port": CONFIG.port},
    metrics={"enabled": True},
    logging={"access": {"enabled": CONFIG.access_log}},
)
class TweetSentiment:
    """Classifies tweets with the packaged model; never branches on the model family."""

    model = bentoml.models.BentoModel(CONFIG.model_tag)

    def __init__(self) -> None:
        from ml.predictor import load_predictor

        stored = self.model
        self.tag = str(stored.tag)
        meta = stored.info.metadata
        self.predictor = load_predictor(stored.path, cpu_bf16=SETTINGS.model.cpu_bf16)
        self.labels: tuple[str, ...] = tuple(self.predictor.labels)
        band = BAND_OVERRIDE or tuple(meta.get("neutral_band") or (0.4, 0.6))
        self.band: tuple[float, float] = (float(band[0]), float(band[1]))
        self.predictor.predict_proba(["warm up the model"])  # first-call costs are paid before /readyz
        log.info("serving %s (family %s, labels %s, Neutral band %s)", self.tag, meta.get("family"),
                 self.labels, self.band)

    @bentoml.api(batchable=True, max_batch_size=CONFIG.max_batch_size, max_latency_ms=CONFIG.max_latency_ms)
    def classify(self, texts: list[str]) -> Annotated[list[Prediction], ContentType("application/json")]:
        """Classify a list of tweets: one prediction per text, in order."""
        # The explicit content type spares BentoML from rebuilding the output's JSON schema on every response.
        return self.score(texts)

    @bentoml.api(route=BULK_ROUTE)
    def classify_bulk(self, texts: list[str]) -> Annotated[list[Prediction], ContentType("application/json")]:
        """Internal: the guard sends here ``/classify`` requests of at least SENTIMENT_BULK_TEXTS texts. They are a
        batch already, so they skip the batching queue, and their answer is encoded once, here."""
        from starlette.responses import Response

        return Response(json.dumps(self.answers(texts), separators=(",", ":")), media_type="application/json")

    @bentoml.api
    def predict(self, text: str) -> Prediction:
        """Classify one tweet."""
        return self.score([text])[0]

    def score(self, texts: list[str]) -> list[Prediction]:
        """One :class:`Prediction` per text (the answers of :meth:`answers`, unvalidated: they are built right)."""
        return [Prediction.model_construct(**answer) for answer in self.answers(texts)]

    def answers(self, texts: list[str]) -> list[dict]:
        """The shared logic of the APIs (an API must not call a batchable API of its own service): one
        prediction, as a plain dict, per text.

        Texts are cleaned once, here, with :func:`ml.text.clean` (the training cleaner): texts with nothing left
        get the defined Neutral answer and the model reads the rest as cleaned text.
        """
        import numpy as np

        from ml.predictor import decide
        from ml.text import clean

        cleaned = [clean(text) for text in texts]
        readable = [i for i, text in enumerate(cleaned) if text]
        empty = {"label": "Neutral", "p_positive": None, "scores": None, "model": self.tag}
        answers = [empty] * len(texts)
        if readable:
            proba = self.predictor.predict_proba_cleaned([cleaned[i] for i in readable])
            labels = decide(proba, self.labels, self.band)
            positive = self.labels.index("positive")
            three_class = len(self.labels) > 2
            # Six decimals: plenty for any consumer, and JSON encoding of short floats is twice as fast.
            for i, label, row in zip(readable, labels, np.round(proba, DECIMALS).tolist(), strict=True):
                scores = dict(zip(self.labels, row, strict=True)) if three_class else None
                answers[i] = {"label": label, "p_positive": row[positive], "scores": scores, "model": self.tag}
        counter = _predictions_counter()
        for label, n in Counter(answer["label"] for answer in answers).items():
            counter.labels(label=label, model=self.tag).inc(n)
        return answers


def _openapi() -> dict:
    """The spec ``/docs.json`` serves: BentoML's, with the scoring routes stated exactly (serving.contract)."""
    from serving.contract import openapi

    return openapi(TweetSentiment.openapi_spec.asdict(), max_texts=CONFIG.max_texts, max_chars=CONFIG.max_chars,
                   body_limit=CONFIG.body_limit, keyed=CONFIG.api_key is not None)


TweetSentiment.add_asgi_middleware(
    RequestGuard,
    routes={"/classify": "texts", "/predict": "text"},
    bulk={"/classify": (BULK_ROUTE, CONFIG.bulk_texts)},
    max_texts=CONFIG.max_texts,
    max_chars=CONFIG.max_chars,
    max_body_bytes=CONFIG.body_limit,
    api_key=CONFIG.api_key.get_secret_value() if CONFIG.api_key else None,
    admission=Admission(max_queue_texts=CONFIG.max_queue_texts, max_queue_s=CONFIG.max_queue_s,
                        min_texts=CONFIG.max_batch_size),
    openapi=_openapi,
)
