"""Drift profiles and distances: PSI of score histograms, Jensen-Shannon distance of label distributions."""

from __future__ import annotations

import math
import random

import pytest

from ml.drift import SCORE_BINS, compare, js_distance, profile, psi, score_bin


def test_profile_counts_labels_and_bins_scores():
    prof = profile(["Positive", "Negative", "Neutral", "Positive"], [0.95, 0.05, None, 1.0])
    assert prof["labels"] == {"Negative": 1, "Neutral": 1, "Positive": 2} and prof["n"] == 4
    assert sum(prof["score_hist"]) == 3 and len(prof["score_hist"]) == SCORE_BINS
    assert prof["score_hist"][0] == 1 and prof["score_hist"][-1] == 2  # 1.0 falls in the last bin
    assert [score_bin(p) for p in (0.0, 0.099, 0.1, 0.5, 0.999)] == [0, 0, 1, 5, 9]


def test_identical_distributions_have_no_drift():
    ref = profile(["Positive"] * 50 + ["Negative"] * 50, [0.9] * 50 + [0.1] * 50)
    result = compare(ref, ref)
    assert result["psi"] == pytest.approx(0.0) and result["js"] == pytest.approx(0.0) and result["drift"] is False


def test_a_shift_passes_the_thresholds():
    rng = random.Random(0)
    ref = profile(["Positive"] * 500 + ["Negative"] * 500, [rng.random() for _ in range(1000)])
    live = profile(["Negative"] * 900 + ["Positive"] * 100, [rng.random() * 0.3 for _ in range(1000)])
    result = compare(ref, live)
    assert result["psi"] > 0.2 and result["js"] > 0.1 and result["drift"] is True
    mild = profile(["Positive"] * 520 + ["Negative"] * 480, [rng.random() for _ in range(1000)])
    assert compare(ref, mild)["drift"] is False


def test_known_values_and_empty_inputs():
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0)   # disjoint
    assert js_distance([1, 1], [1, 1]) == pytest.approx(0.0)
    # two bins whose shares move from (0.5, 0.5) to (0.75, 0.25)
    assert psi([1, 1], [3, 1]) == pytest.approx((0.75 - 0.5) * math.log(1.5) + (0.25 - 0.5) * math.log(0.5))
    assert psi([], [1]) is None and js_distance([0, 0], [1, 1]) is None
    assert compare({"labels": {}, "score_hist": []}, profile([], []))["drift"] is None
