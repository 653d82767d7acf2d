"""One fit's epochs of a GRU/LSTM (:class:`EpochRun`): early stopping on the monitored loss (class-weighted when
the fit weighs classes), the best epoch's weights, and a checkpoint after each epoch (:mod:`ml.models.checkpoints`)
from which an interrupted fit resumes at the next epoch, in the same order. Keras is only reached through the
model objects handed in."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.models.checkpoints import discard, fingerprint, resumable_state, write_last
from ml.models.rnn.network import atomic_weights, copy_layers, copy_pretrained_vectors, dropout_rng

if TYPE_CHECKING:
    from ml.models.rnn.predictor import _RecurrentPredictor

log = logging.getLogger(__name__)

BEST = "best.weights.h5"


class EpochRun:
    """The epochs of one fit of ``predictor`` on ``core``: :meth:`start` (resume, or begin at epoch 0), then
    :meth:`train`, then :meth:`restore_best`. ``validation`` is ``(x, y)`` or ``None`` (then the training loss
    is monitored)."""

    def __init__(self, predictor: _RecurrentPredictor, core, work: Path, x, y_fit, validation,
                 fit_started: float, sample_weight=None) -> None:
        self.predictor, self.core, self.work = predictor, core, work
        self.x, self.y_fit, self.validation = x, y_fit, validation
        #: Each training row's weight in the loss (class weights), or ``None``; ``validation`` carries its own.
        self.sample_weight = sample_weight
        self.fit_started = fit_started
        settings = {k: v for k, v in predictor.params().items() if k not in ("epochs", "patience")}
        arrays = (x, y_fit, *(validation or ()), *(() if sample_weight is None else (sample_weight,)))
        #: Identifies the run: a checkpoint is only resumed by the same token ids, labels, weights and settings.
        self.fingerprint = fingerprint([array.tobytes() for array in arrays], settings)
        self.epoch = 0
        self.history: dict[str, list[float]] = {}
        self.best: dict[str, Any] | None = None
        self.embeddings: dict[str, Any] | None = None
        self.transfer: dict[str, Any] | None = None  # the model the fit started from (init_from), and what it copied
        self.resumed_from: int | None = None
        self.earlier_seconds: float | None = None  # the interrupted attempts' time, when resumed

    def start(self, vocabulary: Sequence[str], source: dict[str, Any] | None = None) -> None:
        """Resume from ``work/last`` when it holds a checkpoint of this run; otherwise start at epoch 0, from the
        pretrained word vectors or the ``source`` model's weights when asked (a resumed fit has its trained
        weights in the checkpoint)."""
        p = self.predictor
        state = self._resume()
        if state is None:
            if p.embeddings:
                self.embeddings = copy_pretrained_vectors(self.core, vocabulary, p.embeddings, p.embedding_dim)
            if source is not None:
                self.transfer = {**source["facts"], "copied": copy_layers(self.core, source["core"])}
            return
        self.epoch = self.resumed_from = state["epoch"]
        self.history, self.best, self.embeddings = state["history"], state["best"], state.get("embeddings")
        self.transfer = state.get("transfer")
        self.earlier_seconds = float(state.get("seconds", 0.0))
        log.info("resuming %s from epoch %d of %d (%s)", p.family, self.epoch, p.epochs, self.work)

    def _resume(self) -> dict[str, Any] | None:
        """Load ``work/last`` into the core when it belongs to this run and return its state, else ``None``."""
        p, core, work = self.predictor, self.core, self.work
        state = resumable_state(work, self.fingerprint, discard_with=(BEST,))
        if state is None:
            return None
        if state["epoch"] > p.epochs:  # trained longer than this fit asks: not a part of it
            log.warning("ignoring the checkpoint in %s: it is at epoch %d, past this fit's %d epochs",
                        work, state["epoch"], p.epochs)
            discard(work, (BEST,))
            return None
        best = state.get("best")
        if state["epoch"] >= p.epochs or (best and state["epoch"] - best["epoch"] >= p.patience):
            log.warning("%s: the checkpoint in %s holds a finished fit whose model was not saved; using it",
                        p.family, work)
        core.optimizer.build(core.trainable_variables)
        core.load_weights(work / "last" / "model.weights.h5")
        dropout_rng(core, state.get("dropout_rng"))
        return state

    def train(self) -> None:
        """Epochs until ``epochs`` or early stopping; each ends with a checkpoint (and the best weights)."""
        import numpy as np

        p, core, x, y_fit = self.predictor, self.core, self.x, self.y_fit
        monitor = "val_loss" if self.validation is not None else "loss"
        while self.epoch < p.epochs and (self.best is None or self.epoch - self.best["epoch"] < p.patience):
            # One fit call per epoch over a (seed, epoch)-shuffled copy: a resumed run sees the same order.
            order = np.random.default_rng([p.seed, self.epoch]).permutation(len(x))
            weight = None if self.sample_weight is None else self.sample_weight[order]
            logs = core.fit(x[order], y_fit[order], sample_weight=weight, validation_data=self.validation,
                            initial_epoch=self.epoch, epochs=self.epoch + 1, batch_size=p.batch_size, shuffle=False,
                            verbose=p.verbose).history
            self.epoch += 1
            for key, values in logs.items():
                self.history.setdefault(key, []).append(round(float(values[-1]), 5))
            if self.best is None or self.history[monitor][-1] < self.best["value"]:
                self.best = {"epoch": self.epoch, "value": self.history[monitor][-1]}
                atomic_weights(core, self.work / BEST)
            self.checkpoint()
            for callback in p.callbacks:
                callback({"epoch": self.epoch, "history": self.history})

    def checkpoint(self) -> None:
        """Write ``work/last`` atomically: weights with the optimizer's state, and the epoch, history, best."""
        state = {"fingerprint": self.fingerprint, "epoch": self.epoch, "history": self.history, "best": self.best,
                 "dropout_rng": dropout_rng(self.core), "embeddings": self.embeddings, "transfer": self.transfer,
                 "seconds": (self.earlier_seconds or 0.0) + time.perf_counter() - self.fit_started}
        with write_last(self.work, state) as tmp:
            self.core.save_weights(tmp / "model.weights.h5")

    def restore_best(self) -> None:
        """Early stopping keeps the best epoch's weights."""
        if self.best is not None and self.best["epoch"] != self.epoch:
            self.core.load_weights(self.work / BEST)

    def facts(self) -> dict[str, Any]:
        """The run's part of what ``fit`` returns."""
        return {"epochs_run": self.epoch, "best_epoch": self.best["epoch"] if self.best else self.epoch,
                "resumed_from_epoch": self.resumed_from,
                "earlier_seconds": round(self.earlier_seconds, 2) if self.earlier_seconds is not None else None}
