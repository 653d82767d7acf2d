"""Pure functions over the small frames of :mod:`serving.dashboard.queries`: timelines, shares, rolling means.

Everything here works on at most a few thousand rows (buckets x keywords x labels), so plain pandas is enough.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from ml.drift import LABELS

#: Label order on the page (and in the charts' colour scale).
DISPLAY_LABELS = ("Positive", "Negative", "Neutral")
NO_KEYWORD = "(none)"


def _select(series: pd.DataFrame, keywords: list[str] | None) -> pd.DataFrame:
    frame = series.assign(keyword=series["keyword"].fillna(NO_KEYWORD))
    return frame if not keywords else frame[frame["keyword"].isin(keywords)]


def buckets(start: datetime, end: datetime, bucket_s: int) -> pd.DatetimeIndex:
    """Every bucket start of the window ``[start, end)``, in UTC."""
    return pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=f"{bucket_s}s", inclusive="left",
                         name="bucket").astype("datetime64[us, UTC]")


def timeline(series: pd.DataFrame, start: datetime, end: datetime, bucket_s: int, *,
             keywords: list[str] | None = None, rolling: int = 5) -> pd.DataFrame:
    """One row per bucket of the window (empty buckets included) for the chosen keywords (all when ``None``).

    Columns: a count per label, ``total``, ``share_<label>`` (0..1, NaN in an empty bucket), ``mean_p`` (mean
    P(positive) of the bucket) and ``rolling_p`` (mean P(positive) over the last ``rolling`` buckets, weighted by
    the posts that have one).
    """
    frame = _select(series, keywords)
    counts = frame.pivot_table(index="bucket", columns="label", values="n", aggfunc="sum", fill_value=0)
    sums = frame.groupby("bucket")[["sum_p", "n_p"]].sum()
    index = buckets(start, end, bucket_s)
    counts = counts.reindex(index=index, fill_value=0)
    for label in (*DISPLAY_LABELS, *[c for c in counts.columns if c not in DISPLAY_LABELS]):
        if label not in counts.columns:
            counts[label] = 0
    out = counts[[*DISPLAY_LABELS]].astype("int64").copy()
    out["total"] = counts.sum(axis=1).astype("int64")
    for label in DISPLAY_LABELS:
        out[f"share_{label}"] = out[label] / out["total"].where(out["total"] > 0)
    sums = sums.reindex(index=index, fill_value=0)
    out["mean_p"] = sums["sum_p"] / sums["n_p"].where(sums["n_p"] > 0)
    window = sums.rolling(rolling, min_periods=1).sum()
    out["rolling_p"] = window["sum_p"] / window["n_p"].where(window["n_p"] > 0)
    return out.reset_index()


def keyword_totals(series: pd.DataFrame, keywords: list[str] | None = None) -> pd.DataFrame:
    """One row per keyword, busiest first: ``posts``, a count and a share per label, ``mean_p``."""
    frame = _select(series, keywords)
    columns = ["keyword", "posts", *DISPLAY_LABELS, *[f"share_{lab}" for lab in DISPLAY_LABELS], "mean_p"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    counts = frame.pivot_table(index="keyword", columns="label", values="n", aggfunc="sum", fill_value=0)
    for label in DISPLAY_LABELS:
        if label not in counts.columns:
            counts[label] = 0
    sums = frame.groupby("keyword")[["sum_p", "n_p"]].sum()
    out = pd.DataFrame(index=counts.index)
    out["posts"] = counts.sum(axis=1).astype("int64")
    for label in DISPLAY_LABELS:
        out[label] = counts[label].astype("int64")
    for label in DISPLAY_LABELS:
        out[f"share_{label}"] = out[label] / out["posts"].where(out["posts"] > 0)
    out["mean_p"] = sums["sum_p"] / sums["n_p"].where(sums["n_p"] > 0)
    return out.reset_index().sort_values(["posts", "keyword"], ascending=[False, True])[columns].reset_index(drop=True)


def overall(series: pd.DataFrame, keywords: list[str] | None = None) -> dict[str, float | int | None]:
    """Totals of the window: ``posts``, a count and a share per label, ``mean_p``."""
    frame = _select(series, keywords)
    posts = int(frame["n"].sum())
    out: dict[str, float | int | None] = {"posts": posts}
    for label in DISPLAY_LABELS:
        out[label] = int(frame.loc[frame["label"] == label, "n"].sum())
        out[f"share_{label}"] = out[label] / posts if posts else None
    n_p = int(frame["n_p"].sum())
    out["mean_p"] = float(frame["sum_p"].sum()) / n_p if n_p else None
    return out


def keyword_shares(series: pd.DataFrame, start: datetime, end: datetime, bucket_s: int, *,
                   keywords: list[str] | None = None, top: int = 10, rolling: int = 1) -> pd.DataFrame:
    """Long frame for a chart of each keyword over time: ``bucket``, ``keyword``, ``posts``, ``share_Positive``
    (over the last ``rolling`` buckets), ``mean_p``; the ``top`` busiest keywords of the window."""
    frame = _select(series, keywords)
    busiest = frame.groupby("keyword")["n"].sum().sort_values(ascending=False).head(top).index.tolist()
    rows = []
    for keyword in busiest:
        line = timeline(frame[frame["keyword"] == keyword], start, end, bucket_s, rolling=1)
        window = line[["Positive", "total"]].rolling(rolling, min_periods=1).sum()
        rows.append(pd.DataFrame({"bucket": line["bucket"], "keyword": keyword, "posts": line["total"],
                                  "share_Positive": window["Positive"] / window["total"].where(window["total"] > 0),
                                  "mean_p": line["mean_p"]}))
    if not rows:
        return pd.DataFrame(columns=["bucket", "keyword", "posts", "share_Positive", "mean_p"])
    return pd.concat(rows, ignore_index=True)


def long_counts(line: pd.DataFrame) -> pd.DataFrame:
    """A :func:`timeline` as long rows (``bucket``, ``label``, ``posts``, ``share``) for a stacked chart."""
    rows = [pd.DataFrame({"bucket": line["bucket"], "label": label, "posts": line[label],
                          "share": line[f"share_{label}"]}) for label in DISPLAY_LABELS]
    return pd.concat(rows, ignore_index=True)


def format_scores(scores) -> str:
    """A three-class model's scores as ``Positive 0.71 · Negative 0.10 · Neutral 0.19`` (empty for binary)."""
    if isinstance(scores, dict):
        values = scores
    elif isinstance(scores, list | tuple):  # a map read as key/value pairs
        values = dict(scores)
    else:  # None, NaN or NA: a binary model's answer
        return ""
    order = [lab for lab in LABELS if lab in values] + [k for k in values if k not in LABELS]
    return " · ".join(f"{k} {float(values[k]):.2f}" for k in order)


