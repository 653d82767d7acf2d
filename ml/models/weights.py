"""Class weights for the loss of every family: how much each training example counts, by its class.

``balanced`` gives each class the weight ``n / (k * count)`` (scikit-learn's ``class_weight="balanced"``), so every
class carries the same total weight and a rare class (SemEval's 14% Negative) is not ignored; the weights of all
rows sum to ``n``, so a weighted mean loss stays on the scale of the plain one. ``auto`` weighs three-class data
whose largest class is over :data:`IMBALANCE_RATIO` times its smallest, and nothing else (Sentiment140 is
balanced). Standard library only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ml.errors import ConfigError

CLASS_WEIGHT_CHOICES: tuple[str, ...] = ("auto", "balanced", "none")
#: ``auto`` weighs three-class data whose largest class is more than this many times its smallest.
IMBALANCE_RATIO = 1.5


def check_class_weight(mode: str) -> str:
    """``mode`` when it is one of :data:`CLASS_WEIGHT_CHOICES`; else a :class:`ConfigError`."""
    if mode not in CLASS_WEIGHT_CHOICES:
        raise ConfigError(f"class_weight must be one of {', '.join(CLASS_WEIGHT_CHOICES)}, not {mode!r}")
    return mode


def class_weights(labels: Sequence[str], classes: Sequence[str], mode: str) -> dict[str, float] | None:
    """The weight of each class of ``classes`` for training labels ``labels``; ``None`` for an unweighted loss.

    Args:
        labels: The training labels (class names).
        classes: The model's classes, in its column order.
        mode: ``balanced``, ``none`` or ``auto`` (see the module docstring).
    """
    check_class_weight(mode)
    counts = Counter(labels)
    present = [c for c in classes if counts[c]]
    if mode == "none" or not present:
        return None
    if mode == "auto":
        sizes = [counts[c] for c in present]
        if len(classes) < 3 or max(sizes) <= IMBALANCE_RATIO * min(sizes):
            return None
    n, k = sum(counts[c] for c in present), len(present)
    return {c: round(n / (k * counts[c]), 6) if counts[c] else 1.0 for c in classes}


def row_weights(labels: Sequence[str], weights: dict[str, float] | None):
    """Each row's weight (a float32 numpy array), or ``None`` without weights."""
    if weights is None:
        return None
    import numpy as np

    return np.array([weights[label] for label in labels], dtype="float32")
