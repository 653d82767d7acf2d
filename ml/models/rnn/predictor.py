"""The recurrent families' predictor: ``gru`` and ``lstm`` (see the package docstring)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ml.errors import ConfigError
from ml.lengths import covering_length
from ml.models.checkpoints import ensure_work_dir, work_dir_option
from ml.models.rnn import EMBEDDING_DIM, MAX_LENGTH_CAP, MODEL_FILE, OOV_BUCKETS, VOCAB_SIZE
from ml.models.rnn.fit import EpochRun
from ml.models.rnn.network import build_models, build_vocabulary, compile_core, token_ids
from ml.models.weights import check_class_weight, class_weights, row_weights
from ml.predictor import Predictor, labels_for
from ml.text import clean, tokenize

log = logging.getLogger(__name__)

_PREDICT_CHUNK = 2048


class _RecurrentPredictor(Predictor):
    cell: ClassVar[str]
    #: Learns from a teacher model's probabilities when given ``teacher`` (see :func:`ml.training.resolve_teacher`).
    distils: ClassVar[bool] = True
    #: Starts its embedding from pretrained word vectors when given ``embeddings`` (see :mod:`ml.embeddings`).
    word_vectors: ClassVar[bool] = True
    #: Starts from a saved model of its family when given ``init_from`` (see :func:`ml.training.resolve_init_from`).
    transfers: ClassVar[bool] = True

    def __init__(self, *, embedding_dim: int = EMBEDDING_DIM, units: int = 100, top_units: int = 200,
                 vocab_size: int = VOCAB_SIZE, max_length: int | None = None, max_length_cap: int = MAX_LENGTH_CAP,
                 batch_size: int = 256, epochs: int = 10, patience: int = 2, learning_rate: float = 1e-3,
                 dropout: float = 0.0, embeddings: str | os.PathLike[str] | None = None,
                 teacher: str | os.PathLike[str] | None = None, teacher_weight: float = 1.0, seed: int = 42,
                 class_weight: str = "auto", init_from: str | os.PathLike[str] | None = None, verbose: int = 0,
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
        #: The saved model directory this student distils from: :meth:`fit` then takes its probabilities
        #: (``teacher_proba``, computed and cached by :mod:`ml.training.teacher`); ``teacher_weight`` is their
        #: share of each training target, the label's share is the rest.
        self.teacher = str(teacher) if teacher else None
        self.teacher_weight = float(teacher_weight)
        #: ``auto``, ``balanced`` or ``none`` (:func:`ml.models.weights.class_weights`): each row's weight in the
        #: loss by its label, in training and in the validation loss early stopping reads.
        self.class_weight = check_class_weight(class_weight)
        #: A saved model of the same family to start from (transfer): its vocabulary, embedding and recurrent
        #: layers (and so its sizes), with a new output layer when its classes differ. ``None``: from scratch.
        self.init_from = str(init_from) if init_from else None
        if self.init_from and self.embeddings:
            raise ConfigError("init_from and embeddings both set the embedding: choose one")
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
        "class_weight": str, "init_from": str,
    }

    @classmethod
    def from_options(cls, settings, options: dict[str, Any]) -> _RecurrentPredictor:
        """Build from settings (seed) and CLI/DAG options; unknown options are ignored."""
        values = {k: cls._OPTION_TYPES[k](v) for k, v in options.items()
                  if k in cls._OPTION_TYPES and v is not None}
        return cls(seed=settings.data.seed, work_dir=work_dir_option(settings, cls.family, options),
                   keep_work_dir=bool(options.get("keep_work_dir", False)), **values)

    def params(self) -> dict[str, Any]:
        return {"cell": self.cell, "embedding_dim": self.embedding_dim, "units": self.units,
                "top_units": self.top_units, "vocab_size": self.vocab_size, "oov_buckets": OOV_BUCKETS,
                "embedding_rows": 1 + OOV_BUCKETS + self.vocab_size, "max_length": self.max_length,
                "batch_size": self.batch_size, "epochs": self.epochs, "patience": self.patience,
                "learning_rate": self.learning_rate, "dropout": self.dropout, "embeddings": self.embeddings,
                "teacher": self.teacher,
                "teacher_weight": self.teacher_weight if self.teacher else None, "class_weight": self.class_weight,
                "init_from": self.init_from, "seed": self.seed}

    def _targets(self, labels: Sequence[str], one_hot: bool = False):
        """P(positive) targets (binary), class indices, or with ``one_hot`` one-hot rows (several classes)."""
        import numpy as np

        y = np.array([self.labels.index(v) for v in labels], dtype="int32")
        if len(self.labels) == 2:
            return y.astype("float32")
        return np.eye(len(self.labels), dtype="float32")[y] if one_hot else y

    # --------------------------------------------------------------------------------------------- fit
    def fit(self, texts, labels, *, val_texts=None, val_labels=None, teacher_proba=None,
            teacher_facts: dict[str, Any] | None = None) -> dict[str, Any]:
        """Train; a student (``teacher`` set) also takes ``teacher_proba``, its teacher's probabilities on
        ``texts`` (one row per text, columns in the order of the label tuple these labels make), and
        ``teacher_facts`` about them (returned under ``"teacher"``, with the weight and the agreement)."""
        if bool(self.teacher) != (teacher_proba is not None):
            raise ConfigError(f"{self.family}: teacher_proba goes with a teacher, and a teacher needs its "
                              f"probabilities on the training texts (teacher {self.teacher!r}; ml.training computes "
                              "and caches them)")
        fit_started = time.perf_counter()
        self.labels = labels_for(labels)
        tokens = [tokenize(t) for t in texts]
        source = self._source() if self.init_from else None
        core, vocabulary = self._build(tokens, source)
        layer = self.model.get_layer("tokens")
        x = token_ids(layer, [" ".join(t) for t in tokens], self.max_length)
        soft = self.teacher is not None
        y = self._targets(labels, one_hot=soft)  # what early stopping reads on held-out rows: the labels
        work = self.work_dir = ensure_work_dir(self.work_dir, self.family)
        y_fit, teacher_facts = self._soft_targets(y, teacher_proba, teacher_facts) if soft else (y, None)
        weights = class_weights(labels, self.labels, self.class_weight)
        w = row_weights(labels, weights)
        x, y_fit, w, validation = self._validation(layer, x, y, y_fit, w, weights, val_texts, val_labels,
                                                   one_hot=soft)
        loss = compile_core(core, len(self.labels), self.learning_rate, soft=soft)
        run = EpochRun(self, core, work, x, y_fit, validation, fit_started, sample_weight=w)
        run.start(vocabulary, source)
        run.train()
        run.restore_best()
        if soft and len(self.labels) == 2:  # the saved model names built-in metrics only: any Keras loads it
            core.compile(optimizer=core.optimizer, loss=loss, metrics=["accuracy"])
        if not self.keep_work_dir:
            self.discard_work_dir()
        return {**run.facts(), "max_length": self.max_length, "vocabulary": len(vocabulary),
                "embedding_rows": layer.vocabulary_size(), "embeddings": run.embeddings, "teacher": teacher_facts,
                "class_weights": weights, "init_from": run.transfer, "history": run.history}

    def _source(self) -> dict[str, Any]:
        """The saved model ``init_from`` names: its Keras model, vocabulary and facts; the architecture's sizes
        are taken from it (they must match to copy its weights)."""
        from ml.models.rnn.layers import custom_objects, keras
        from ml.predictor import read_meta

        meta = read_meta(self.init_from)
        if meta.get("family") != self.family:
            raise ConfigError(f"init_from {self.init_from} is a {meta.get('family')} model; a {self.family} starts "
                              f"from a saved {self.family} model")
        params = meta.get("params") or {}
        for key in ("embedding_dim", "units", "top_units", "vocab_size"):
            if params.get(key) is not None:
                setattr(self, key, int(params[key]))
        model = keras.saving.load_model(Path(self.init_from) / MODEL_FILE, custom_objects=custom_objects(),
                                        compile=False)
        labels = list(meta.get("labels") or [])
        return {"core": model.get_layer(f"{self.cell}_core"), "vocabulary": model.get_layer("tokens").vocabulary,
                "facts": {"path": self.init_from, "family": meta.get("family"), "name": meta.get("name"),
                          "dataset": meta.get("dataset"), "labels": labels, "new_head": labels != list(self.labels)}}

    def _build(self, tokens: list[list[str]], source: dict[str, Any] | None = None):
        """Measure the length (unless set), build the vocabulary (the source's, when transferring) and a freshly
        seeded network; ``(core, vocab)``."""
        from ml.models.rnn.layers import keras

        if self._measure_length:
            self.max_length = covering_length([len(t) for t in tokens], cap=self.max_length_cap)
        vocabulary = list(source["vocabulary"]) if source else build_vocabulary(tokens, self.vocab_size)
        keras.utils.set_random_seed(self.seed)
        self._serve = None
        core, self.model = build_models(vocabulary, self.max_length, len(self.labels), cell=self.cell,
                                        embedding_dim=self.embedding_dim, units=self.units,
                                        top_units=self.top_units, rows=1 + OOV_BUCKETS + self.vocab_size,
                                        dropout=self.dropout)
        return core, vocabulary

    def _soft_targets(self, y, teacher_proba, facts: dict[str, Any] | None):
        """The training targets mixed from the labels ``y`` and the teacher's probabilities; facts about them."""
        import numpy as np

        soft = np.asarray(teacher_proba, dtype="float32")
        if soft.shape != (len(y), len(self.labels)):
            raise ValueError(f"teacher_proba has shape {soft.shape}, not {(len(y), len(self.labels))}")
        binary = len(self.labels) == 2
        soft = soft[:, 1] if binary else soft  # binary targets are P(positive); y is one-hot otherwise
        y_fit = (self.teacher_weight * soft + (1.0 - self.teacher_weight) * y).astype("float32")
        agreement = (soft > 0.5) == (y > 0.5) if binary else soft.argmax(axis=1) == y.argmax(axis=1)
        facts = {"path": self.teacher, **(facts or {}), "weight": self.teacher_weight,
                 "agreement": round(float(np.mean(agreement)), 4)}
        log.info("distilling from %s: weight %.2f, agrees with %.1f%% of the training labels",
                 self.teacher, self.teacher_weight, 100 * facts["agreement"])
        return y_fit, facts

    def _validation(self, layer, x, y, y_fit, w, weights, val_texts, val_labels, *, one_hot: bool):
        """``(x, y_fit, w, validation)``: the given validation rows of known classes (weighted like training rows
        when ``weights``); without any, a seeded 10% of the training rows held out (from 20 rows on; ``None``
        below). ``w`` (the training rows' weights) and ``validation`` follow the same rows."""
        import numpy as np

        pairs = [(t, v) for t, v in zip(val_texts or [], val_labels or [], strict=True) if v in self.labels]
        if pairs:
            validation = (token_ids(layer, [clean(t) for t, _ in pairs], self.max_length),
                          self._targets([v for _, v in pairs], one_hot))
            if weights:
                validation = (*validation, row_weights([v for _, v in pairs], weights))
            return x, y_fit, w, validation
        if len(x) < 20:
            return x, y_fit, w, None
        order = np.random.default_rng(self.seed).permutation(len(x))
        cut = max(len(x) // 10, 2)
        held, kept = order[:cut], order[cut:]
        validation = (x[held], y[held]) if w is None else (x[held], y[held], w[held])
        return x[kept], y_fit[kept], (None if w is None else w[kept]), validation

    # ----------------------------------------------------------------------------------------- predict
    def _serving_function(self):
        """The model on cleaned texts (its cleaning step skipped: the predictor interface cleans once for every
        family) as one traced function of a string batch of any size (no retracing per size)."""
        if getattr(self, "_serve", None) is None:
            import tensorflow as tf

            tokens, core = self.model.get_layer("tokens"), self.model.get_layer(f"{self.cell}_core")
            self._serve = tf.function(lambda x: core(tokens.ids(x), training=False), reduce_retracing=True,
                                      input_signature=[tf.TensorSpec([None], tf.string)])
        return self._serve

    def _predict_proba_cleaned(self, cleaned: Sequence[str]):
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
        from ml.models.rnn.layers import custom_objects, keras

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
