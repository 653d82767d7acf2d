"""The classical family: training, probabilities, save/load, behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures import NEGATIVE, POSITIVE

from ml.errors import ModelError
from ml.predictor import FAMILIES, decide, family_class, load_predictor

CLASSICAL = ["logreg", "linearsvc", "multinomialnb"]


def _data(n=30):
    texts = [p + " " + str(i) for i, p in enumerate(POSITIVE * n)] + [t + " " + str(i) for i, t in enumerate(NEGATIVE * n)]
    labels = ["positive"] * (len(POSITIVE) * n) + ["negative"] * (len(NEGATIVE) * n)
    return texts, labels


@pytest.mark.parametrize("family", CLASSICAL)
def test_train_predict_save_load(family, tmp_path, settings):
    texts, labels = _data()
    model = family_class(family).from_options(settings, {})
    model.fit(texts, labels)
    assert model.labels == ("negative", "positive")
    probe = ["I love this so much", "I hate this so much", "", "http://only.a/url"]
    proba = model.predict_proba(probe)
    assert proba.shape == (4, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert proba[0, 1] > 0.5 > proba[1, 1], "minimum functionality: clear cases right"
    model.save(tmp_path / family, extra_meta={"n_train": len(texts)})
    loaded = load_predictor(tmp_path / family)
    assert type(loaded) is type(model) and loaded.labels == model.labels
    np.testing.assert_array_equal(loaded.predict_proba(probe), proba)
    assert model.predict_proba([]).shape == (0, 2)


RAW = ["I LOVE this!!! http://t.co/x @bob #Happy", "so sad :( #fail www.example.com", "", "@only_a_mention",
       "Caf\u00e9 &amp; cr\u00e8me... 2nite?", "tabs\tand\nnewlines   too"]


@pytest.mark.parametrize("family", CLASSICAL)
def test_cleaned_entry_point_gives_the_raw_answers(family, settings):
    """predict_proba_cleaned (what the service and the Spark job call) skips cleaning and agrees exactly."""
    from ml.text import clean

    texts, labels = _data()
    model = family_class(family).from_options(settings, {})
    model.fit(texts + RAW, labels + ["positive", "negative"] * 3)
    np.testing.assert_array_equal(model.predict_proba_cleaned([clean(t) for t in RAW]), model.predict_proba(RAW))
    # It does not clean: raw text through it reads differently (so the shortcut really is taken).
    assert not np.array_equal(model.predict_proba_cleaned(RAW[:1]), model.predict_proba(RAW[:1]))
    assert model.predict_proba_cleaned([]).shape == (0, 2)


@pytest.mark.parametrize("family", CLASSICAL)
def test_invariance_to_urls_and_mentions(family, settings):
    texts, labels = _data()
    model = family_class(family).from_options(settings, {})
    model.fit(texts, labels)
    base = ["what a great day", "this is awful"]
    decorated = ["@bob what a great day http://t.co/x", "this is awful www.example.com @amy"]
    np.testing.assert_allclose(model.predict_proba(base), model.predict_proba(decorated))


def test_three_class(settings):
    from fixtures import NEUTRAL

    texts, labels = _data()
    texts += NEUTRAL * 60
    labels += ["neutral"] * (len(NEUTRAL) * 60)
    model = family_class("logreg").from_options(settings, {})
    model.fit(texts, labels)
    assert model.labels == ("negative", "neutral", "positive")
    proba = model.predict_proba(["the meeting is at noon", "so happy right now"])
    assert decide(proba, model.labels) == ["Neutral", "Positive"]


def test_linearsvc_probabilities_are_calibrated(settings):
    texts, labels = _data()
    model = family_class("linearsvc").from_options(settings, {})
    model.fit(texts, labels)
    p = model.p_positive(["I love this so much", "I hate this so much"])
    assert 0.5 < p[0] < 1.0 and 0.0 < p[1] < 0.5


def test_decide_band():
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.5, 0.5], [0.4, 0.6], [0.39, 0.61], [0.0, 1.0]])
    assert decide(proba, ("negative", "positive")) == ["Negative", "Neutral", "Neutral", "Neutral", "Positive", "Positive"]
    assert decide(proba, ("negative", "positive"), (0.45, 0.55)) == ["Negative", "Negative", "Neutral", "Positive",
                                                                       "Positive", "Positive"]


def test_registry_and_bad_paths(tmp_path):
    assert set(CLASSICAL) <= set(FAMILIES)
    with pytest.raises(ModelError, match="unknown model family"):
        family_class("nope")
    with pytest.raises(ModelError, match="predictor.json is missing"):
        load_predictor(tmp_path)
    (tmp_path / "predictor.json").write_text("{broken")
    with pytest.raises(ModelError, match="corrupt"):
        load_predictor(tmp_path)


def test_load_predictor_takes_the_scoring_option_every_family_accepts(tmp_path, settings):
    """``cpu_bf16`` reaches any loaded predictor (a transformer's scoring precision; the others ignore it)."""
    from ml.errors import ConfigError

    texts, labels = _data(3)
    model = family_class("logreg").from_options(settings, {})
    model.fit(texts, labels)
    path = model.save(tmp_path / "logreg")
    assert load_predictor(path).cpu_bf16 == "off" and load_predictor(path, cpu_bf16="auto").cpu_bf16 == "auto"
    assert load_predictor(path, cpu_bf16="on").scoring_precision() is None       # a classical model's own
    with pytest.raises(ConfigError, match="cpu_bf16 must be off, on or auto"):
        load_predictor(path, cpu_bf16="sometimes")


def test_save_is_atomic_on_failure(tmp_path, settings, monkeypatch):
    texts, labels = _data(5)
    model = family_class("logreg").from_options(settings, {})
    model.fit(texts, labels)
    model.save(tmp_path / "m")
    before = (tmp_path / "m" / "model.joblib").read_bytes()

    def boom(path):
        (path / "model.joblib").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(model, "_save", boom)
    with pytest.raises(OSError):
        model.save(tmp_path / "m")
    assert (tmp_path / "m" / "model.joblib").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
