"""One fine-tuning run of a transformer predictor, step by step (:class:`FineTuning`).

AdamW with linear warm-up and decay, gradient accumulation and clipping (in :class:`TrainLoop`); an evaluation
every N steps that keeps the best weights; checkpoints in a work directory (:mod:`ml.models.checkpoints`) from
which an interrupted run resumes with the same step count, batch order and random state.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.models.checkpoints import fingerprint, resumable_state, write_last
from ml.models.transformer.batching import length_grouped_batches, make_batch, pad_id_of
from ml.models.transformer.compilation import resolve_compile_scope, use_compile_cache
from ml.models.transformer.config import TrainConfig
from ml.models.transformer.loop import TrainLoop
from ml.predictor import atomic_dir

if TYPE_CHECKING:
    import numpy as np

    from ml.models.transformer.predictor import TransformerPredictor

log = logging.getLogger(__name__)

#: Options that change how a run goes, not what it learns: a checkpoint resumes across them.
_NOT_FINGERPRINTED = ("progress", "predict_batch_size", "eval_every", "save_every", "device", "compile",
                      "compile_mode", "compile_scope")


@dataclass
class FitData:
    """A fit's encoded texts: the cleaned training texts, their token ids and class indices, and the validation
    set's ids and indices (``None`` without validation data)."""

    cleaned: list[str]
    seqs: list[list[int]]
    y: np.ndarray
    val_seqs: list[list[int]] | None = None
    val_y: np.ndarray | None = None


