"""Training: fit a model family on the prepared split and save it (:mod:`.trainer`), handing the families that
distil their teacher's cached probabilities (:mod:`.teacher`).

The layer order inside ``ml``: settings, errors, text -> data -> models -> training -> evaluation. Model code
never imports this package nor :mod:`ml.settings`; it gets its options and a teacher's probabilities as
arguments from here.
"""

from ml.training.trainer import (
    build_predictor,
    distils,
    fit_predictor,
    resolve_init_from,
    resolve_model,
    resolve_teacher,
    takes_word_vectors,
    train,
    trained_models,
    transfers,
)

__all__ = ["train", "trained_models", "build_predictor", "fit_predictor", "distils", "takes_word_vectors",
           "resolve_teacher", "resolve_model", "resolve_init_from", "transfers"]
