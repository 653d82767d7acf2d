"""The recurrent family (Keras 3 on TensorFlow): ``gru`` and ``lstm``.

Token representation (the write-up's): a learnable embedding of 10,501 rows by 200 dimensions, where

* row 0 is padding (masked),
* rows 1-500 are hashed buckets for out-of-vocabulary tokens (an unseen word always lands in the same bucket),
* rows 501-10,500 are the 10,000 most frequent training tokens (ties broken alphabetically).

Network: embedding -> 2 x Bidirectional(GRU(100), whole sequence) -> GRU(200) -> Dense(1, sigmoid), or
Dense(3, softmax) when the training data has neutral labels; ``lstm`` uses LSTMs in the same places. An optional
``dropout`` (off by default, as in the write-up) adds spatial dropout on the embeddings and dropout after each
recurrent layer. The sequence length is measured to cover 99% of the training tweets unless given.

Training stops early on validation loss (``patience`` epochs without improvement) and keeps the best epoch's
weights. Each epoch shuffles with a seed of its own and ends with an atomic checkpoint (weights with the
optimizer's state, the history) in a work directory, so an interrupted fit (a killed Airflow task that retries)
resumes at the next epoch, in the same order, instead of starting over.

Knowledge distillation (``teacher``, off by default): given a saved model of any family (typically a fine-tuned
transformer), the network learns from a mix of the labels and the teacher's probabilities on the training texts
(``teacher_weight`` = the teacher's share of each target; Hinton et al. 2015, and Tang et al. 2019 for BiLSTMs
distilled from BERT). The teacher's probabilities are computed once and cached (``teacher_cache``, in a run:
``$SENTIMENT_HOME/cache/teacher``), so a resumed fit, or the LSTM after the GRU, does not recompute them; early
stopping still reads the labels of the validation data. The saved model does not need the teacher. On CPU-sized
data (93.7k tweets of ``head_tail_100k``) this is what lifts GRU and LSTM above LogisticRegression: see the
README's figures.

The saved ``model.keras`` maps raw tweets to probabilities on its own: its first layer (``TokenIds``, see
:func:`token_ids_layer`) cleans them with :func:`ml.text.clean` (the one cleaner), splits them and looks the
tokens up in the vocabulary stored inside the file, so it needs no other state (load it with
:func:`custom_objects`). The cleaning is Python run through ``tf.py_function``: loading needs this package
importable, and ``model.export`` of it does not reload in another process (TensorFlow keeps Python callbacks
out of SavedModels). Files saved before that layer cleaned (no ``clean`` in its config) read cleaned text, as
they did. The predictor cleans once for every family and feeds the network past that step.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ml.errors import ConfigError
from ml.lengths import covering_length
from ml.models.checkpoints import discard, ensure_work_dir, fingerprint, resumable_state, work_dir_option, write_last
from ml.predictor import Predictor, labels_for
from ml.text import clean, tokenize

log = logging.getLogger(__name__)

VOCAB_SIZE = 10_000
OOV_BUCKETS = 500
EMBEDDING_DIM = 200
MODEL_FILE = "model.keras"
#: Rows of the embedding: padding + OOV buckets + vocabulary.
EMBEDDING_ROWS = 1 + OOV_BUCKETS + VOCAB_SIZE
MAX_LENGTH_CAP = 100
_PREDICT_CHUNK = 2048


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def build_vocabulary(token_lists: Iterable[Sequence[str]], size: int = VOCAB_SIZE) -> list[str]:
    """The ``size`` most frequent tokens, most frequent first; ties in alphabetical order (deterministic)."""
    counts = Counter(token for tokens in token_lists for token in tokens)
    return [token for token, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]]


def _atomic_weights(model, target: Path) -> None:
    """``model.save_weights`` to ``target`` through a temporary file: the file is whole or absent."""
    tmp = target.with_name(f".{target.stem}.tmp.weights.h5")
    model.save_weights(tmp)
    os.replace(tmp, target)


def _dropout_rng(model, states: dict[str, list[int]] | None = None) -> dict[str, list[int]]:
    """The dropout layers' random-generator states by layer name; with ``states``, set them first.

    Weight files leave them out, and a resumed run must draw the masks an uninterrupted one would have drawn.
    """
    generators = {layer.name: layer.seed_generator for layer in model.layers
                  if getattr(layer, "seed_generator", None) is not None}
    for name, value in (states or {}).items():
        if name in generators:
            generators[name].state.assign(value)
    return {name: [int(v) for v in gen.state.numpy()] for name, gen in generators.items()}


_LAYERS: dict[str, Any] = {}


def agreement_metric():
    """Binary accuracy that also reads soft targets (a teacher's probabilities): both sides cut at 0.5.

    Registered with Keras on first use (the training model's compile config names it, so loading needs it).
    """
    if "agreement" not in _LAYERS:
        keras = _keras()

        @keras.saving.register_keras_serializable(package="sentiment", name="agreement")
        def agreement(y_true, y_pred):
            ops = keras.ops
            y_true = ops.reshape(y_true, ops.shape(y_pred))  # (batch,) targets against (batch, 1) outputs
            return ops.mean(ops.cast(ops.equal(y_true > 0.5, y_pred > 0.5), "float32"), axis=-1)

        _LAYERS["agreement"] = agreement
    return _LAYERS["agreement"]


def token_ids_layer() -> type:
    """The ``TokenIds`` Keras layer class, defined on first use so that importing this module stays cheap."""
    if "TokenIds" in _LAYERS:
        return _LAYERS["TokenIds"]
    keras = _keras()
    import tensorflow as tf

    def clean_batch(batch):
        """The project's cleaner (:func:`ml.text.clean`, the one used everywhere) over a string tensor."""
        return tf.constant([clean(t.decode("utf-8", errors="replace")) for t in batch.numpy().tolist()],
                           dtype=tf.string, shape=[len(batch)])

    @keras.saving.register_keras_serializable(package="sentiment")
    class TokenIds(keras.layers.Layer):
        """Text -> int ids of shape ``(batch, max_length)``.

        With ``clean`` (what :func:`build_models` saves) the layer reads raw tweets and cleans them with
        :func:`ml.text.clean` itself, so a loaded ``model.keras`` predicts on raw text; :meth:`ids` skips that
        step for text already cleaned (training, and the predictor, which cleans once for every family).
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
                texts = tf.py_function(clean_batch, [texts], tf.string)
                texts.set_shape([None])
            return self.ids(texts)

        def vocabulary_size(self) -> int:
            return int(self.lookup.vocabulary_size())

        def compute_output_shape(self, input_shape):
            return (input_shape[0], self.max_length)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "vocabulary": self.vocabulary, "max_length": self.max_length,
                    "num_oov_indices": self.num_oov_indices, "clean": self.clean}

    _LAYERS["TokenIds"] = TokenIds
    return TokenIds


def custom_objects() -> dict[str, Any]:
    """What ``keras.saving.load_model`` needs to load a saved ``model.keras`` on its own, which then predicts on
    raw tweets (it cleans them itself)::

        model = keras.saving.load_model("…/gru/model.keras", custom_objects=custom_objects())
        model.predict(np.array(["I LOVE this!!! http://t.co/x"]))   # P(positive), shape (1, 1)
    """
    return {"sentiment>TokenIds": token_ids_layer(), "sentiment>agreement": agreement_metric()}


def build_models(vocabulary: Sequence[str], max_length: int, n_classes: int, *, cell: str = "gru",
                 embedding_dim: int = 200, units: int = 100, top_units: int = 200,
                 rows: int = EMBEDDING_ROWS, dropout: float = 0.0):
    """``(core, full)`` Keras models sharing their weights.

    ``core`` maps token ids ``(batch, max_length)`` to probabilities (trained on ids computed once); ``full``
    maps raw tweets to the same probabilities through a cleaning ``TokenIds`` layer (what is saved).
    """
    keras = _keras()
    from keras import layers

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
    token_ids = token_ids_layer()(vocabulary, max_length, clean=True, name="tokens")
    full = keras.Model(text, core(token_ids(text)), name=f"{cell}_sentiment")
    return core, full


class _RecurrentPredictor(Predictor):
    cell: ClassVar[str]
    #: Learns from a teacher model's probabilities when given ``teacher`` (see :func:`ml.training.resolve_teacher`).
    distils: ClassVar[bool] = True
    #: Starts its embedding from pretrained word vectors when given ``embeddings`` (see :mod:`ml.embeddings`).
    word_vectors: ClassVar[bool] = True

    def __init__(self, *, embedding_dim: int = EMBEDDING_DIM, units: int = 100, top_units: int = 200,
                 vocab_size: int = VOCAB_SIZE, max_length: int | None = None, max_length_cap: int = MAX_LENGTH_CAP,
                 batch_size: int = 256, epochs: int = 10, patience: int = 2, learning_rate: float = 1e-3,
                 dropout: float = 0.0, embeddings: str | os.PathLike[str] | None = None,
                 teacher: str | os.PathLike[str] | None = None, teacher_weight: float = 1.0, seed: int = 42, verbose: int = 0,
                 work_dir: str | os.PathLike[str] | None = None, keep_work_dir: bool = False) -> None:
        if not 0.0 < teacher_weight <= 1.0:
            raise ConfigError(f"teacher_weight must be above 0 and at most 1, not {teacher_weight} "
                              "(for the labels alone, train without a teacher)")
        self.embedding_dim = embedding_dim
        self.units = units
        self.top_units = top_units
        self.vocab_size = vocab_size
        self.max_length = max_length
        self._measure_length = max_length is None  # each fit measures its own data's length (a refit too)
        self.max_length_cap = max_length_cap
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.learning_rate = learning_rate
        self.dropout = dropout
        #: Pretrained vectors for the vocabulary's rows: ``"minilm"`` or a word-vector file (see
        #: :mod:`ml.embeddings`); ``None``: random initialisation.
        self.embeddings = str(embeddings) if embeddings else None
        #: The saved model directory this student distils from (see the module docstring): :meth:`fit` then
        #: takes its probabilities (``teacher_proba``, computed and cached by :mod:`ml.training.teacher`);
        #: ``teacher_weight`` is their share of each training target, the label's share is the rest.
        self.teacher = str(teacher) if teacher else None
        self.teacher_weight = float(teacher_weight)
        self.seed = seed
        self.verbose = verbose
        #: Checkpoints of the running fit (``last``: weights, optimizer, epoch; ``best.weights.h5``). A fit that
        #: finds a checkpoint of the same run there resumes from it. Removed after success unless kept.
        self.work_dir = Path(work_dir) if work_dir else None
        self.keep_work_dir = keep_work_dir
        #: Called after every epoch with ``{"epoch", "history"}`` (progress hooks, tests).
        self.callbacks: list = []
        self.model = None
        self._serve = None

    _OPTION_TYPES: ClassVar[dict[str, type]] = {
        "embedding_dim": int, "units": int, "top_units": int, "vocab_size": int, "max_length": int,
        "max_length_cap": int, "batch_size": int, "epochs": int, "patience": int, "learning_rate": float,
        "dropout": float, "embeddings": str, "teacher": str, "teacher_weight": float, "verbose": int,
    }

    @classmethod
    def from_options(cls, settings, options: dict[str, Any]) -> _RecurrentPredictor:
        """Build from settings (seed) and CLI/DAG options; unknown options are ignored."""
        values = {k: cls._OPTION_TYPES[k](v) for k, v in options.items()
                  if k in cls._OPTION_TYPES and v is not None}
        return cls(seed=settings.seed, work_dir=work_dir_option(settings, cls.family, options),
                   keep_work_dir=bool(options.get("keep_work_dir", False)), **values)

    def params(self) -> dict[str, Any]:
        return {"cell": self.cell, "embedding_dim": self.embedding_dim, "units": self.units,
                "top_units": self.top_units, "vocab_size": self.vocab_size, "oov_buckets": OOV_BUCKETS,
                "embedding_rows": 1 + OOV_BUCKETS + self.vocab_size, "max_length": self.max_length,
                "batch_size": self.batch_size, "epochs": self.epochs, "patience": self.patience,
                "learning_rate": self.learning_rate, "dropout": self.dropout, "embeddings": self.embeddings,
                "teacher": self.teacher,
                "teacher_weight": self.teacher_weight if self.teacher else None, "seed": self.seed}

    def _targets(self, labels: Sequence[str], one_hot: bool = False):
        """P(positive) targets (binary), class indices, or with ``one_hot`` one-hot rows (several classes)."""
        import numpy as np

        y = np.array([self.labels.index(v) for v in labels], dtype="int32")
        if len(self.labels) == 2:
            return y.astype("float32")
        return np.eye(len(self.labels), dtype="float32")[y] if one_hot else y

    def _ids(self, token_ids, cleaned: Sequence[str]):
        """Token ids of cleaned texts, computed in chunks by the model's own lookup layer."""
        import numpy as np

        chunks = [token_ids.ids(np.array(cleaned[i:i + 8192], dtype=object)).numpy()
                  for i in range(0, len(cleaned), 8192)]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.max_length), dtype="int32")

    def fit(self, texts, labels, *, val_texts=None, val_labels=None, teacher_proba=None,
            teacher_facts: dict[str, Any] | None = None) -> dict[str, Any]:
        """Train; a student (``teacher`` set) also takes ``teacher_proba``, its teacher's probabilities on
        ``texts`` (one row per text, columns in the order of the label tuple these labels make), and
        ``teacher_facts`` about them (returned under ``"teacher"``, with the weight and the agreement)."""
        import numpy as np

        if bool(self.teacher) != (teacher_proba is not None):
            raise ConfigError(f"{self.family}: teacher_proba goes with a teacher, and a teacher needs its "
                              f"probabilities on the training texts (teacher {self.teacher!r}; ml.training computes "
                              "and caches them)")

        fit_started = time.perf_counter()
        keras = _keras()
        self.labels = labels_for(labels)
        tokens = [tokenize(t) for t in texts]
        if self._measure_length:
            self.max_length = covering_length([len(t) for t in tokens], cap=self.max_length_cap)
        vocabulary = build_vocabulary(tokens, self.vocab_size)
        keras.utils.set_random_seed(self.seed)
        self._serve = None
        core, self.model = build_models(vocabulary, self.max_length, len(self.labels), cell=self.cell,
                                        embedding_dim=self.embedding_dim, units=self.units,
                                        top_units=self.top_units, rows=1 + OOV_BUCKETS + self.vocab_size,
                                        dropout=self.dropout)
        token_ids = self.model.get_layer("tokens")
        cleaned = [" ".join(t) for t in tokens]
        x = self._ids(token_ids, cleaned)
        binary = len(self.labels) == 2
        one_hot = bool(self.teacher) and not binary  # soft targets over several classes
        y = self._targets(labels, one_hot)  # what early stopping reads on held-out rows: the labels
        work = self._work_dir()
        y_fit = y
        if not self.teacher:
            teacher_facts = None
        else:
            soft = np.asarray(teacher_proba, dtype="float32")
            if soft.shape != (len(cleaned), len(self.labels)):
                raise ValueError(f"teacher_proba has shape {soft.shape}, not {(len(cleaned), len(self.labels))}")
            teacher_facts = {"path": self.teacher, **(teacher_facts or {})}
            soft = soft[:, 1] if binary else soft  # binary targets are P(positive); y is one-hot otherwise
            y_fit = (self.teacher_weight * soft + (1.0 - self.teacher_weight) * y).astype("float32")
            teacher_facts.update(weight=self.teacher_weight, agreement=round(float(np.mean(
                (soft > 0.5) == (y > 0.5) if binary else soft.argmax(axis=1) == y.argmax(axis=1))), 4))
            log.info("distilling from %s: weight %.2f, agrees with %.1f%% of the training labels",
                     self.teacher, self.teacher_weight, 100 * teacher_facts["agreement"])

        pairs = [(t, v) for t, v in zip(val_texts or [], val_labels or [], strict=True) if v in self.labels]
        if pairs:
            validation = (self._ids(token_ids, [clean(t) for t, _ in pairs]),
                          self._targets([v for _, v in pairs], one_hot))
        elif len(x) >= 20:  # no validation data given: hold out a seeded 10% for early stopping
            order = np.random.default_rng(self.seed).permutation(len(x))
            cut = max(len(x) // 10, 2)
            validation = (x[order[:cut]], y[order[:cut]])
            x, y_fit = x[order[cut:]], y_fit[order[cut:]]
        else:
            validation = None
        if binary:
            loss, metrics = "binary_crossentropy", ["accuracy"]
            if self.teacher:  # soft targets: the built-in binary accuracy would compare them with 0 and 1
                metrics = [keras.metrics.MeanMetricWrapper(agreement_metric(), name="accuracy")]
        else:
            loss = "categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy"
            metrics = ["accuracy"]
        core.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss=loss, metrics=metrics)
        monitor = "val_loss" if validation is not None else "loss"
        fingerprint = self._fingerprint(x, y_fit, validation)
        state = self._resume(work, core, fingerprint)
        if state is None:  # a resumed fit has its trained embedding in the checkpoint
            embedding_facts = self._pretrained_embedding(core, vocabulary) if self.embeddings else None
        else:
            embedding_facts = state.get("embeddings")
        resumed_from = state["epoch"] if state else None
        earlier_seconds = float(state.get("seconds", 0.0)) if state else 0.0  # the interrupted attempts' time
        history: dict[str, list[float]] = state["history"] if state else {}
        best: dict[str, Any] | None = state["best"] if state else None
        epoch = state["epoch"] if state else 0
        if resumed_from is not None:
            log.info("resuming %s from epoch %d of %d (%s)", self.family, resumed_from, self.epochs, work)
        while epoch < self.epochs and (best is None or epoch - best["epoch"] < self.patience):
            # One fit call per epoch over a (seed, epoch)-shuffled copy: a resumed run sees the same order.
            order = np.random.default_rng([self.seed, epoch]).permutation(len(x))
            logs = core.fit(x[order], y_fit[order], validation_data=validation, initial_epoch=epoch, epochs=epoch + 1,
                            batch_size=self.batch_size, shuffle=False, verbose=self.verbose).history
            epoch += 1
            for key, values in logs.items():
                history.setdefault(key, []).append(round(float(values[-1]), 5))
            if best is None or history[monitor][-1] < best["value"]:
                best = {"epoch": epoch, "value": history[monitor][-1]}
                _atomic_weights(core, work / "best.weights.h5")
            self._checkpoint(work, core, {"fingerprint": fingerprint, "epoch": epoch, "history": history,
                                          "best": best, "dropout_rng": _dropout_rng(core),
                                          "embeddings": embedding_facts,
                                          "seconds": earlier_seconds + time.perf_counter() - fit_started})
            for callback in self.callbacks:
                callback({"epoch": epoch, "history": history})
        if best is not None and best["epoch"] != epoch:  # early stopping keeps the best epoch's weights
            core.load_weights(work / "best.weights.h5")
        if self.teacher and binary:  # the saved model names built-in metrics only: any Keras loads it
            core.compile(optimizer=core.optimizer, loss=loss, metrics=["accuracy"])
        if not self.keep_work_dir:
            self.discard_work_dir()
        return {"epochs_run": epoch, "best_epoch": best["epoch"] if best else epoch, "resumed_from_epoch": resumed_from,
                "earlier_seconds": round(earlier_seconds, 2) if state else None,
                "max_length": self.max_length, "vocabulary": len(vocabulary),
                "embedding_rows": token_ids.vocabulary_size(), "embeddings": embedding_facts, "teacher": teacher_facts,
                "history": history}

    def _pretrained_embedding(self, core, vocabulary: Sequence[str]) -> dict[str, Any]:
        """Copy the source's vectors into the vocabulary's embedding rows (after padding and OOV buckets)."""
        import numpy as np

        from ml.embeddings import pretrained_vectors

        started = time.perf_counter()
        vectors, found, facts = pretrained_vectors(self.embeddings, vocabulary, self.embedding_dim)
        layer = core.get_layer("embedding")
        (table,) = layer.get_weights()
        table[1 + OOV_BUCKETS + np.flatnonzero(found)] = vectors[found]
        layer.set_weights([table])
        facts["seconds"] = round(time.perf_counter() - started, 2)
        log.info("embedding: %d of %d vocabulary words from %s", facts["found"], len(vocabulary), facts["source"])
        return facts

    # ------------------------------------------------------------------------------------- checkpoints
    def _work_dir(self) -> Path:
        self.work_dir = ensure_work_dir(self.work_dir, self.family)
        return self.work_dir

    def _fingerprint(self, x, y, validation) -> str:
        """Identifies a training run: a checkpoint is only resumed by the same token ids, labels and settings."""
        settings = {k: v for k, v in self.params().items() if k not in ("epochs", "patience")}
        return fingerprint([array.tobytes() for array in (x, y, *(validation or ()))], settings)

    def _checkpoint(self, work: Path, core, state: dict[str, Any]) -> None:
        """Write ``work/last`` atomically: weights with the optimizer's state, and the epoch, history, best."""
        with write_last(work, state) as tmp:
            core.save_weights(tmp / "model.weights.h5")

    def _resume(self, work: Path, core, fingerprint: str) -> dict[str, Any] | None:
        """Load ``work/last`` into ``core`` when it belongs to this run and return its state, else ``None``."""
        state = resumable_state(work, fingerprint, discard_with=("best.weights.h5",))
        if state is None:
            return None
        if state["epoch"] > self.epochs:  # trained longer than this fit asks: not a part of it
            log.warning("ignoring the checkpoint in %s: it is at epoch %d, past this fit's %d epochs",
                        work, state["epoch"], self.epochs)
            discard(work, ("best.weights.h5",))
            return None
        best = state.get("best")
        if state["epoch"] >= self.epochs or (best and state["epoch"] - best["epoch"] >= self.patience):
            log.warning("%s: the checkpoint in %s holds a finished fit whose model was not saved; using it",
                        self.family, work)
        core.optimizer.build(core.trainable_variables)
        core.load_weights(work / "last" / "model.weights.h5")
        _dropout_rng(core, state.get("dropout_rng"))
        return state

    def _serving_function(self):
        """The model on cleaned texts (its cleaning step skipped: the predictor interface cleans once for every
        family) as one traced function of a string batch of any size (no retracing per size)."""
        if getattr(self, "_serve", None) is None:
            import tensorflow as tf

            tokens, core = self.model.get_layer("tokens"), self.model.get_layer(f"{self.cell}_core")
            self._serve = tf.function(lambda x: core(tokens.ids(x), training=False), reduce_retracing=True,
                                      input_signature=[tf.TensorSpec([None], tf.string)])
        return self._serve

    def predict_proba_cleaned(self, cleaned: Sequence[str]):
        import numpy as np

        if self.model is None:
            raise RuntimeError("model is not trained")
        texts = list(cleaned)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        serve = self._serving_function() if texts else None
        for start in range(0, len(texts), _PREDICT_CHUNK):
            batch = np.array(texts[start:start + _PREDICT_CHUNK], dtype=object)
            proba = np.asarray(serve(batch), dtype=np.float64)
            if len(self.labels) == 2:
                proba = np.column_stack([1.0 - proba[:, 0], proba[:, 0]])
            out[start:start + len(batch)] = proba
        return out

    def _save(self, path: Path) -> None:
        self.model.save(path / MODEL_FILE)

    @classmethod
    def _load(cls, path: Path, meta: dict[str, Any]) -> Predictor:
        keras = _keras()
        params = meta.get("params", {})
        known = {k: params[k] for k in cls._OPTION_TYPES if params.get(k) is not None and k != "verbose"}
        self = cls(seed=params.get("seed", 42), **known)
        self.model = keras.saving.load_model(path / MODEL_FILE, custom_objects=custom_objects(), compile=False)
        self.max_length = self.model.get_layer("tokens").max_length
        return self


class GRUPredictor(_RecurrentPredictor):
    family = "gru"
    cell = "gru"


class LSTMPredictor(_RecurrentPredictor):
    family = "lstm"
    cell = "lstm"
