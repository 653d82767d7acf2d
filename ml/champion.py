"""Which model a run ships: reading a run's leaderboard and choosing its champion (evaluation logic).

``ml.evaluate`` writes ``reports/<run>/leaderboard.json``; packaging (``serving.package``), the training DAG and
the dashboard read it back here and apply one rule to pick the model to serve (``SENTIMENT_CHAMPION_RULE``, see
:func:`select_champion`).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from ml.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from ml.settings import Settings

#: Families that count as transformers when choosing the champion.
TRANSFORMER_FAMILIES = frozenset({"bert", "roberta", "minilm"})
LEADERBOARD = "leaderboard.json"
#: The champion rules (``SENTIMENT_CHAMPION_RULE``); the first is the default.
RULES = ("three-class", "transformer", "accuracy")


def _number(row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _accuracy(row: dict[str, Any]) -> float | None:
    return _number(row, "accuracy")


def is_three_class(row: dict[str, Any]) -> bool:
    """Whether a leaderboard row is a model that answers Neutral by itself (three labels, argmax)."""
    return "neutral" in (row.get("labels") or ())


def select_champion(leaderboard: list[dict[str, Any]], rule: str = RULES[0]) -> dict[str, Any]:
    """The row to ship, by ``rule``:

    * ``three-class`` (default): the best three-class model by validation macro-averaged recall (ties: accuracy),
      when the run has one with that figure; else as ``transformer``. The stream answers Positive, Negative or
      Neutral, and macro recall is the three-class metric that does not reward ignoring a rare class.
    * ``transformer``: the best transformer by validation accuracy, else the best model overall.
    * ``accuracy``: the best validation accuracy, whatever the family or the classes.

    Rows without a numeric ``accuracy`` are ignored. Ties go to the higher ``f1``, then to the earlier row.

    Raises:
        ModelError: when no row has a validation accuracy.
        ConfigError: an unknown rule.
    """
    if rule not in RULES:
        raise ConfigError(f"champion rule must be one of {', '.join(RULES)}, not {rule!r}")
    scored = [row for row in leaderboard if _accuracy(row) is not None]
    if not scored:
        raise ModelError("the leaderboard has no model with a validation accuracy")

    def key(row: dict[str, Any]) -> tuple[float, float]:
        f1 = _number(row, "f1")
        return (_accuracy(row), -1.0 if f1 is None else f1)

    if rule == "three-class":
        three = [row for row in scored if is_three_class(row) and _number(row, "macro_recall") is not None]
        if three:
            return max(three, key=lambda row: (_number(row, "macro_recall"), *key(row)))
    if rule == "accuracy":
        return max(scored, key=key)
    transformers = [row for row in scored if row.get("family") in TRANSFORMER_FAMILIES]
    return max(transformers or scored, key=key)  # max keeps the first of equal keys


def read_leaderboard(settings: Settings) -> list[dict[str, Any]]:
    """The rows of ``reports/<run>/leaderboard.json``; a missing file is a :class:`ModelError` telling what to run."""
    path = settings.reports_dir / LEADERBOARD
    try:
        rows = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"no leaderboard at {path}: run `python -m ml evaluate` first, "
                         "or name the model with --model") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} is corrupt: {exc}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "model" in r for r in rows):
        raise ModelError(f"{path}: expected a JSON list of objects with a 'model' key")
    return rows
