"""The service's HTTP contract as the OpenAPI spec states it: every status code the routes answer, with the error
body's schema, the request limits, nullable fields, and the API key when one is set.

BentoML generates ``/docs.json`` from the Python signatures, which know nothing of the guard in front of the app
(401, 413, 415, 422, the busy 503), the limits, or that ``p_positive`` and ``scores`` may be null. :func:`openapi`
takes BentoML's spec and states the two scoring routes exactly; :class:`serving.guard.RequestGuard` serves the
result at ``/docs.json``. A schemathesis run with every check (tests/serving/test_serving_contract.py) holds the
spec and the service to each other.
"""

from __future__ import annotations

import copy
from typing import Any

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "What was wrong, naming the limit or field."}},
    "description": "The body of every error answer.",
}
PREDICTION = {
    "type": "object",
    "required": ["label", "p_positive", "scores", "model"],
    "properties": {
        "label": {"type": "string", "enum": ["Positive", "Negative", "Neutral"], "description": "Sentiment of the text."},
        "p_positive": {"type": "number", "nullable": True, "minimum": 0, "maximum": 1,
                       "description": "P(positive), rounded to 6 decimals; null when nothing was left of the text after "
                                      "cleaning (then the label is Neutral)."},
        "scores": {"type": "object", "nullable": True, "additionalProperties": {"type": "number"},
                   "description": "A three-class model's probability of each class (negative, neutral, positive); "
                                  "null for a binary model and when nothing was left of the text."},
        "model": {"type": "string", "description": "Tag of the model that answered."},
    },
    "description": "The answer for one text.",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.",
                               "schema": {"type": "integer", "minimum": 1}}}


def _error(description: str, headers: dict | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description,
                              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    if headers:
        answer["headers"] = headers
    return answer


def _route(body: dict[str, Any], ok: dict[str, Any], *, keyed: bool, limits: str) -> dict[str, dict[str, Any]]:
    responses = {
        "200": {"description": "The prediction(s).", "content": {"application/json": {"schema": ok}}},
        "400": _error("The body is not UTF-8, or not JSON."),
        "413": _error(f"The body or the number of texts is over the limit ({limits})."),
        "415": _error("The body is not JSON: another Content-Type, charset or Content-Encoding."),
        "422": _error("The JSON does not have the API's shape, or a text is over the character limit."),
        "503": _error("The service is busy (its queue is full) or still starting: retry after Retry-After seconds.",
                      RETRY_AFTER),
        "500": _error("An unexpected error; the server's log has the details."),
    }
    if keyed:
        responses["401"] = _error("The API key is missing or wrong: send `Authorization: Bearer <key>`.",
                                  {"WWW-Authenticate": {"schema": {"type": "string"}}})
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": responses}


def openapi(spec: dict[str, Any], *, max_texts: int, max_chars: int, body_limit: int, keyed: bool) -> dict[str, Any]:
    """BentoML's spec with ``/classify`` and ``/predict`` stated exactly (limits, every status, nullable fields)."""
    spec = copy.deepcopy(spec)
    text = {"type": "string", "maxLength": max_chars}
    limits = f"{body_limit} bytes per body, {max_texts} texts per request"
    routes = {
        "/classify": _route({"type": "object", "required": ["texts"], "additionalProperties": False,
                             "properties": {"texts": {"type": "array", "items": text, "maxItems": max_texts}}},
                            {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}},
                            keyed=keyed, limits=limits),
        "/predict": _route({"type": "object", "required": ["text"], "additionalProperties": False,
                            "properties": {"text": text}},
                           {"$ref": "#/components/schemas/Prediction"}, keyed=keyed, limits=limits),
    }
    for path, parts in routes.items():
        operation = spec.setdefault("paths", {}).setdefault(path, {}).setdefault("post", {})
        operation.update(parts)
        if keyed:
            operation["security"] = [{"apiKey": []}]
    for path in list(spec.get("paths", {})):
        if path.endswith("_bulk"):  # internal routes the guard uses; clients call /classify
            del spec["paths"][path]
    components = spec.setdefault("components", {})
    components.setdefault("schemas", {}).update({"Prediction": PREDICTION, "Error": ERROR})
    if keyed:
        components.setdefault("securitySchemes", {})["apiKey"] = {"type": "http", "scheme": "bearer",
                                                                   "description": "SENTIMENT_API_KEY"}
    spec.setdefault("info", {})["description"] = (
        "Classify tweets as Positive, Negative or Neutral. `POST /classify` takes a list of texts (batched with "
        "concurrent requests), `POST /predict` one text. A binary model's P(positive) inside the Neutral band means "
        "Neutral; a text with nothing left after cleaning is Neutral with null probabilities.")
    return spec
