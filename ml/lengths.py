"""Choose a sequence length from the length distribution of the training texts.

Sequence models pad or truncate every text to one length. The write-up's rule: measure the distribution and take
the smallest length that covers at least 99% of the tweets, so that 1% at most are truncated. Pure Python, so the
benchmark scripts can use it without numpy or pandas.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

#: Share of the training texts a chosen length must cover completely.
COVERAGE = 0.99


def covering_length(lengths: Iterable[int], coverage: float = COVERAGE, *, minimum: int = 1,
                    cap: int | None = None, multiple: int = 1) -> int:
    """The smallest length ``L`` such that at least ``coverage`` of ``lengths`` are ``<= L``.

    Args:
        lengths: Length of each text (tokens, word pieces, ...).
        coverage: Share of texts that must fit, in ``(0, 1]``.
        minimum: Never return less than this (an empty corpus gives ``minimum`` too).
        cap: Never return more than this (memory and speed bound for very long outliers).
        multiple: Round up to a multiple of this (8 suits tensor cores), before applying ``cap``.

    Returns:
        The chosen length.

    Example:
        >>> covering_length([3] * 99 + [50], coverage=0.99)
        3
        >>> covering_length([3] * 98 + [50, 50], coverage=0.99, multiple=8, cap=32)
        32
    """
    if not 0 < coverage <= 1:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    ordered = sorted(int(n) for n in lengths)
    if not ordered:
        length = minimum
    else:
        # Index of the element at or below which `coverage` of the data lies.
        k = max(math.ceil(coverage * len(ordered)) - 1, 0)
        length = max(ordered[k], minimum)
    if multiple > 1:
        length = -(-length // multiple) * multiple
    if cap is not None:
        length = min(length, cap)
    return length


def coverage_of(lengths: Iterable[int], length: int) -> float:
    """Share of ``lengths`` that fit into ``length`` (1.0 for an empty input)."""
    values = [int(n) for n in lengths]
    return sum(n <= length for n in values) / len(values) if values else 1.0
