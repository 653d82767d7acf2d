"""Serving: package a trained model into the BentoML model store and serve it over HTTP.

* :mod:`serving.package` -- ``package_model`` and ``build_bento`` (``python -m serving package|build``).
* :mod:`serving.service` -- the BentoML service ``TweetSentiment`` (``/classify``, ``/predict``).
* :mod:`serving.guard` -- the ASGI middleware for the API key, request limits and malformed input.
* :mod:`serving.launch` -- a real ``bentoml serve`` in a subprocess (tests, benchmarks, the platform).

Importing this package is cheap: BentoML is imported only by the service module and inside functions. The
service's settings are the ``service`` section of :mod:`ml.settings`.
"""

#: Name of the model in the BentoML model store (the default ``SENTIMENT_MODEL_TAG`` is ``<MODEL_NAME>:latest``).
MODEL_NAME = "tweet-sentiment"

__all__ = ["MODEL_NAME"]
