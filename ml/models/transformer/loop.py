"""The optimizer step, the forward pass and inference of one transformer on one device (:class:`TrainLoop`).

``fit`` and ``bench/transformer.py`` both drive it, so the benchmark measures the project's step. Standard
library only at module level (the benchmarks run where only torch, transformers and numpy are installed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from ml.models.transformer.batching import length_grouped_batches, make_batch
from ml.models.transformer.compilation import COMPILED_PREDICT_MIN, DEFAULT_COMPILE_MODE, has_compiled_blocks, repeated_blocks


def resolve_device(device: str | None = None):
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class TrainLoop:
    """The optimizer step, the forward pass and inference for one model on one device.

    ``fit`` and ``bench/transformer.py`` both drive this class, so the benchmark measures the project's step.

    Args:
        model: A ``*ForSequenceClassification`` model (moved to ``device``).
        device: ``"cuda"``, ``"cpu"``, or ``None`` for CUDA when available.
        total_steps: Optimizer steps of the whole run (for the linear schedule).
        lr: Peak learning rate.
        weight_decay: AdamW weight decay (not applied to biases and LayerNorm weights).
        warmup_steps: Steps of linear warm-up from 0 to ``lr``; then linear decay to 0 at ``total_steps``.
        max_grad_norm: Clip the gradient norm to this (``None``/0: no clipping).
        bf16: bf16 autocast; default on for CUDA with bf16 support, off on CPU.
        compile: ``torch.compile(dynamic=True)`` of the loss and logits functions; default on CUDA only.
        compile_mode: ``torch.compile`` mode on CUDA (see :data:`DEFAULT_COMPILE_MODE`); ``"default"`` or
            ``None`` for plain compilation without CUDA graphs.
        compile_scope: ``"model"`` (the whole loss function) or ``"layers"`` (the repeated encoder block; a model
            without one is compiled whole); see :data:`COMPILE_SCOPES`. ``fit`` resolves ``"auto"``.
        class_weight: The cross-entropy's weight of each class index (``None``: unweighted).
    """

    def __init__(self, model, *, device=None, total_steps: int = 1, lr: float = 1e-5, weight_decay: float = 0.01,
                 warmup_steps: int = 0, max_grad_norm: float | None = 1.0, bf16: bool | None = None,
                 compile: bool | None = None, compile_mode: str | None = DEFAULT_COMPILE_MODE,
                 compile_scope: str = "model", class_weight: Sequence[float] | None = None) -> None:
        import torch

        if compile_scope not in ("layers", "model"):
            raise ValueError(f"compile_scope must be 'layers' or 'model', not {compile_scope!r}")

        self.device = resolve_device(device) if not isinstance(device, torch.device) else device
        cuda = self.device.type == "cuda"
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.bf16 = (cuda and torch.cuda.is_bf16_supported()) if bf16 is None else bool(bf16)
        self.compiled = cuda if compile is None else bool(compile)
        self.model = model.to(self.device)
        #: The cross-entropy's weight of each class index (``None``: unweighted), on the device.
        self.loss_weight = None if class_weight is None else torch.tensor(list(class_weight), dtype=torch.float32,
                                                                          device=self.device)
        self.total_steps = max(int(total_steps), 1)
        self.lr = lr
        self.warmup_steps = int(warmup_steps)
        self.max_grad_norm = max_grad_norm
        decay, no_decay = [], []
        for name, param in self.model.named_parameters():
            if param.requires_grad:
                (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.lr_at(0), fused=cuda,
        )
        self.step = 0
        mode = compile_mode if self.compiled and cuda and compile_mode != "default" else None
        self.compile_mode = (mode or "default") if self.compiled else None
        self._mode = mode
        self._cudagraphs = mode in ("reduce-overhead", "max-autotune")
        self._loss = self._loss_impl
        self._compiled_logits = None  # compiled on first use (see predict_logits)
        self.compile_scope = None
        if self.compiled:
            blocks = repeated_blocks(self.model) if compile_scope == "layers" else None
            if blocks is not None:
                for block in blocks:  # one compilation serves every block: same code, parameters are inputs
                    block.compile(dynamic=True, mode=mode)
                self._compiled_logits = self._logits_impl
                self.compile_scope = "layers"
            else:
                self._loss = torch.compile(self._loss_impl, dynamic=True, mode=mode)
                self.compile_scope = "model"

    def lr_at(self, step: int) -> float:
        """Learning rate of optimizer step ``step`` (0-based): linear warm-up, then linear decay to 0."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / (self.warmup_steps + 1)
        remaining = self.total_steps - step
        return self.lr * max(remaining, 0) / max(self.total_steps - self.warmup_steps, 1)

    def _autocast(self):
        import torch

        if self.bf16:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _logits_impl(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits.float()

    def _loss_impl(self, input_ids, attention_mask, labels):
        import torch.nn.functional as F

        # Weighted, the sum divided by the rows (train_step) is still a mean: balanced weights sum to the rows.
        return F.cross_entropy(self._logits_impl(input_ids, attention_mask), labels, weight=self.loss_weight,
                               reduction="sum")

    def to_device(self, array):
        import torch

        tensor = torch.from_numpy(array)
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor

    def train_step(self, micro_batches: Sequence[tuple]):
        """One optimizer step over ``micro_batches`` (gradient accumulation); the mean loss as a device tensor.

        The loss is not copied to the host, so the step does not wait for the GPU.
        """
        import torch

        self.model.train()
        if self._cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        n = sum(len(b[0]) for b in micro_batches)
        total = torch.zeros((), device=self.device)
        for ids, mask, labels in micro_batches:
            with self._autocast():
                loss = self._loss(self.to_device(ids), self.to_device(mask), self.to_device(labels)) / n
            loss.backward()
            total += loss.detach()
        if self.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm, foreach=True)
        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return total

    def predict_logits(self, seqs: Sequence[Sequence[int]], pad_id: int, batch_size: int = 256,
                       compiled: bool | None = None):
        """Logits (float32 numpy, input order) for token-id sequences, batched by length.

        ``compiled``: run the compiled forward pass (only where the loop compiles at all); ``None`` compiles
        for :data:`COMPILED_PREDICT_MIN` texts or more and runs eagerly below that.
        """
        import numpy as np
        import torch

        if compiled is None:
            compiled = len(seqs) >= COMPILED_PREDICT_MIN
        forward = self._logits_impl
        graphs = False
        compiled = compiled and self.compiled
        if compiled:
            if self._compiled_logits is None:
                self._compiled_logits = torch.compile(self._logits_impl, dynamic=True, mode=self._mode)
            forward, graphs = self._compiled_logits, self._cudagraphs
        # Compiled layers (this loop's or another's on the same model) run their original code in an eager pass.
        stance = torch.compiler.set_stance("force_eager") if not compiled and has_compiled_blocks(self.model) \
            else contextlib.nullcontext()
        self.model.eval()
        out = None
        with torch.inference_mode(), stance:
            for idx in length_grouped_batches([len(s) for s in seqs], batch_size, shuffle=False):
                ids, mask, _ = make_batch(seqs, idx, pad_id)
                if graphs:
                    torch.compiler.cudagraph_mark_step_begin()
                with self._autocast():
                    logits = forward(self.to_device(ids), self.to_device(mask))
                logits = logits.float().cpu().numpy()
                if out is None:
                    out = np.zeros((len(seqs), logits.shape[1]), dtype=np.float32)
                out[idx] = logits
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
