"""Drift of live predictions against the champion's validation set: profiles and two named distances.

A *profile* summarises a set of predictions: the counts of each displayed label (Positive, Negative, Neutral) and
a histogram of P(positive) over :data:`SCORE_BINS` equal bins of [0, 1]. Evaluation stores the validation
profile of every model (``reference`` in the leaderboard row, copied into the packaged model's metadata); the
daily report and the dashboard profile the stream's answers and compare:

* **PSI** (population stability index) of the score histograms, with a small floor on empty bins. The usual
  reading: under 0.1 no shift, 0.1-0.2 moderate, over 0.2 a significant shift (the default threshold).
* **Jensen-Shannon distance** (base 2, in [0, 1]) of the label distributions; the default threshold is 0.1.

Pure functions over plain lists and dicts, so the Spark job, the report DAG and the dashboard share them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

LABELS = ("Negative", "Neutral", "Positive")
SCORE_BINS = 10
#: Floor of a bin's share in PSI (an empty bin would make the index infinite).
PSI_FLOOR = 1e-4


def score_bin(p: float) -> int:
    """The histogram bin of a probability (1.0 falls in the last bin)."""
    return min(SCORE_BINS - 1, max(0, int(p * SCORE_BINS)))


def profile(labels: Iterable[str], p_positive: Iterable[float | None]) -> dict[str, Any]:
    """Label counts and the P(positive) histogram of a set of answers (``None`` probabilities are not binned)."""
    counts = {label: 0 for label in LABELS}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    hist = [0] * SCORE_BINS
    for p in p_positive:
        if p is not None and not (isinstance(p, float) and math.isnan(p)):
            hist[score_bin(float(p))] += 1
    return {"labels": counts, "score_hist": hist, "n": sum(counts.values())}


def _shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    return [c / total for c in counts] if total > 0 else []


def psi(expected: Sequence[float], actual: Sequence[float], floor: float = PSI_FLOOR) -> float | None:
    """Population stability index of two histograms over the same bins; ``None`` when either is empty."""
    e, a = _shares(expected), _shares(actual)
    if not e or not a:
        return None
    return float(sum((max(ai, floor) - max(ei, floor)) * math.log(max(ai, floor) / max(ei, floor))
                     for ei, ai in zip(e, a, strict=True)))


def js_distance(p: Sequence[float], q: Sequence[float]) -> float | None:
    """Jensen-Shannon distance (base 2, 0 = same distribution, 1 = disjoint); ``None`` when either is empty."""
    ps, qs = _shares(p), _shares(q)
    if not ps or not qs:
        return None

    def kl(x: Sequence[float], y: Sequence[float]) -> float:
        return sum(xi * math.log2(xi / yi) for xi, yi in zip(x, y, strict=True) if xi > 0)

    m = [(a + b) / 2 for a, b in zip(ps, qs, strict=True)]
    return float(math.sqrt(max(0.0, (kl(ps, m) + kl(qs, m)) / 2)))


def compare(reference: Mapping[str, Any], live: Mapping[str, Any], *, psi_threshold: float = 0.2,
            js_threshold: float = 0.1) -> dict[str, Any]:
    """PSI of the score histograms and JS distance of the label distributions, and whether either passes its
    threshold (``drift``; ``None`` when there is nothing to compare)."""
    labels = sorted(set(reference.get("labels", {})) | set(live.get("labels", {})))
    ref_labels = [reference.get("labels", {}).get(k, 0) for k in labels]
    live_labels = [live.get("labels", {}).get(k, 0) for k in labels]
    score_psi = psi(reference.get("score_hist") or [], live.get("score_hist") or [])
    label_js = js_distance(ref_labels, live_labels)
    flags = [score_psi > psi_threshold if score_psi is not None else None,
             label_js > js_threshold if label_js is not None else None]
    known = [f for f in flags if f is not None]
    return {"psi": None if score_psi is None else round(score_psi, 6),
            "js": None if label_js is None else round(label_js, 6),
            "psi_threshold": psi_threshold, "js_threshold": js_threshold,
            "drift": any(known) if known else None, "n_reference": reference.get("n", 0), "n_live": live.get("n", 0)}
