"""The recurrent family (Keras 3 on TensorFlow): ``gru`` and ``lstm``.

A learnable embedding of 10,501 rows (padding, 500 hashed out-of-vocabulary buckets, the 10,000 most frequent
training tokens) -> 2 x Bidirectional(GRU(100)) -> GRU(200) -> sigmoid (or softmax over 3 classes); ``lstm``
uses LSTMs in the same places. Early stopping keeps the best epoch; each epoch ends with a checkpoint from which
an interrupted fit resumes; a student distils from a teacher's probabilities (``teacher``). The saved
``model.keras`` predicts on raw tweets by itself. The design and its figures:
docs/decisions/rnn-design-and-distillation.md.

Modules: :mod:`.layers` (the Keras objects a saved model names, registered on import: ``import
ml.models.rnn.layers`` is all ``keras.saving.load_model`` needs), :mod:`.network` (vocabulary, the Keras
models, loss, weight helpers), :mod:`.fit` (one fit's epochs, checkpoints and resume) and :mod:`.predictor`
(:class:`GRUPredictor`, :class:`LSTMPredictor`).

This module holds constants only and imports nothing: light code (the training plan's checks) reads
``EMBEDDING_DIM`` here without loading TensorFlow.
"""

VOCAB_SIZE = 10_000
OOV_BUCKETS = 500
EMBEDDING_DIM = 200
MODEL_FILE = "model.keras"
#: Rows of the embedding: padding + OOV buckets + vocabulary.
EMBEDDING_ROWS = 1 + OOV_BUCKETS + VOCAB_SIZE
MAX_LENGTH_CAP = 100
