"""Serving: package a trained model into the BentoML model store and serve it over HTTP.

* :mod:`serving.package` -- ``package_model`` (``python -m ml package``), ``select_champion``, ``build_bento``.
* :mod:`serving.service` -- the BentoML service ``TweetSentiment`` (``/classify``, ``/predict``).
* :mod:`serving.guard` -- the ASGI middleware for the API key, request limits and malformed input.
* :mod:`serving.config` -- the service's ``SENTIMENT_*`` settings.

Importing this package is cheap: BentoML is imported only by the service module and inside functions.
"""

from serving.config import MODEL_NAME

__all__ = ["MODEL_NAME"]
