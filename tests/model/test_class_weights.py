"""Class weights: the arithmetic, ``auto``, and the weights reaching every family's loss (scikit-learn's
``class_weight`` / ``sample_weight``, Keras' sample weights, the torch cross-entropy's weight tensor)."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures import NEGATIVE, NEUTRAL, POSITIVE, tag

from ml.errors import ConfigError
from ml.models.weights import class_weights, row_weights

THREE = ("negative", "neutral", "positive")
#: SemEval-like: 14% negative.
IMBALANCED = ["negative"] * 14 + ["neutral"] * 34 + ["positive"] * 52


def test_balanced_weights_arithmetic_and_auto():
    weights = class_weights(IMBALANCED, THREE, "balanced")
    assert weights == pytest.approx({"negative": 100 / 42, "neutral": 100 / 102, "positive": 100 / 156}, rel=1e-5)
    assert row_weights(IMBALANCED, weights).sum() == pytest.approx(100, rel=1e-5)  # a weighted mean keeps its scale
    assert class_weights(IMBALANCED, THREE, "auto") == weights                     # imbalanced three classes
    assert class_weights(IMBALANCED, THREE, "none") is None
    assert class_weights(["negative"] * 40 + ["positive"] * 60, ("negative", "positive"), "auto") is None  # binary
    assert class_weights(["negative"] * 30 + ["neutral"] * 35 + ["positive"] * 40, THREE, "auto") is None  # balanced
    binary = class_weights(["negative"] * 20 + ["positive"] * 80, ("negative", "positive"), "balanced")
    assert binary == pytest.approx({"negative": 2.5, "positive": 0.625})
    with pytest.raises(ConfigError, match="class_weight must be one of auto, balanced, none"):
        class_weights(IMBALANCED, THREE, "inverse")


def imbalanced_texts(n: int = 120) -> tuple[list[str], list[str]]:
    pools = {"negative": NEGATIVE, "neutral": NEUTRAL, "positive": POSITIVE}
    labels = [IMBALANCED[i % 100] for i in range(n)]
    return [f"{pools[label][i % len(pools[label])]} {tag(5, i)}" for i, label in enumerate(labels)], labels


def test_logreg_gets_class_weight_and_records_it(settings):
    from ml.models.classical import LogRegPredictor

    texts, labels = imbalanced_texts()
    weighted = LogRegPredictor.from_options(settings, {"class_weight": "balanced"})
    facts = weighted.fit(texts, labels)
    expected = class_weights(labels, THREE, "balanced")
    clf = weighted.pipeline.named_steps["clf"]
    assert clf.class_weight == pytest.approx({THREE.index(c): w for c, w in expected.items()})
    assert facts["class_weights"] == expected and weighted.params()["class_weight"] == "balanced"
    plain = LogRegPredictor.from_options(settings, {"class_weight": "none"})
    assert plain.fit(texts, labels)["class_weights"] is None and plain.pipeline.named_steps["clf"].class_weight is None


@pytest.mark.parametrize("family", ["linearsvc", "multinomialnb"])
def test_the_other_classical_families_get_sample_weights(settings, family, monkeypatch):
    from sklearn.pipeline import Pipeline

    from ml.predictor import family_class

    seen = {}
    original = Pipeline.fit

    def spy(self, x, y=None, **params):
        seen.update(params)
        return original(self, x, y, **params)

    monkeypatch.setattr(Pipeline, "fit", spy)
    texts, labels = imbalanced_texts()
    predictor = family_class(family).from_options(settings, {"class_weight": "auto"})
    predictor.fit(texts, labels)
    weights = class_weights(labels, THREE, "balanced")
    np.testing.assert_allclose(seen["clf__sample_weight"], [weights[label] for label in labels], rtol=1e-6)


@pytest.mark.slow
def test_keras_fit_gets_row_weights_for_training_and_validation(settings, monkeypatch):
    pytest.importorskip("tensorflow")
    from ml.models.rnn.layers import keras
    from ml.models.rnn.predictor import GRUPredictor

    calls = []
    original = keras.Model.fit

    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    texts, labels = imbalanced_texts()
    predictor = GRUPredictor.from_options(settings, {"embedding_dim": 4, "units": 2, "top_units": 2, "epochs": 1,
                                                     "class_weight": "balanced"})
    facts = predictor.fit(texts[:100], labels[:100], val_texts=texts[100:], val_labels=labels[100:])
    weights = class_weights(labels[:100], THREE, "balanced")
    assert facts["class_weights"] == weights
    (kwargs,) = calls
    assert sorted(kwargs["sample_weight"]) == sorted(weights[label] for label in labels[:100])
    x_val, y_val, w_val = kwargs["validation_data"]                   # the early-stopping loss is weighted too
    np.testing.assert_allclose(w_val, [weights[THREE[int(i)]] for i in y_val], rtol=1e-6)


def test_torch_loss_weight_tensor():
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertForSequenceClassification

    from ml.models.transformer.loop import TrainLoop

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=16, num_labels=3))
    loop = TrainLoop(model, device="cpu", class_weight=[2.0, 0.5, 1.0])
    model.eval()  # no dropout: the two passes below see the same logits
    assert torch.equal(loop.loss_weight, torch.tensor([2.0, 0.5, 1.0]))
    ids, mask = torch.randint(1, 30, (4, 6)), torch.ones(4, 6, dtype=torch.long)
    labels = torch.tensor([0, 1, 2, 1])
    logits = loop._logits_impl(ids, mask)
    expected = torch.nn.functional.cross_entropy(logits, labels, reduction="none") * torch.tensor([2.0, 0.5, 1.0, 0.5])
    torch.testing.assert_close(loop._loss_impl(ids, mask, labels), expected.sum())
    assert TrainLoop(model, device="cpu").loss_weight is None
