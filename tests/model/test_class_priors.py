"""Tuned class priors: the search, the arithmetic, a trained model carrying them through save, load and both
scoring paths, the setting that turns them off, and the goal on real SemEval data (a three-class
LogisticRegression recalls at least half of the Negative posts of a held-out split)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from fixtures import NEUTRAL, POSITIVE, tag

from ml.errors import ConfigError, ModelError
from ml.models import priors

THREE = ("negative", "neutral", "positive")


def leaning_model(n_per_class: int = 40, seed: int = 0):
    """Probabilities of a model that leans to Positive: its Negative rows score P(negative) 0.3-0.5."""
    rng = np.random.default_rng(seed)
    truth, rows = [], []
    for k, label in enumerate(THREE):
        for _ in range(n_per_class):
            p = rng.dirichlet([1, 1, 1]) * 0.2
            p[k] += 0.35 if label == "negative" else 0.8
            p[2] += 0.45 if label == "negative" else 0.0
            rows.append(p / p.sum())
            truth.append(label)
    return np.array(rows), truth


def test_tune_finds_offsets_that_raise_macro_recall_and_apply_renormalises():
    proba, truth = leaning_model()
    y = np.array([THREE.index(t) for t in truth])
    before = priors.macro_recall(y, proba.argmax(1), 3)
    offsets = priors.tune(proba, truth, THREE)
    assert offsets is not None and offsets["negative"] == 0.0          # the first class is the fixed reference
    adjusted = priors.apply(proba, THREE, offsets)
    np.testing.assert_allclose(adjusted.sum(axis=1), 1.0)
    after = priors.macro_recall(y, adjusted.argmax(1), 3)
    assert before < 0.8 and after > before + 0.15
    # Bayes' rule with other priors: the odds between two classes change by exp(offset difference) exactly.
    ratio = (adjusted[:, 2] / adjusted[:, 0]) / (proba[:, 2] / proba[:, 0])
    np.testing.assert_allclose(ratio, np.exp(offsets["positive"] - offsets["negative"]))


def test_no_offsets_when_argmax_is_already_best_or_a_class_is_too_rare():
    exact = np.eye(3)[[0] * 20 + [1] * 20 + [2] * 20] * 0.9 + 0.1 / 3
    truth = ["negative"] * 20 + ["neutral"] * 20 + ["positive"] * 20
    assert priors.tune(exact, truth, THREE) is None
    proba, truth = leaning_model(n_per_class=priors.MIN_ROWS_PER_CLASS - 1)
    assert priors.tune(proba, truth, THREE) is None
    assert priors.apply(proba, THREE, None) is proba
    assert priors.wanted("auto", THREE) and not priors.wanted("auto", ("negative", "positive"))
    assert not priors.wanted("none", THREE)
    with pytest.raises(ConfigError, match="class_priors must be one of auto, none"):
        priors.wanted("always", THREE)


def ambiguous_tsv(path, n=600):
    """Three classes where every Negative row reads like a Neutral one with "ugh", and 80% of the (more numerous)
    Neutral rows say "ugh" too: a plain argmax calls "ugh" rows Neutral and never answers Negative, while calling
    them Negative gains more Negative recall than it costs Neutral recall."""
    rows = []
    for i in range(n):
        label = "negative" if i % 10 < 2 else "neutral" if i % 10 < 5 else "positive"
        phrase = POSITIVE[i % len(POSITIVE)] if label == "positive" else NEUTRAL[(i // 10) % len(NEUTRAL)]
        ugh = " ugh" if label == "negative" or (label == "neutral" and (i // 10) % 5) else ""
        rows.append(f"{i}\t{label}\t{phrase}{ugh} {tag(3, i)}\n")
    path.write_text("".join(rows), encoding="utf-8")
    return path


def test_a_trained_three_class_model_carries_its_priors(settings, tmp_path, monkeypatch):
    from ml.data import load_split, prepare
    from ml.predictor import load_predictor, read_meta
    from ml.settings import get_settings
    from ml.training import train

    neutral = get_settings(dataset="neutral")
    prepare(neutral, ambiguous_tsv(tmp_path / "ambiguous.tsv"))
    result = train("logreg", neutral, class_weight="none")
    offsets = result["fit"]["class_priors"]
    assert offsets and read_meta(result["path"])["class_priors"] == offsets
    model = load_predictor(result["path"])
    assert model.class_priors == offsets
    texts = load_split(neutral, "validation")["text"].tolist()
    own = model._predict_proba(texts)
    np.testing.assert_allclose(model.predict_proba(texts), priors.apply(own, model.labels, offsets))
    from ml.text import clean

    np.testing.assert_allclose(model.predict_proba_cleaned([clean(t) for t in texts]), model.predict_proba(texts))

    meta_path = tmp_path / "broken" / "predictor.json"
    shutil.copytree(result["path"], meta_path.parent)
    meta_path.write_text(json.dumps({**read_meta(result["path"]), "class_priors": {"negative": "high"}}))
    with pytest.raises(ModelError, match="class_priors must map each of"):
        load_predictor(meta_path.parent)

    monkeypatch.setenv("SENTIMENT_CLASS_PRIORS", "none")
    plain = train("logreg", get_settings(dataset="neutral"), class_weight="none", name="plain")
    assert plain["fit"]["class_priors"] is None and load_predictor(plain["path"]).class_priors is None

    from ml.evaluate import evaluate

    rows = {row["model"]: row for row in evaluate(neutral)}
    assert rows["logreg"]["class_priors"] == offsets and rows["plain"]["class_priors"] is None
    # Tuned on this validation split for macro recall: never below the model's own argmax there.
    assert rows["logreg"]["macro_recall"] > rows["plain"]["macro_recall"]
    assert "neutral, 3 classes, tuned priors" in (neutral.reports_dir / "leaderboard.md").read_text()


def test_two_class_models_never_get_priors(prepared):
    from ml.training import train

    assert train("logreg", prepared)["fit"]["class_priors"] is None


@pytest.mark.slow
def test_semeval_logreg_recalls_half_the_negatives(shared, home):
    """The three-class LogisticRegression goal on real data: a held-out test split of SemEval-2016's training
    file (no cleaned text shared with training or validation), default settings."""
    from ml.data import load_split, prepare
    from ml.scoring import recalls
    from ml.settings import get_settings
    from ml.training import train

    neutral = get_settings(dataset="neutral")
    prepare(neutral, shared / "semeval2016" / "train.tsv")
    model_path = train("logreg", neutral)["path"]
    from ml.predictor import load_predictor

    model = load_predictor(model_path)
    test = load_split(neutral, "test")
    predicted = np.array(model.labels)[model.predict_proba(test["text"].tolist()).argmax(axis=1)]
    macro, recall = recalls(test["label"].to_numpy(), predicted)
    assert model.class_priors and recall["negative"] >= 0.5, (macro, recall, model.class_priors)
