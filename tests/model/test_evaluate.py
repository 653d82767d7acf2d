"""Evaluation: metrics on the same split for every model, the test-file views, and the report files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ml.errors import ModelError
from ml.evaluate import evaluate, score_test
from ml.training import train, trained_models


@pytest.mark.slow
def test_leaderboard_files_and_fields(prepared):
    for family in ("logreg", "multinomialnb"):
        train(family, prepared)
    assert trained_models(prepared) == ["logreg", "multinomialnb"]
    rows = evaluate(prepared)
    out = prepared.reports_dir
    board = json.loads((out / "leaderboard.json").read_text())
    assert board == rows and [r["accuracy"] for r in rows] == sorted((r["accuracy"] for r in rows), reverse=True)
    for row in board:
        for key in ("model", "family", "accuracy", "f1", "roc_auc", "test_accuracy", "test3_macro_f1", "train_seconds", "n_train"):
            assert row[key] is not None, key
        assert row["n_val"] == 80 and row["n_test"] == 60 and row["n_test_polar"] == 40
        assert 0.5 < row["accuracy"] <= 1.0
        assert row["scoring_precision"] is None            # a classical model's arithmetic is its own
        reference = row["reference"]                       # the validation profile drift is measured against
        assert reference["n"] == 80 == sum(reference["labels"].values()) == sum(reference["score_hist"])
    md = (out / "leaderboard.md").read_text()
    assert "| logreg | logreg |" in md and "79.2" in md  # beside the write-up's reference
    for name in ("leaderboard.png", "confusion_logreg.png", "confusion_multinomialnb.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


def test_no_models(prepared):
    with pytest.raises(ModelError, match="no trained models"):
        evaluate(prepared)


class _Fixed:
    """A stand-in predictor with known outputs, to check the metric arithmetic exactly."""

    labels = ("negative", "positive")

    def __init__(self, p_pos):
        self.p = np.asarray(p_pos, dtype=float)

    def predict_proba(self, texts):
        return np.column_stack([1 - self.p, self.p])


def test_test_metrics_arithmetic():
    df = pd.DataFrame({"text": list("abcdef"),
                       "label": ["positive", "negative", "neutral", "neutral", "positive", "negative"]})
    m = score_test(_Fixed([0.9, 0.2, 0.5, 0.95, 0.45, 0.7]), df, (0.4, 0.6))
    # polar rows: a (0.9 -> pos, right), b (0.2 -> neg, right), e (0.45 -> neg, wrong), f (0.7 -> pos, wrong)
    assert m["test_accuracy"] == 0.5 and m["n_test_polar"] == 4
    # 3-class with band: a Pos ok, b Neg ok, c Neutral ok, d Pos wrong, e Neutral wrong, f Pos wrong
    assert m["test3_accuracy"] == 0.5


@pytest.mark.slow
def test_no_write_up_figures_beside_other_data(settings, tmp_path):
    """The write-up's accuracies are two-class Sentiment140 ones: a three-class SemEval-style run shows none."""
    from fixtures import NEGATIVE, NEUTRAL, POSITIVE, tag

    from ml.data import prepare

    rows = [f"{i}\t{label}\t{text} {tag(0, i)}" for i, (label, text) in enumerate(
        (label, pool[i % len(pool)]) for i in range(300)
        for label, pool in [("positive", POSITIVE), ("negative", NEGATIVE), ("neutral", NEUTRAL)][i % 3:i % 3 + 1])]
    source = tmp_path / "train.tsv"
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    prepare(settings, source)
    train("logreg", settings)
    (row,) = evaluate(settings)
    assert row["labels"] == ["negative", "neutral", "positive"] and row["reference_accuracy"] is None
    md = (settings.reports_dir / "leaderboard.md").read_text()
    assert "79.2" not in md and "No write-up figures" in md and "`train.tsv`" in md


def test_the_markdown_note_follows_the_data_not_the_families():
    """A Sentiment140 run of families without a write-up figure (minilm) keeps the Sentiment140 note."""
    from ml.evaluate import to_markdown

    row = {"run_id": "r", "model": "minilm", "family": "minilm", "accuracy": 0.8, "reference_accuracy": None,
           "f1": 0.8, "roc_auc": 0.9, "test_accuracy": 0.85, "test3_accuracy": 0.6, "test3_macro_f1": 0.55,
           "train_seconds": 1.0, "n_train": 10}
    manifest = {"data_version": "v", "rows": {"train": 10, "validation": 2, "test": 2},
                "source": {"kind": "sentiment140", "name": "trainingandtestdata.zip"}}
    assert "measured on the full 1.6M-tweet file" in to_markdown([row], manifest, (0.4, 0.6))
    manifest["source"] = {"kind": "labelled", "name": "train.tsv"}
    assert "No write-up figures" in to_markdown([row], manifest, (0.4, 0.6))
