"""Timelines, shares, rolling means and drift distances over the small frames the queries return."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from ml.drift import compare
from serving.dashboard import summary

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
END = START + timedelta(minutes=5)


def series(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["bucket", "keyword", "label", "n", "sum_p", "n_p"])
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return frame


SERIES = series([
    (START, "kindle", "Positive", 3, 2.7, 3), (START, "kindle", "Negative", 1, 0.1, 1),
    (START + timedelta(minutes=2), "kindle", "Neutral", 2, 1.0, 2), (START + timedelta(minutes=2), "obama", "Negative", 4, 0.4, 4),
    (START + timedelta(minutes=4), None, "Positive", 1, 0.0, 0),  # no probability (nothing left of the text)
])


def test_timeline_fills_every_bucket_and_computes_shares_and_means():
    line = summary.timeline(SERIES, START, END, 60, rolling=3)
    assert len(line) == 5 and line["bucket"].tolist()[0] == pd.Timestamp(START)
    assert line["total"].tolist() == [4, 0, 6, 0, 1]
    assert line.loc[0, "share_Positive"] == pytest.approx(0.75) and pd.isna(line.loc[1, "share_Positive"])
    shares = line[[f"share_{lab}" for lab in summary.DISPLAY_LABELS]].dropna()
    assert (shares.sum(axis=1).round(9) == 1).all()
    assert line.loc[0, "mean_p"] == pytest.approx(2.8 / 4) and pd.isna(line.loc[4, "mean_p"])
    # rolling over 3 buckets, weighted by the posts that have a probability: buckets 0..2 -> (2.8 + 1.4) / (4 + 6)
    assert line.loc[2, "rolling_p"] == pytest.approx(4.2 / 10)
    assert line.loc[4, "rolling_p"] == pytest.approx(1.4 / 6)  # buckets 2..4


def test_timeline_of_chosen_keywords_and_no_keyword():
    only = summary.timeline(SERIES, START, END, 60, keywords=["obama"])
    assert only["total"].sum() == 4 and only["Negative"].sum() == 4
    none = summary.timeline(SERIES, START, END, 60, keywords=[summary.NO_KEYWORD])
    assert none["Positive"].sum() == 1


def test_keyword_totals_and_overall():
    totals = summary.keyword_totals(SERIES)
    assert totals["keyword"].tolist() == ["kindle", "obama", summary.NO_KEYWORD]  # busiest first
    kindle = totals.iloc[0]
    assert (kindle["posts"], kindle["Positive"], kindle["Negative"], kindle["Neutral"]) == (6, 3, 1, 2)
    assert kindle["share_Positive"] == pytest.approx(0.5) and kindle["mean_p"] == pytest.approx(3.8 / 6)
    everything = summary.overall(SERIES)
    assert everything["posts"] == 11 and everything["Negative"] == 5
    assert everything["share_Negative"] == pytest.approx(5 / 11) and everything["mean_p"] == pytest.approx(4.2 / 10)
    empty = summary.overall(SERIES.iloc[0:0])
    assert empty["posts"] == 0 and empty["mean_p"] is None and empty["share_Positive"] is None
    assert summary.keyword_totals(SERIES.iloc[0:0]).empty


def test_keyword_shares_keep_the_busiest():
    shares = summary.keyword_shares(SERIES, START, END, 60, top=1)
    assert set(shares["keyword"]) == {"kindle"} and len(shares) == 5
    assert shares["posts"].sum() == 6
    rolled = summary.keyword_shares(SERIES, START, END, 60, top=1, rolling=3)["share_Positive"].tolist()
    assert rolled[0] == 0.75 and rolled[2] == pytest.approx(3 / 6)  # buckets 0..2: 3 Positive of 6 posts


def test_scores_and_profiles():
    assert summary.format_scores({"Positive": 0.71, "Neutral": 0.19, "Negative": 0.1}) == \
        "Negative 0.10 · Neutral 0.19 · Positive 0.71"
    assert summary.format_scores(None) == "" and summary.format_scores(float("nan")) == "" and \
        summary.format_scores(pd.NA) == ""
    reference = {"labels": {"Negative": 40, "Neutral": 10, "Positive": 50}, "score_hist": [10] * 10, "n": 100}
    live = {"labels": {"Negative": 1, "Neutral": 0, "Positive": 3}, "score_hist": [0] * 9 + [4], "n": 4}
    labels, bins = summary.profile_shares(reference, live)
    assert labels.loc[(labels["profile"] == "live") & (labels["label"] == "Positive"), "share"].item() == 0.75
    assert len(bins) == 20 and bins["share"].sum() == pytest.approx(2.0)
    assert summary.live_drift(reference, live, psi_threshold=0.2, js_threshold=0.1) == compare(
        reference, live, psi_threshold=0.2, js_threshold=0.1)
    assert summary.live_drift(None, live, psi_threshold=0.2, js_threshold=0.1) is None
