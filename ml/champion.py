"""Which model a run ships: reading a run's leaderboard and choosing its champion (evaluation logic).

``ml.evaluate`` writes ``reports/<run>/leaderboard.json``; packaging (``serving.package``), the training DAG and
the dashboard read it back here and apply one rule to pick the model to serve.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from ml.errors import ModelError

if TYPE_CHECKING:
    from ml.settings import Settings

#: Families that count as transformers when choosing the champion.
TRANSFORMER_FAMILIES = frozenset({"bert", "roberta", "minilm"})
LEADERBOARD = "leaderboard.json"


def _accuracy(row: dict[str, Any]) -> float | None:
    value = row.get("accuracy")
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def select_champion(leaderboard: list[dict[str, Any]]) -> dict[str, Any]:
    """The row to ship: the best transformer by validation accuracy, else the best model overall.

    Rows without a numeric ``accuracy`` are ignored. Ties go to the higher ``f1``, then to the earlier row.

    Raises:
        ModelError: when no row has a validation accuracy.
    """
    scored = [row for row in leaderboard if _accuracy(row) is not None]
    if not scored:
        raise ModelError("the leaderboard has no model with a validation accuracy")
    transformers = [row for row in scored if row.get("family") in TRANSFORMER_FAMILIES]
    pool = transformers or scored

    def key(row: dict[str, Any]) -> tuple[float, float]:
        f1 = row.get("f1")
        return (_accuracy(row), float(f1) if isinstance(f1, int | float) and not math.isnan(f1) else -1.0)

    return max(pool, key=key)  # max keeps the first of equal keys


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
