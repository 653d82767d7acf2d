"""Class priors tuned for macro recall: a per-class offset on the log-probabilities, fitted on validation.

A model trained on imbalanced data (SemEval: 14% Negative) leans to its majority class even with a weighted loss;
macro-averaged recall, the metric three-class tweet sentiment is judged by, counts each class alike. ``tune``
searches one additive log-offset per class (the first class's held at 0) on the validation split and keeps the
offsets that maximise its macro recall, preferring the smallest among ties; ``apply`` turns a model's
probabilities ``p`` into ``p * exp(offset)``, renormalised: Bayes' rule with other class priors, so the answer stays
a probability distribution and its argmax is the label (see docs/models.md#tuned-class-priors).

``auto`` tunes three-class models only (two-class ones answer Neutral through their probability band instead);
``none`` never does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ml.errors import ConfigError

CLASS_PRIOR_CHOICES: tuple[str, ...] = ("auto", "none")
#: The searched offsets: -LIMIT..LIMIT in STEP, per class (two free classes: 41 x 41 candidates).
LIMIT, STEP = 2.0, 0.1
#: Fewer validation rows of any class than this and no offsets are tuned (too little to judge a class by).
MIN_ROWS_PER_CLASS = 10


def check_class_priors(mode: str) -> str:
    """``mode`` when it is one of :data:`CLASS_PRIOR_CHOICES`; else a :class:`ConfigError`."""
    if mode not in CLASS_PRIOR_CHOICES:
        raise ConfigError(f"class_priors must be one of {', '.join(CLASS_PRIOR_CHOICES)}, not {mode!r}")
    return mode


def wanted(mode: str, classes: Sequence[str]) -> bool:
    """Whether ``mode`` tunes offsets for a model of ``classes``."""
    return check_class_priors(mode) == "auto" and len(classes) >= 3


def macro_recall(truth, predicted, n_classes: int) -> float:
    """Mean over the classes present in ``truth`` (class indices) of the share of their rows ``predicted`` right."""
    import numpy as np

    recalls = [np.mean(predicted[truth == k] == k) for k in range(n_classes) if np.any(truth == k)]
    return float(np.mean(recalls)) if recalls else 0.0


def tune(proba, truth: Sequence[str], classes: Sequence[str]) -> dict[str, float] | None:
    """The offsets (``{class: log-offset}``) that maximise macro recall of ``proba`` against ``truth``.

    Args:
        proba: Validation probabilities, one column per class of ``classes``.
        truth: The validation labels (class names).
        classes: The model's classes in column order.

    Returns:
        The offsets, or ``None`` when a class has under :data:`MIN_ROWS_PER_CLASS` validation rows or no
        offsets beat plain argmax.
    """
    import numpy as np

    classes = list(classes)
    y = np.array([classes.index(label) for label in truth])
    if len(classes) < 2 or any(np.sum(y == k) < MIN_ROWS_PER_CLASS for k in range(len(classes))):
        return None
    logp = np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0))
    grid = np.round(np.arange(-LIMIT, LIMIT + STEP / 2, STEP), 6)
    free = len(classes) - 1
    # Every combination of offsets for the free classes, smallest total first so ties keep the smallest.
    mesh = np.stack(np.meshgrid(*([grid] * free), indexing="ij"), axis=-1).reshape(-1, free)
    mesh = mesh[np.argsort(np.abs(mesh).sum(axis=1), kind="stable")]
    base = macro_recall(y, logp.argmax(axis=1), len(classes))
    best, best_score = np.zeros(free), base
    for offsets in mesh:
        predicted = (logp + np.concatenate([[0.0], offsets])).argmax(axis=1)
        score = macro_recall(y, predicted, len(classes))
        if score > best_score + 1e-12:
            best, best_score = offsets, score
    if best_score == base:
        return None
    return {c: float(v) for c, v in zip(classes, np.concatenate([[0.0], best]), strict=True)}


def apply(proba, classes: Sequence[str], offsets: Mapping[str, float] | None):
    """``proba`` with each class's probability times ``exp(offset)``, rows renormalised; unchanged without offsets."""
    if not offsets:
        return proba
    import numpy as np

    proba = np.asarray(proba, dtype=np.float64)
    if proba.size == 0:
        return proba
    scaled = proba * np.exp(np.array([float(offsets.get(c, 0.0)) for c in classes]))
    return scaled / scaled.sum(axis=1, keepdims=True)
