"""The fine-tuning hyper-parameters (:class:`TrainConfig`), as saved in ``predictor.json``."""

from __future__ import annotations

from dataclasses import dataclass

from ml.models.transformer.compilation import DEFAULT_COMPILE_MODE, DEFAULT_COMPILE_SCOPE

MAX_LENGTH_CAP = 128


@dataclass
class TrainConfig:
    """Fine-tuning hyper-parameters (defaults follow the write-up: AdamW 1e-5, 2 epochs, warm-up and decay)."""

    learning_rate: float = 1e-5
    epochs: int = 2
    batch_size: int = 32
    grad_accum: int = 1
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    max_length: int | None = None
    max_length_cap: int = MAX_LENGTH_CAP
    max_steps: int | None = None
    eval_every: int | None = None
    eval_samples: int | None = None
    save_every: int | None = None
    predict_batch_size: int = 256
    seed: int = 42
    device: str | None = None
    compile: bool | None = None
    compile_mode: str = DEFAULT_COMPILE_MODE
    compile_scope: str = DEFAULT_COMPILE_SCOPE
    bf16: bool | None = None
    progress: bool = True
    #: ``auto``, ``balanced`` or ``none``: class weights of the cross-entropy (:mod:`ml.models.weights`).
    class_weight: str = "auto"
    #: A saved model of the family to start from instead of ``model_name``'s pretrained weights: its encoder, and
    #: a new classification head when its classes differ (transfer, e.g. from a Sentiment140 fine-tune to three
    #: classes). ``None``: the pretrained checkpoint.
    init_from: str | None = None


#: Each option's type, to convert CLI/DAG values and read saved parameters back.
CONFIG_TYPES = {"learning_rate": float, "epochs": int, "batch_size": int, "grad_accum": int, "weight_decay": float,
                "warmup_ratio": float, "max_grad_norm": float, "max_length": int, "max_length_cap": int,
                "max_steps": int, "eval_every": int, "eval_samples": int, "save_every": int,
                "predict_batch_size": int, "seed": int, "device": str, "compile": bool, "compile_mode": str,
                "compile_scope": str, "bf16": bool, "progress": bool, "class_weight": str, "init_from": str}
