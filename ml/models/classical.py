"""The classical family: TF-IDF over word 1-4 grams (50,000 features) feeding a linear model.

* ``logreg``: LogisticRegression.
* ``linearsvc``: LinearSVC wrapped in sigmoid calibration, so it yields probabilities and the Neutral band
  works for it too.
* ``multinomialnb``: MultinomialNB.

Class weights (``class_weight``, see :mod:`ml.models.weights`) reach LogisticRegression as its ``class_weight``,
and the other two as ``sample_weight`` in ``fit`` (the calibration of LinearSVC is weighted too).

The vectorizer tokenizes with :func:`ml.text.tokenize`, the same cleaner the service and the Spark job use; on
text that is already clean, :meth:`~ml.predictor.Predictor.predict_proba_cleaned` splits on whitespace instead.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ml.models.weights import check_class_weight, class_weights, row_weights
from ml.predictor import Predictor, labels_for
from ml.text import tokenize

MODEL_FILE = "model.joblib"


class _ClassicalPredictor(Predictor):
    #: How the estimator takes class weights: its own ``class_weight`` parameter, or ``sample_weight`` in ``fit``
    #: (MultinomialNB has no class_weight; the calibrated LinearSVC must weigh its calibration too).
    weights_by: ClassVar[str] = "sample_weight"

    def __init__(self, max_features: int = 50_000, ngram_max: int = 4, seed: int = 42, n_jobs: int = 1,
                 class_weight: str = "auto") -> None:
        self.max_features = max_features
        self.ngram_max = ngram_max
        self.seed = seed
        self.n_jobs = n_jobs
        #: ``auto``, ``balanced`` or ``none`` (:func:`ml.models.weights.class_weights`).
        self.class_weight = check_class_weight(class_weight)
        self.pipeline = None
        self._split = None  # see _split_vectorizer

    @classmethod
    def from_options(cls, settings, options: dict[str, Any]) -> _ClassicalPredictor:
        return cls(max_features=settings.training.max_features, ngram_max=settings.training.ngram_max, seed=settings.data.seed,
                   n_jobs=int(options.get("n_jobs", 1)), class_weight=str(options.get("class_weight", "auto")))

    def _estimator(self, class_weight: dict[int, float] | None = None):  # pragma: no cover - overridden
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {"max_features": self.max_features, "ngram_range": [1, self.ngram_max], "seed": self.seed,
                "estimator": type(self._estimator()).__name__, "class_weight": self.class_weight}

    def fit(self, texts, labels, *, val_texts=None, val_labels=None) -> dict[str, Any]:
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import Pipeline

        self.labels = labels_for(labels)
        y = np.array([self.labels.index(label) for label in labels])
        vectorizer = TfidfVectorizer(
            tokenizer=tokenize, preprocessor=None, lowercase=False, token_pattern=None,
            ngram_range=(1, self.ngram_max), max_features=self.max_features, sublinear_tf=True,
            dtype=np.float32,
        )
        weights = class_weights(labels, self.labels, self.class_weight)
        by_index = {self.labels.index(c): w for c, w in weights.items()} if weights else None
        self._split = None
        estimator = self._estimator(by_index if self.weights_by == "class_weight" else None)
        self.pipeline = Pipeline([("tfidf", vectorizer), ("clf", estimator)])
        fit_params = {}
        if weights and self.weights_by == "sample_weight":
            fit_params["clf__sample_weight"] = row_weights(labels, weights)
        self.pipeline.fit(list(texts), y, **fit_params)
        return {"vocabulary": len(vectorizer.vocabulary_), "class_weights": weights}

    def _predict_proba(self, texts: Sequence[str]):
        # The vectorizer cleans raw text itself (its tokenizer is ml.text.tokenize): no separate pass.
        return self._proba(list(texts), self.pipeline.named_steps["tfidf"] if self.pipeline is not None else None)

    def _predict_proba_cleaned(self, cleaned: Sequence[str]):
        return self._proba(list(cleaned), self._split_vectorizer())

    def _split_vectorizer(self):
        """The fitted vectorizer with ``str.split`` as tokenizer (same vocabulary and idf, shared, not copied).

        ``tokenize(clean(t)) == clean(t).split()`` because cleaning is idempotent, so on cleaned text it gives
        exactly the features of the fitted one at a fraction of the cost.
        """
        if self.pipeline is None:
            return None
        if self._split is None:
            self._split = copy.copy(self.pipeline.named_steps["tfidf"])
            self._split.tokenizer = str.split
        return self._split

    def _proba(self, texts: list[str], vectorizer):
        import numpy as np

        if self.pipeline is None:
            raise RuntimeError("model is not trained")
        proba = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        if texts:
            # Columns follow the estimator's classes_, which are label indices.
            clf = self.pipeline.named_steps["clf"]
            proba[:, clf.classes_] = clf.predict_proba(vectorizer.transform(texts))
        return proba

    def _save(self, path: Path) -> None:
        import joblib

        joblib.dump(self.pipeline, path / MODEL_FILE, compress=3)

    @classmethod
    def _load(cls, path: Path, meta: dict[str, Any]) -> Predictor:
        import joblib

        self = cls(class_weight=(meta.get("params") or {}).get("class_weight", "auto"))
        self.pipeline = joblib.load(path / MODEL_FILE)
        return self


class LogRegPredictor(_ClassicalPredictor):
    family = "logreg"
    weights_by = "class_weight"

    def _estimator(self, class_weight: dict[int, float] | None = None):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=1.0, max_iter=1000, random_state=self.seed, class_weight=class_weight)


class LinearSVCPredictor(_ClassicalPredictor):
    family = "linearsvc"

    def _estimator(self, class_weight: dict[int, float] | None = None):
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import LinearSVC

        return CalibratedClassifierCV(
            LinearSVC(C=0.5, random_state=self.seed), method="sigmoid", cv=3, n_jobs=self.n_jobs
        )


class MultinomialNBPredictor(_ClassicalPredictor):
    family = "multinomialnb"

    def _estimator(self, class_weight: dict[int, float] | None = None):
        from sklearn.naive_bayes import MultinomialNB

        return MultinomialNB(alpha=1.0)
