"""Evaluation on external labelled sets (``evaluate --extra``), macro-averaged recall, and the leaderboard's columns
that follow the data: three-class columns only where there are neutral labels, the band only for binary models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ml.cli import app, parse_band
from ml.errors import ConfigError
from ml.evaluate import evaluate, load_extra_sets, score_extra, score_test, to_markdown
from ml.scoring import recalls


class _Proba:
    """A stand-in predictor with fixed probabilities (columns in the order of ``labels``)."""

    def __init__(self, proba, labels=("negative", "neutral", "positive")):
        self.proba, self.labels = np.asarray(proba, dtype=float), tuple(labels)

    def predict_proba(self, texts):
        return self.proba


NEG, NEU, POS, NEU_LEANING_POS = [0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.1, 0.1, 0.8], [0.1, 0.6, 0.3]
TRUTH = ["negative"] * 3 + ["neutral"] * 2 + ["positive"] * 5


def frame(labels):
    return pd.DataFrame({"text": [f"t{i}" for i in range(len(labels))], "label": labels})


def test_macro_recall_arithmetic_on_a_known_example():
    # predicted: neg, neu(->pos side), neu | neu, pos | pos, pos, pos, pos, neu
    proba = [NEG, NEU_LEANING_POS, NEU, NEU, POS, POS, POS, POS, POS, NEU_LEANING_POS]
    m = score_extra(_Proba(proba), frame(TRUTH), (0.4, 0.6))
    assert m["recall_by_class"] == pytest.approx({"negative": 1 / 3, "neutral": 1 / 2, "positive": 4 / 5})
    assert m["macro_recall"] == pytest.approx((1 / 3 + 1 / 2 + 4 / 5) / 3)   # 0.544, where accuracy says 0.6
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["binary_accuracy"] == pytest.approx(7 / 8)                      # row 1 leans positive
    assert "neutral_share" not in m and m["n"] == 10                         # a three-class model


def test_a_binary_model_on_a_three_class_set_answers_with_the_band():
    p_pos = np.array([0.1, 0.5, 0.45, 0.55, 0.7, 0.9, 0.9, 0.9, 0.2, 0.5])
    binary = _Proba(np.column_stack([1 - p_pos, p_pos]), labels=("negative", "positive"))
    m = score_extra(binary, frame(TRUTH), (0.4, 0.6))
    # answers: neg, neu, neu | neu, pos | pos, pos, pos, neg, neu
    assert m["neutral_share"] == pytest.approx(0.4)
    assert m["recall_by_class"] == pytest.approx({"negative": 1 / 3, "neutral": 1 / 2, "positive": 3 / 5})
    # the pos/neg decision at 0.5: negatives 0.1 ok, 0.5 wrong, 0.45 ok; positives right but 0.2 and 0.5 (ties go positive)
    assert m["binary_accuracy"] == pytest.approx(6 / 8)


def test_a_two_class_set_has_no_three_class_figures():
    m = score_extra(_Proba([NEG, POS, POS, NEG]), frame(["negative", "positive", "negative", "negative"]), (0.4, 0.6))
    assert m["accuracy"] == 0.75 and "macro_recall" not in m and m["binary_accuracy"] == 0.75
    assert recalls(np.array(["a"]), np.array(["a"]))[0] != recalls(np.array(["a"]), np.array(["a"]))[0]  # no known class


def test_binary_test_split_has_no_three_class_columns():
    m = score_test(_Proba([NEG, POS]), frame(["negative", "positive"]), (0.4, 0.6))
    assert m["test_accuracy"] == 1.0 and m["test3_accuracy"] is None and m["test3_macro_recall"] is None
    row = {"run_id": "r", "model": "logreg", "family": "logreg", "dataset": "default", "labels": ["negative", "positive"],
           "accuracy": 0.8, "f1": 0.8, "macro_recall": 0.8, "roc_auc": 0.9, "train_seconds": 1.0, "n_train": 10, **m}
    manifest = {"data_version": "v", "rows": {"train": 10, "validation": 2, "test": 2},
                "source": {"kind": "labelled", "name": "train.tsv"}}
    md = to_markdown([row], manifest, (0.3, 0.7))
    assert "3-class" not in md and "Neutral band of the binary models on P(positive): [0.3, 0.7]" in md
    three = {**row, "labels": ["negative", "neutral", "positive"], "test3_accuracy": 0.5, "test3_macro_f1": 0.4,
             "test3_macro_recall": 0.45}
    md = to_markdown([three], manifest, (0.3, 0.7))
    assert "test 3-class macro-recall %" in md and "| 45.0 |" in md and "Neutral band" not in md


def test_cli_band_accepts_the_comma_form_of_its_help(monkeypatch, home):
    assert parse_band("0.3,0.7") == (0.3, 0.7) == parse_band("0.3 0.7")
    with pytest.raises(ConfigError, match="LOW,HIGH"):
        parse_band("0.3")
    seen = {}

    def fake_evaluate(settings, **kwargs):
        seen.update(band=settings.neutral_band, **kwargs)
        return []

    monkeypatch.setattr("ml.evaluate.evaluate", fake_evaluate)
    result = CliRunner().invoke(app, ["evaluate", "--band", "0.3,0.7", "--extra", "a.tsv", "--extra", "b=c.tsv"])
    assert result.exit_code == 0, result.output
    assert seen["band"] == (0.3, 0.7) and list(seen["extra"]) == ["a.tsv", "b=c.tsv"]


def test_extra_sets_in_the_leaderboard(trained_home, tmp_path, s140_zip):
    """Every model of the run is scored on each set; a set shared with training is said so; the JSON and the
    Markdown carry one column group per set."""
    from ml.settings import get_settings

    root = tmp_path / "home"
    import shutil

    shutil.copytree(trained_home, root)
    settings = get_settings(home=root)
    tsv = tmp_path / "semeval_test.tsv"
    tsv.write_text("1\tpositive\tI love this so much\n2\tneutral\tthe meeting is at noon\n"
                   "3\tnegative\tworst movie ever\n4\tneutral\treading the news\n", encoding="utf-8")
    (row,) = evaluate(settings, extra=[str(tsv), f"official={s140_zip}"])
    assert set(row["extra"]) == {"semeval_test", "official"}
    semeval = row["extra"]["semeval_test"]
    assert semeval["n"] == 4 and 0 <= semeval["macro_recall"] <= 1 and "neutral_share" in semeval
    assert row["extra"]["official"]["n"] == 60 and row["dataset"] == "default"
    facts = json.loads((settings.reports_dir / "extra_sets.json").read_text())
    assert facts["official"]["label_counts"] == {"negative": 20, "neutral": 20, "positive": 20}
    assert facts["semeval_test"]["overlap"] == {"default": 0}
    md = (settings.reports_dir / "leaderboard.md").read_text()
    assert "## External test sets" in md and "semeval_test: 3-class macro-recall %" in md
    assert "official: Neutral answers % (binary)" in md
    with pytest.raises(ConfigError, match="--extra /no/such.tsv: no such file"):
        load_extra_sets(settings, ["/no/such.tsv"])
