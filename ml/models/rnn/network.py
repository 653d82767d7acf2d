"""The recurrent network: its vocabulary, the Keras models (a core on token ids, and the saved model on raw
tweets), its loss, and the weight helpers a resumable fit needs. Keras is imported inside the functions."""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ml.models.rnn import EMBEDDING_ROWS, OOV_BUCKETS, VOCAB_SIZE

log = logging.getLogger(__name__)

_ID_CHUNK = 8192


def build_vocabulary(token_lists: Iterable[Sequence[str]], size: int = VOCAB_SIZE) -> list[str]:
    """The ``size`` most frequent tokens, most frequent first; ties in alphabetical order (deterministic)."""
    counts = Counter(token for tokens in token_lists for token in tokens)
    return [token for token, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]]


def build_models(vocabulary: Sequence[str], max_length: int, n_classes: int, *, cell: str = "gru",
                 embedding_dim: int = 200, units: int = 100, top_units: int = 200,
                 rows: int = EMBEDDING_ROWS, dropout: float = 0.0):
    """``(core, full)`` Keras models sharing their weights.

    ``core`` maps token ids ``(batch, max_length)`` to probabilities (trained on ids computed once); ``full``
    maps raw tweets to the same probabilities through a cleaning ``TokenIds`` layer (what is saved).
    """
    from ml.models.rnn.layers import TokenIds, keras

    layers = keras.layers
    rnn = {"gru": layers.GRU, "lstm": layers.LSTM}[cell]
    ids = keras.Input(shape=(max_length,), dtype="int32", name="token_ids")
    x = layers.Embedding(rows, embedding_dim, mask_zero=True, name="embedding")(ids)
    if dropout:  # whole embedding channels, then plain dropout between layers (keeps the cuDNN kernels usable)
        x = layers.SpatialDropout1D(dropout, name="embedding_dropout")(x)
    x = layers.Bidirectional(rnn(units, return_sequences=True), name=f"bi_{cell}_1")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout_1")(x)
    x = layers.Bidirectional(rnn(units, return_sequences=True), name=f"bi_{cell}_2")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout_2")(x)
    x = rnn(top_units, name=f"{cell}_top")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout_top")(x)
    if n_classes == 2:
        out = layers.Dense(1, activation="sigmoid", name="p_positive")(x)
    else:
        out = layers.Dense(n_classes, activation="softmax", name="proba")(x)
    core = keras.Model(ids, out, name=f"{cell}_core")
    text = keras.Input(shape=(), dtype="string", name="text")
    token_ids = TokenIds(vocabulary, max_length, clean=True, name="tokens")
    full = keras.Model(text, core(token_ids(text)), name=f"{cell}_sentiment")
    return core, full


def compile_core(core, n_classes: int, learning_rate: float, *, soft: bool) -> str:
    """Compile ``core`` with Adam and the loss for its targets (``soft``: a teacher's probabilities); the loss.

    Binary soft targets are P(positive) values, which the built-in binary accuracy would compare with 0 and 1:
    their accuracy is the ``agreement`` metric instead, cut at 0.5 on both sides.
    """
    from ml.models.rnn.layers import agreement, keras

    if n_classes == 2:
        loss, metrics = "binary_crossentropy", ["accuracy"]
        if soft:
            metrics = [keras.metrics.MeanMetricWrapper(agreement, name="accuracy")]
    else:
        loss = "categorical_crossentropy" if soft else "sparse_categorical_crossentropy"
        metrics = ["accuracy"]
    core.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)
    return loss


def token_ids(layer, cleaned: Sequence[str], max_length: int):
    """Token ids of cleaned texts, computed in chunks by the model's own ``TokenIds`` layer."""
    import numpy as np

    chunks = [layer.ids(np.array(cleaned[i:i + _ID_CHUNK], dtype=object)).numpy()
              for i in range(0, len(cleaned), _ID_CHUNK)]
    return np.concatenate(chunks) if chunks else np.zeros((0, max_length), dtype="int32")


def copy_pretrained_vectors(core, vocabulary: Sequence[str], source: str, dim: int) -> dict[str, Any]:
    """Copy the source's vectors into the vocabulary's embedding rows (after padding and OOV buckets); facts."""
    import numpy as np

    from ml.embeddings import pretrained_vectors

    started = time.perf_counter()
    vectors, found, facts = pretrained_vectors(source, vocabulary, dim)
    layer = core.get_layer("embedding")
    (table,) = layer.get_weights()
    table[1 + OOV_BUCKETS + np.flatnonzero(found)] = vectors[found]
    layer.set_weights([table])
    facts["seconds"] = round(time.perf_counter() - started, 2)
    log.info("embedding: %d of %d vocabulary words from %s", facts["found"], len(vocabulary), facts["source"])
    return facts


def copy_layers(core, source) -> list[str]:
    """Copy the weights of ``source``'s layers into ``core``'s layers of the same name and shapes (embedding,
    recurrent layers; the output layer too when both have the same classes); the names of the layers copied.

    The rest keeps its fresh initialisation: a source of other classes gives a new output layer."""
    copied = []
    by_name = {layer.name: layer for layer in source.layers}
    for layer in core.layers:
        theirs = by_name.get(layer.name)
        mine = layer.get_weights()
        if theirs is None or not mine:
            continue
        weights = theirs.get_weights()
        if [w.shape for w in weights] == [w.shape for w in mine]:
            layer.set_weights(weights)
            copied.append(layer.name)
    log.info("started from another model: copied %s", ", ".join(copied) or "nothing")
    return copied


def atomic_weights(model, target: Path) -> None:
    """``model.save_weights`` to ``target`` through a temporary file: the file is whole or absent."""
    tmp = target.with_name(f".{target.stem}.tmp.weights.h5")
    model.save_weights(tmp)
    os.replace(tmp, target)


def dropout_rng(model, states: dict[str, list[int]] | None = None) -> dict[str, list[int]]:
    """The dropout layers' random-generator states by layer name; with ``states``, set them first.

    Weight files leave them out, and a resumed run must draw the masks an uninterrupted one would have drawn.
    """
    generators = {layer.name: layer.seed_generator for layer in model.layers
                  if getattr(layer, "seed_generator", None) is not None}
    for name, value in (states or {}).items():
        if name in generators:
            generators[name].state.assign(value)
    return {name: [int(v) for v in gen.state.numpy()] for name, gen in generators.items()}