def profile_shares(reference: dict | None, live: dict | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two long frames for side-by-side bars of two :mod:`ml.drift` profiles: label shares (``label``,
    ``profile``, ``share``, ``count``) and P(positive) histogram shares (``bin``, ``profile``, ``share``, ``count``)."""
    labels, bins = [], []
    for name, prof in (("champion (validation)", reference), ("live", live)):
        if not prof:
            continue
        counts = {lab: int((prof.get("labels") or {}).get(lab, 0)) for lab in DISPLAY_LABELS}
        total = sum(counts.values())
        labels += [{"label": lab, "profile": name, "count": n, "share": n / total if total else None}
                   for lab, n in counts.items()]
        hist = list(prof.get("score_hist") or [])
        total = sum(hist)
        bins += [{"bin": f"{i / len(hist):.1f}–{(i + 1) / len(hist):.1f}", "profile": name, "count": int(n),
                  "share": n / total if total else None} for i, n in enumerate(hist)]
    return (pd.DataFrame(labels, columns=["label", "profile", "count", "share"]),
            pd.DataFrame(bins, columns=["bin", "profile", "count", "share"]))


def live_drift(reference: dict | None, live: dict, *, psi_threshold: float, js_threshold: float) -> dict | None:
    """:func:`ml.drift.compare` of the live profile against the champion's; ``None`` without a reference."""
    from ml.drift import compare

    if not reference:
        return None
    return compare(reference, live, psi_threshold=psi_threshold, js_threshold=js_threshold)
