"""The Keras objects a saved GRU/LSTM ``model.keras`` names, registered with Keras when this module is imported:
the ``TokenIds`` layer (raw tweets -> token ids) and the ``agreement`` metric. Importing it is all a plain load
needs (the saved model predicts on raw tweets: it cleans them itself)::

    import keras, numpy as np
    import ml.models.rnn.layers  # noqa: F401  (registers sentiment>TokenIds and sentiment>agreement)

    model = keras.saving.load_model("…/gru/model.keras")
    model.predict(np.array(["I LOVE this!!! http://t.co/x"]))   # P(positive), shape (1, 1)

This module exists to hold Keras classes, so it imports Keras and TensorFlow at module level: light code paths
(settings, plan checks, ``ml.models.rnn`` itself) must not import it. Why the layer cleans through
``tf.py_function``, and what that costs: docs/decisions/rnn-design-and-distillation.md.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from ml.models.rnn import OOV_BUCKETS  # noqa: E402
from ml.text import clean  # noqa: E402

#: The package the custom objects are registered under (``sentiment>TokenIds``, ``sentiment>agreement``).
PACKAGE = "sentiment"


def _clean_batch(batch):
    """The project's cleaner (:func:`ml.text.clean`, the one used everywhere) over a string tensor."""
    return tf.constant([clean(t.decode("utf-8", errors="replace")) for t in batch.numpy().tolist()],
                       dtype=tf.string, shape=[len(batch)])


@keras.saving.register_keras_serializable(package=PACKAGE)
class TokenIds(keras.layers.Layer):
    """Text -> int ids of shape ``(batch, max_length)``.

    With ``clean`` (what :func:`ml.models.rnn.network.build_models` saves) the layer reads raw tweets and cleans
    them with :func:`ml.text.clean` itself, so a loaded ``model.keras`` predicts on raw text; :meth:`ids` skips
    that step for text already cleaned (training, and the predictor, which cleans once for every family).
    0 pads, 1..``num_oov_indices`` are hashed OOV buckets, the vocabulary follows. Longer texts are cut.
    """

    def __init__(self, vocabulary: Sequence[str], max_length: int, num_oov_indices: int = OOV_BUCKETS,
                 clean: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vocabulary = [str(v) for v in vocabulary]
        self.max_length = int(max_length)
        self.num_oov_indices = int(num_oov_indices)
        self.clean = bool(clean)  # False in models saved before it existed: they read cleaned text
        self.lookup = keras.layers.StringLookup(vocabulary=self.vocabulary, num_oov_indices=self.num_oov_indices,
                                                mask_token="", output_mode="int")

    def build(self, input_shape) -> None:
        self.built = True

    def ids(self, cleaned):
        """Ids of texts already cleaned with :func:`ml.text.clean` (space-separated tokens)."""
        tokens = tf.strings.split(tf.reshape(tf.convert_to_tensor(cleaned, dtype=tf.string), [-1]))
        ids = self.lookup(tokens)
        return tf.cast(ids.to_tensor(default_value=0, shape=[None, self.max_length]), "int32")

    def call(self, inputs):
        texts = tf.reshape(tf.convert_to_tensor(inputs, dtype=tf.string), [-1])
        if self.clean:
            texts = tf.py_function(_clean_batch, [texts], tf.string)
            texts.set_shape([None])
        return self.ids(texts)

    def vocabulary_size(self) -> int:
        return int(self.lookup.vocabulary_size())

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.max_length)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "vocabulary": self.vocabulary, "max_length": self.max_length,
                "num_oov_indices": self.num_oov_indices, "clean": self.clean}


@keras.saving.register_keras_serializable(package=PACKAGE, name="agreement")
def agreement(y_true, y_pred):
    """Binary accuracy that also reads soft targets (a teacher's probabilities): both sides cut at 0.5."""
    ops = keras.ops
    y_true = ops.reshape(y_true, ops.shape(y_pred))  # (batch,) targets against (batch, 1) outputs
    return ops.mean(ops.cast(ops.equal(y_true > 0.5, y_pred > 0.5), "float32"), axis=-1)


def custom_objects() -> dict[str, Any]:
    """The registered objects by name, for ``keras.saving.load_model(..., custom_objects=custom_objects())``
    (not needed once this module is imported; kept for callers that pass them explicitly)."""
    return {f"{PACKAGE}>TokenIds": TokenIds, f"{PACKAGE}>agreement": agreement}