@dataclass
class StepPlan:
    """How many optimizer steps a fit takes, and how often it evaluates and checkpoints."""

    steps_per_epoch: int
    total_steps: int
    eval_every: int
    save_every: int

    @classmethod
    def of(cls, cfg: TrainConfig, n_texts: int) -> StepPlan:
        steps_per_epoch = math.ceil(math.ceil(n_texts / cfg.batch_size) / cfg.grad_accum)
        total_steps = steps_per_epoch * cfg.epochs
        if cfg.max_steps:
            total_steps = min(total_steps, cfg.max_steps)
        eval_every = cfg.eval_every or max(steps_per_epoch // 2, 1)
        return cls(steps_per_epoch, total_steps, eval_every, cfg.save_every or eval_every)


def validation_subset(classes, texts, labels, cfg: TrainConfig) -> tuple[list[str], list[str]] | None:
    """The validation rows whose label is one of ``classes``, at most ``cfg.eval_samples`` of them (a seeded
    sample); ``None`` when none is left."""
    import numpy as np

    pairs = [(t, v) for t, v in zip(texts or [], labels or [], strict=True) if v in classes]
    if not pairs:
        return None
    texts, labels = [t for t, _ in pairs], [v for _, v in pairs]
    if cfg.eval_samples and len(texts) > cfg.eval_samples:
        keep = np.random.default_rng(cfg.seed).choice(len(texts), cfg.eval_samples, replace=False)
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    return texts, labels


def start_loop(model, cfg: TrainConfig, plan: StepPlan, compile_cache_dir: Path | None,
               class_weight: list[float] | None = None) -> TrainLoop:
    """The fit's :class:`TrainLoop`, with ``cfg.compile_scope`` resolved for the run's number of samples and the
    loss weighted by ``class_weight`` (one weight per class index) when given."""
    loop = TrainLoop(
        model, device=cfg.device, total_steps=plan.total_steps, lr=cfg.learning_rate,
        weight_decay=cfg.weight_decay, warmup_steps=int(cfg.warmup_ratio * plan.total_steps),
        max_grad_norm=cfg.max_grad_norm, bf16=cfg.bf16, compile=cfg.compile, compile_mode=cfg.compile_mode,
        compile_scope=resolve_compile_scope(cfg.compile_scope, plan.total_steps * cfg.batch_size * cfg.grad_accum),
        class_weight=class_weight)
    if loop.compiled and compile_cache_dir is not None:
        use_compile_cache(compile_cache_dir)
    return loop


def load_weights(path: Path, device) -> dict[str, Any]:
    import torch

    return torch.load(path, map_location=device, weights_only=True)


class FineTuning:
    """The optimizer steps of one fit of ``predictor``: loss history, evaluations, best weights, checkpoints
    and the predictor's callbacks. :meth:`resume`, then :meth:`train`, then :meth:`restore_best`."""

    def __init__(self, predictor: TransformerPredictor, cfg: TrainConfig, data: FitData, plan: StepPlan,
                 loop: TrainLoop, work: Path, fit_started: float) -> None:
        self.predictor, self.cfg, self.data, self.plan, self.loop, self.work = predictor, cfg, data, plan, loop, work
        self.fit_started = fit_started
        self.pad_id = pad_id_of(predictor.tokenizer)
        self.lengths = [len(s) for s in data.seqs]
        settings = {k: v for k, v in asdict(cfg).items() if k not in _NOT_FINGERPRINTED}
        self.fingerprint = fingerprint(
            ["\x1f".join(data.cleaned).encode("utf-8", "surrogatepass"), data.y.tobytes()],
            [predictor.model_name, list(predictor.labels), settings, plan.total_steps])
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.resumed_from: int | None = None
        self.earlier_seconds: float | None = None  # the interrupted attempts' time, when resumed
        self.trained_samples = 0
        self.seconds = 0.0
        self._running: list = []

    def elapsed(self) -> float:
        return (self.earlier_seconds or 0.0) + time.perf_counter() - self.fit_started

    # ------------------------------------------------------------------------------------------- checkpoints
    def resume(self) -> None:
        """Continue from ``work/last`` when it holds a checkpoint of this run: weights, optimizer, step, RNG."""
        import torch

        state = resumable_state(self.work, self.fingerprint, discard_with=("best",))
        if state is None:
            return
        loop, last = self.loop, self.work / "last"
        self.predictor.model.load_state_dict(load_weights(last / "model.pt", loop.device))
        trainer = torch.load(last / "trainer.pt", map_location="cpu", weights_only=False)
        loop.load_state_dict(trainer)
        torch.set_rng_state(trainer["rng"]["cpu"])
        if "cuda" in trainer["rng"] and loop.device.type == "cuda":
            torch.cuda.set_rng_state(trainer["rng"]["cuda"])
        self.resumed_from, self.earlier_seconds = state["step"], float(state.get("seconds", 0.0))
        self.history, self.best = state["history"], state["best"]
        family, total = self.predictor.family, self.plan.total_steps
        log.info("resuming %s from step %d of %d (%s)", family, self.resumed_from, total, self.work)
        if self.resumed_from >= total:
            log.warning("%s: the checkpoint in %s holds a finished fit whose model was not saved; using it",
                        family, self.work)

    def checkpoint(self) -> None:
        """Write ``work/last`` atomically: weights, optimizer, step, RNG state, history."""
        import torch

        loop = self.loop
        state = {"fingerprint": self.fingerprint, "step": loop.step, "history": self.history, "best": self.best,
                 "seconds": self.elapsed()}
        with write_last(self.work, state) as tmp:
            torch.save(self.predictor.model.state_dict(), tmp / "model.pt")
            rng = {"cpu": torch.get_rng_state()}
            if loop.device.type == "cuda":
                rng["cuda"] = torch.cuda.get_rng_state()
            torch.save({**loop.state_dict(), "rng": rng}, tmp / "trainer.pt")
        log.debug("checkpoint at step %d in %s", loop.step, self.work / "last")

    def _save_best(self) -> None:
        import torch

        with atomic_dir(self.work / "best") as tmp:
            torch.save(self.predictor.model.state_dict(), tmp / "model.pt")

    def restore_best(self) -> None:
        """Put the best evaluated weights back when the last step was not the best."""
        best = self.best
        if best is not None and best["step"] != self.loop.step:
            log.info("restoring the best weights (step %d, val accuracy %.4f)", best["step"], best["val_accuracy"])
            self.predictor.model.load_state_dict(load_weights(self.work / "best" / "model.pt", self.loop.device))

    # ------------------------------------------------------------------------------------------------ steps
    def train(self) -> None:
        """Run the optimizer steps left (all of them, or those after the resumed checkpoint)."""
        from tqdm.auto import tqdm

        cfg, loop, plan = self.cfg, self.loop, self.plan
        compiled = self.compiled()
        log.info("fine-tuning %s on %d texts: max_length %d, %d steps (%d per epoch), device %s, bf16 %s, "
                 "compiled %s", self.predictor.model_name, len(self.data.seqs), cfg.max_length, plan.total_steps,
                 plan.steps_per_epoch, loop.device, loop.bf16, compiled or "no")
        per_step = cfg.batch_size * cfg.grad_accum
        total_samples = min(plan.total_steps * per_step, cfg.epochs * len(self.data.seqs))
        bar = tqdm(total=total_samples, initial=min(loop.step * per_step, total_samples), unit="sample",
                   unit_scale=True, disable=not cfg.progress, mininterval=2.0,
                   desc=f"{self.predictor.family} fine-tune")
        started = time.perf_counter()
        try:
            while loop.step < plan.total_steps:
                self._epoch(bar)
        finally:
            bar.close()
        self.seconds = time.perf_counter() - started

    def _epoch(self, bar) -> None:
        """The steps of the current epoch from where it stands (a resumed run starts mid-epoch)."""
        cfg, loop, data = self.cfg, self.loop, self.data
        epoch, done = divmod(loop.step, self.plan.steps_per_epoch)
        batches = length_grouped_batches(self.lengths, cfg.batch_size, seed=cfg.seed, epoch=epoch)
        for start in range(done * cfg.grad_accum, len(batches), cfg.grad_accum):
            micro = [make_batch(data.seqs, idx, self.pad_id, data.y) for idx in batches[start:start + cfg.grad_accum]]
            self._running.append(loop.train_step(micro))
            samples = sum(len(m[0]) for m in micro)
            bar.update(samples)
            self.trained_samples += samples
            final = loop.step >= self.plan.total_steps
            self._record_loss(epoch, final, bar)
            evaluated = self._evaluate_now(final)
            checkpointed = (final and self.predictor.keep_work_dir) or (
                not final and loop.step % self.plan.save_every == 0)
            if checkpointed:
                self.checkpoint()
            for callback in self.predictor.callbacks:
                callback({"step": loop.step, "epoch": epoch, "samples": self.trained_samples,
                          "evaluated": evaluated, "checkpointed": checkpointed})
            if final:
                return

    def _record_loss(self, epoch: int, final: bool, bar) -> None:
        """Every 20 steps (or every evaluation, if more often) and at the end: the mean loss since the last."""
        import torch

        step = self.loop.step
        if final or step % min(self.plan.eval_every, 20) == 0:
            loss = float(torch.stack(self._running).mean())  # the only host sync of the loop
            self.history.append({"step": step, "epoch": epoch, "loss": loss})
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            self._running = []

    def _evaluate_now(self, final: bool) -> bool:
        """Evaluate when due (every ``eval_every`` steps and at the end); keep the best weights. Whether it did."""
        if self.data.val_seqs is None or not (final or self.loop.step % self.plan.eval_every == 0):
            return False
        result = self.evaluate()
        self.history.append(result)
        log.info("step %d: val loss %.4f, val accuracy %.4f, val macro recall %.4f", self.loop.step,
                 result["val_loss"], result["val_accuracy"], result["val_macro_recall"])
        if self.best is None or self._rank(result) > self._rank(self.best):
            self.best = result
            self._save_best()
        return True

    def _rank(self, result: dict[str, Any]) -> tuple[float, ...]:
        """What the best evaluation maximises: accuracy for two classes; for three, macro-averaged recall (the
        three-class metric, which a model cannot raise by ignoring a rare class) before accuracy."""
        first = (result.get("val_macro_recall", 0.0),) if len(self.predictor.labels) > 2 else ()
        return (*first, result["val_accuracy"], -result["val_loss"])

    def evaluate(self) -> dict[str, Any]:
        """Validation loss, accuracy and macro-averaged recall at the current step."""
        import numpy as np
        import torch

        val_y = self.data.val_y
        logits = self.loop.predict_logits(self.data.val_seqs, self.pad_id, self.cfg.predict_batch_size)
        logp = torch.log_softmax(torch.from_numpy(logits), dim=1).numpy()
        pred = logits.argmax(axis=1)
        recalls = [float((pred[val_y == c] == c).mean()) for c in np.unique(val_y)]
        return {"step": self.loop.step, "val_loss": float(-logp[np.arange(len(val_y)), val_y].mean()),
                "val_accuracy": float((pred == val_y).mean()), "val_macro_recall": float(np.mean(recalls))}

    # ------------------------------------------------------------------------------------------------ facts
    def compiled(self) -> str | None:
        loop = self.loop
        return f"{loop.compile_mode}, by {loop.compile_scope}" if loop.compiled else None

    def metrics(self) -> dict[str, Any]:
        """What the fit saves in ``metrics.json`` (and returns, less the history)."""
        samples = self.trained_samples
        return {"steps": self.loop.step, "steps_per_epoch": self.plan.steps_per_epoch,
                "max_length": self.cfg.max_length, "compiled": self.compiled(),
                "resumed_from_step": self.resumed_from, "best": self.best, "history": self.history,
                "earlier_seconds": round(self.earlier_seconds, 2) if self.earlier_seconds is not None else None,
                "train_samples_per_second": round(samples / self.seconds, 1) if samples else None}
