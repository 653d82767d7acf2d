"""What ``torch.compile`` compiles in a transformer fit (mode, scope) and where it keeps its kernels.

The figures behind these defaults: docs/decisions/transformer-compile-scope.md.
"""

from __future__ import annotations

import os
from pathlib import Path

#: ``torch.compile`` mode on CUDA: CUDA graphs, one per batch shape (docs/decisions/transformer-compile-scope.md).
DEFAULT_COMPILE_MODE = "reduce-overhead"
#: Inference runs compiled only for at least this many texts; evaluations and ordinary scoring stay eager
#: (docs/decisions/transformer-compile-scope.md).
COMPILED_PREDICT_MIN = 200_000
#: ``"layers"``: the encoder's repeated block, compiled once and reused by every layer; ``"model"``: the whole
#: loss function as one graph; ``"auto"``: by layers below :data:`AUTO_LAYERS_BELOW` training samples, the
#: whole model from there on (docs/decisions/transformer-compile-scope.md).
COMPILE_SCOPES = ("auto", "layers", "model")
DEFAULT_COMPILE_SCOPE = "auto"
AUTO_LAYERS_BELOW = 500_000


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


def use_compile_cache(directory: str | os.PathLike[str]) -> Path:
    """Keep torch.compile's kernels (Inductor's and Triton's caches) in ``directory``; returns the one in use.

    Torch keeps its cache in /tmp, which containers and reboots wipe; under the platform's home a scheduled
    retrain finds it again (what a warm cache saves: docs/decisions/transformer-compile-scope.md). An explicit
    ``TORCHINDUCTOR_CACHE_DIR`` wins, and so does a cache torch already opened in this process (it reads the
    variable once).
    """
    path = Path(os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(directory).resolve())))
    path.mkdir(parents=True, exist_ok=True)
    return path
