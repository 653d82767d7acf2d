"""The transformer families' predictor: ``bert``, ``roberta`` and ``minilm`` (see the package docstring)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, ClassVar

from ml.errors import ModelError
from ml.lengths import covering_length
from ml.models.checkpoints import ensure_work_dir, work_dir_option
from ml.models.transformer.batching import PAD_MULTIPLE, encode_ids, pad_id_of, truncate_ids
from ml.models.transformer.compilation import COMPILE_SCOPES, DEFAULT_COMPILE_SCOPE
from ml.models.transformer.config import CONFIG_TYPES, TrainConfig
from ml.models.transformer.fit import FineTuning, FitData, StepPlan, start_loop, validation_subset
from ml.models.transformer.hub import load_pretrained, minilm_dir
from ml.models.transformer.loop import TrainLoop, resolve_device
from ml.models.transformer.precision import inference_bf16
from ml.models.weights import check_class_weight, class_weights
from ml.predictor import Predictor, check_cpu_bf16, labels_for
from ml.text import clean

log = logging.getLogger(__name__)


class TransformerPredictor(Predictor):
    """Fine-tuned sequence classifier (see the package docstring)."""

    family: ClassVar[str] = "bert"
    default_model: ClassVar[str] = "bert-base-uncased"
    #: The family's peak learning rate when none is given (``None``: :class:`TrainConfig`'s, the write-up's 1e-5).
    default_learning_rate: ClassVar[float | None] = None
    #: Starts from a saved model of its family when given ``init_from`` (see :func:`ml.training.resolve_init_from`).
    transfers: ClassVar[bool] = True

    def __init__(self, model_name: str | None = None, config: TrainConfig | None = None,
                 work_dir: str | os.PathLike[str] | None = None, keep_work_dir: bool = False,
                 compile_cache_dir: str | os.PathLike[str] | None = None, cpu_bf16: str = "off") -> None:
        self.model_name = str(model_name or self.default_model_name())
        self.config = config or TrainConfig(**self._family_defaults())
        self._measure_length = self.config.max_length is None  # each fit measures its own data (a refit too)
        #: Where torch.compile keeps its kernels (see :func:`use_compile_cache`); None: torch's default.
        self.compile_cache_dir = Path(compile_cache_dir) if compile_cache_dir else None
        self.work_dir = Path(work_dir) if work_dir else None
        self.keep_work_dir = keep_work_dir
        #: Scoring arithmetic on a CPU: off, on or auto (see :func:`inference_bf16`); not saved with the model.
        self.cpu_bf16 = check_cpu_bf16(cpu_bf16)
        self.model = None
        self.tokenizer = None
        self.metrics: dict[str, Any] = {}
        #: Called after every optimizer step with ``{"step", "epoch", "samples", "evaluated", "checkpointed"}``
        #: (progress hooks, tests, bench/transformer_fit.py's split of step time from evaluation time).
        self.callbacks: list[Callable[[dict[str, Any]], None]] = []
        self._loop: TrainLoop | None = None     # the fit's
        self._scorer: TrainLoop | None = None   # the one that scores (see _scoring_loop)

    @classmethod
    def default_model_name(cls) -> str:
        return cls.default_model

    @classmethod
    def _family_defaults(cls) -> dict[str, Any]:
        return {} if cls.default_learning_rate is None else {"learning_rate": cls.default_learning_rate}

    @classmethod
    def from_options(cls, settings, options: dict[str, Any]) -> TransformerPredictor:
        """Build from settings (seed, artifacts root, ``cpu_bf16``) and CLI/DAG options; unknown options are
        ignored."""
        values = {k: CONFIG_TYPES[k](v) for k, v in options.items() if k in CONFIG_TYPES and v is not None}
        values.setdefault("seed", settings.data.seed)
        values = {**cls._family_defaults(), **values}
        if values.get("compile_scope", DEFAULT_COMPILE_SCOPE) not in COMPILE_SCOPES:
            raise ModelError(f"compile_scope must be one of {', '.join(COMPILE_SCOPES)}, "
                             f"not {values['compile_scope']!r}")
        work_dir = work_dir_option(settings, cls.family, options)
        cache = options.get("compile_cache_dir") or Path(settings.home) / "cache" / "torchinductor"
        return cls(model_name=options.get("model_name"), config=TrainConfig(**values), work_dir=work_dir,
                   keep_work_dir=bool(options.get("keep_work_dir", False)), compile_cache_dir=cache,
                   cpu_bf16=settings.model.cpu_bf16)

    def params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, **asdict(self.config)}

    # ---------------------------------------------------------------------------------------- encoding
    def _encode(self, cleaned: Sequence[str], max_length: int) -> list[list[int]]:
        """Token ids of cleaned texts, truncated to ``max_length`` (special tokens included)."""
        return encode_ids(self.tokenizer, cleaned, max_length)

    def _truncate(self, seqs: list[list[int]], cleaned: Sequence[str], max_length: int) -> list[list[int]]:
        """``seqs`` (encoded with a longer limit) as :meth:`_encode` would give them at ``max_length``."""
        return truncate_ids(self.tokenizer, seqs, cleaned, max_length)

    def _fit_data(self, cfg: TrainConfig, texts, labels, val_texts, val_labels) -> FitData:
        """Clean and encode the training and validation texts; measures ``cfg.max_length`` when it is unset."""
        import numpy as np

        y = np.array([self.labels.index(v) for v in labels], dtype=np.int64)
        cleaned = [clean(t) for t in texts]
        seqs = self._encode(cleaned, cfg.max_length or cfg.max_length_cap)
        if cfg.max_length is None:
            cfg.max_length = covering_length([len(s) for s in seqs], multiple=PAD_MULTIPLE, cap=cfg.max_length_cap)
            seqs = self._truncate(seqs, cleaned, cfg.max_length)
        data = FitData(cleaned, seqs, y)
        validation = validation_subset(self.labels, val_texts, val_labels, cfg)
        if validation is not None:
            data.val_seqs = self._encode([clean(t) for t in validation[0]], cfg.max_length)
            data.val_y = np.array([self.labels.index(v) for v in validation[1]], dtype=np.int64)
        return data

    # --------------------------------------------------------------------------------------------- fit
    def fit(self, texts, labels, *, val_texts=None, val_labels=None) -> dict[str, Any]:
        import torch

        # The measured max_length is kept only when training completes; a refit measures its data again.
        cfg = replace(self.config, max_length=None) if self._measure_length else replace(self.config)
        fit_started = time.perf_counter()
        self.labels = labels_for(labels)
        torch.manual_seed(cfg.seed)
        transfer = self._source_facts(cfg.init_from)
        self.tokenizer, self.model = load_pretrained(cfg.init_from or self.model_name, self.labels,
                                                     new_head=bool(transfer and transfer["new_head"]))
        data = self._fit_data(cfg, texts, labels, val_texts, val_labels)
        plan = StepPlan.of(cfg, len(data.seqs))
        weights = class_weights(labels, self.labels, check_class_weight(cfg.class_weight))
        self._scorer = None
        self._loop = start_loop(self.model, cfg, plan, self.compile_cache_dir,
                                class_weight=[weights[c] for c in self.labels] if weights else None)
        self.work_dir = ensure_work_dir(self.work_dir, self.family)
        run = FineTuning(self, cfg, data, plan, self._loop, self.work_dir, fit_started)
        run.resume()
        run.train()
        run.restore_best()
        self.config = cfg
        self.metrics = {**run.metrics(), "class_weights": weights, "init_from": transfer}
        if not self.keep_work_dir:
            self.discard_work_dir()
        return {k: v for k, v in self.metrics.items() if k != "history"}

    def _source_facts(self, init_from: str | None) -> dict[str, Any] | None:
        """Facts about the saved model a fit starts from (``init_from``): its path, family, classes and whether
        this fit gives it a new head (its classes differ from the training data's); ``None`` without one.

        Raises:
            ModelError: not a saved model of this family.
        """
        if not init_from:
            return None
        from ml.predictor import read_meta

        meta = read_meta(init_from)
        if meta.get("family") != self.family:
            raise ModelError(f"init_from {init_from} is a {meta.get('family')} model; a {self.family} starts from a "
                             f"saved {self.family} model")
        source_labels = list(meta.get("labels") or [])
        return {"path": str(init_from), "family": meta.get("family"), "name": meta.get("name"),
                "dataset": meta.get("dataset"), "labels": source_labels, "new_head": source_labels != list(self.labels)}

    # ------------------------------------------------------------------------------------------ predict
    def _predict_proba_cleaned(self, cleaned: Sequence[str]):
        import numpy as np

        if self.model is None:
            raise RuntimeError("model is not trained")
        texts = list(cleaned)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float64)
        seqs = self._encode(texts, self.config.max_length or self.config.max_length_cap)
        logits = self._scoring_loop().predict_logits(seqs, pad_id_of(self.tokenizer), self.config.predict_batch_size)
        logits = logits.astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def _scoring_loop(self) -> TrainLoop:
        """The loop that scores: the fit's own (compiled on CUDA, so long inputs run compiled) unless the scoring
        precision differs from the training one (bf16 scoring on a CPU, see :func:`inference_bf16`)."""
        if self._scorer is None:
            device = self._loop.device if self._loop is not None else resolve_device(self.config.device)
            bf16 = inference_bf16(device, self.cpu_bf16)
            if bf16 is None:  # a GPU: the fit's own choice, saved with the model (None: bf16 where supported)
                bf16 = self.config.bf16
            if self._loop is not None and (bf16 is None or self._loop.bf16 == bf16):
                self._scorer = self._loop
            else:
                self._scorer = TrainLoop(self.model, device=device, compile=False, bf16=bf16)
                if self._scorer.bf16 and device.type == "cpu":
                    log.info("%s scores in bf16 autocast on this CPU (SENTIMENT_CPU_BF16)", self.family)
        return self._scorer

    def scoring_precision(self) -> str:
        return "bf16" if self._scoring_loop().bf16 else "fp32"

    # --------------------------------------------------------------------------------------- save/load
    def _save(self, path: Path) -> None:
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        (path / "labels.json").write_text(json.dumps({"labels": list(self.labels),
                                                      "id2label": dict(enumerate(self.labels))}, indent=2))
        (path / "metrics.json").write_text(json.dumps(self.metrics, indent=2, default=str))

    @classmethod
    def _load(cls, path: Path, meta: dict[str, Any]) -> Predictor:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        params = dict(meta.get("params", {}))
        model_name = params.pop("model_name", None)
        known = {k: v for k, v in params.items() if k in CONFIG_TYPES}
        known.pop("device", None)
        self = cls(model_name=model_name, config=TrainConfig(**known))
        self.config.compile = False
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True,
                                                                        dtype=torch.float32)
        self.model.eval()
        metrics = path / "metrics.json"
        self.metrics = json.loads(metrics.read_text()) if metrics.is_file() else {}
        return self


class BertPredictor(TransformerPredictor):
    family = "bert"
    default_model = "bert-base-uncased"


class RobertaPredictor(TransformerPredictor):
    family = "roberta"
    default_model = "roberta-base"


class MiniLMPredictor(TransformerPredictor):
    family = "minilm"
    #: A 6-layer, 384-wide model learns too slowly at bert-base's 1e-5 on CPU-sized data (README: SemEval and
    #: Sentiment140 figures measured at both rates).
    default_learning_rate = 5e-5

    @classmethod
    def default_model_name(cls) -> str:
        return str(minilm_dir())
