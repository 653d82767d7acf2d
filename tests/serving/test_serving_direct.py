"""First layer: the service class called directly (no HTTP, no batching)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EMPTY_TEXTS, NEGATIVE_TEXTS, POSITIVE_TEXTS, UNSEEN_TEXT

from ml.predictor import decide, load_predictor


def test_loads_the_packaged_model_by_tag(service, packaged):
    assert service.tag == packaged["tag"]
    assert service.labels == ("negative", "positive")
    assert service.band == (0.4, 0.6)  # from the model's metadata


def test_clear_texts_get_their_label(service):
    answers = service.classify(POSITIVE_TEXTS + NEGATIVE_TEXTS)
    assert [a.label for a in answers] == ["Positive"] * 3 + ["Negative"] * 3
    for a in answers:
        assert a.model == service.tag
        assert a.scores is None  # a binary model: P(negative) is 1 - p_positive
        assert 0.0 <= a.p_positive <= 1.0 and round(a.p_positive, 6) == a.p_positive


def test_answers_match_the_model_and_the_band(service, packaged):
    texts = POSITIVE_TEXTS + NEGATIVE_TEXTS + [UNSEEN_TEXT, "so happy &amp; sad", "great day but sick"]
    predictor = load_predictor(packaged["path"])
    proba = predictor.predict_proba(texts)
    expected = decide(proba, predictor.labels, (0.4, 0.6))
    answers = service.classify(texts)
    assert [a.label for a in answers] == expected
    np.testing.assert_allclose([a.p_positive for a in answers], proba[:, 1], rtol=0, atol=5e-7)


def test_neutral_band(service):
    (answer,) = service.classify([UNSEEN_TEXT])
    assert 0.4 <= answer.p_positive <= 0.6
    assert answer.label == "Neutral"


def test_nothing_left_after_cleaning_is_a_defined_answer(service):
    answers = service.classify(EMPTY_TEXTS + ["I love this so much"])
    for a in answers[:-1]:
        assert (a.label, a.p_positive, a.scores, a.model) == ("Neutral", None, None, service.tag)
    assert answers[-1].label == "Positive"
    assert service.classify([]) == []


def test_the_cleaner_is_the_training_one(service):
    """URLs, mentions, entities, case and punctuation are removed by ml.text, so the answer does not change."""
    plain = service.predict("I love this so much")
    for noisy in ("@bob I LOVE this so much!! http://t.co/xyz", "I love this so much &amp; #so", "i love this, so much"):
        assert service.predict(noisy).p_positive == pytest.approx(plain.p_positive, abs=0.05)
        assert service.predict(noisy).label == "Positive"


def test_predict_is_classify_of_one(service):
    for text in ["what a great day", "this is awful", "   "]:
        assert service.predict(text) == service.classify([text])[0]


TRICKY = ["@jo I LOVE #Spark &amp; cafés! http://x.co/1 :)", "RT @a: www.example.com/x is GREAT!!!", "it's 2day...",
          "naïve résumé &lt;3 &quot;ok&quot;", "привет мир hello", "so   many    spaces\t\nhere", "a@b.c d"]


def test_cleaning_before_the_model_changes_nothing(packaged):
    """The service feeds the model ml.text.clean(text); every family cleans again, and cleaning is idempotent."""
    from ml.text import clean, tokenize

    for text in TRICKY + POSITIVE_TEXTS:
        assert tokenize(clean(text)) == tokenize(text)
        assert clean(clean(text)) == clean(text)
    predictor = load_predictor(packaged["path"])
    np.testing.assert_allclose(predictor.predict_proba([clean(t) for t in TRICKY]), predictor.predict_proba(TRICKY))


def test_a_three_class_model_answers_with_all_scores(service_cls):
    """The same scoring code with a three-class predictor: argmax labels and every class's probability."""
    from fixtures import NEGATIVE, NEUTRAL, POSITIVE

    from ml.models.classical import LogRegPredictor

    texts = [t for pool in (NEGATIVE, NEUTRAL, POSITIVE) for t in pool for _ in range(3)]
    labels = [name for name, pool in (("negative", NEGATIVE), ("neutral", NEUTRAL), ("positive", POSITIVE))
              for _ in pool for _ in range(3)]
    predictor = LogRegPredictor(max_features=500, ngram_max=2)
    predictor.fit(texts, labels)
    svc = object.__new__(service_cls.inner)  # the class without __init__: no model store needed
    svc.predictor, svc.labels, svc.band, svc.tag = predictor, predictor.labels, (0.4, 0.6), "tweet-sentiment:3cls"
    probe = ["I love this so much", "the meeting is at noon", "I hate this so much", ""]
    answers = svc.score(probe)
    assert [a.label for a in answers] == ["Positive", "Neutral", "Negative", "Neutral"]
    proba = predictor.predict_proba(probe[:3])
    for a, row in zip(answers[:3], proba, strict=True):
        assert list(a.scores) == ["negative", "neutral", "positive"]
        np.testing.assert_allclose(list(a.scores.values()), row, atol=5e-7)
        assert a.p_positive == a.scores["positive"]
    assert answers[3].scores is None and answers[3].p_positive is None
