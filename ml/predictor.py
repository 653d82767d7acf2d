"""The one predictor interface every model family implements.

A predictor maps raw tweet texts to class probabilities (it cleans them itself with :mod:`ml.text`, so callers
never have to), and saves to / loads from a directory. Callers that already hold cleaned text (the service, the
Spark job) call :meth:`Predictor.predict_proba_cleaned` and skip a second cleaning. Evaluation, packaging, the
service and the Spark job only use this interface and never branch on the family.

A saved predictor directory always holds ``predictor.json``::

    {"family": "logreg", "labels": ["negative", "positive"], "format_version": 1, ...}

plus whatever files the family needs. :func:`load_predictor` reads the family from that file and dispatches.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ml.errors import ConfigError, ModelError
from ml.models.priors import apply as apply_priors

if TYPE_CHECKING:
    import numpy as np

BINARY_LABELS: tuple[str, ...] = ("negative", "positive")
TERNARY_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
DISPLAY = {"negative": "Negative", "neutral": "Neutral", "positive": "Positive"}
META_FILE = "predictor.json"
FORMAT_VERSION = 1
#: How a transformer may score on a CPU (``cpu_bf16``): fp32, bf16 autocast, or bf16 where it measures faster.
CPU_BF16_CHOICES: tuple[str, ...] = ("off", "on", "auto")

#: family name -> "module:Class". Classes are imported only when used.
FAMILIES: dict[str, str] = {
    "logreg": "ml.models.classical:LogRegPredictor",
    "linearsvc": "ml.models.classical:LinearSVCPredictor",
    "multinomialnb": "ml.models.classical:MultinomialNBPredictor",
    "gru": "ml.models.rnn.predictor:GRUPredictor",
    "lstm": "ml.models.rnn.predictor:LSTMPredictor",
    "bert": "ml.models.transformer.predictor:BertPredictor",
    "roberta": "ml.models.transformer.predictor:RobertaPredictor",
    "minilm": "ml.models.transformer.predictor:MiniLMPredictor",
}


def labels_for(label_values: Sequence[str]) -> tuple[str, ...]:
    """The label tuple a model should use for training data carrying ``label_values``."""
    present = set(label_values)
    unknown = present - set(TERNARY_LABELS)
    if unknown:
        raise ModelError(f"unknown labels {sorted(unknown)}; expected a subset of {list(TERNARY_LABELS)}")
    return TERNARY_LABELS if "neutral" in present else BINARY_LABELS


class Predictor(ABC):
    """Texts in, class probabilities out; save/load by path.

    Subclasses set ``family`` and implement :meth:`fit`, :meth:`_predict_proba_cleaned`, :meth:`_save` and
    :meth:`_load`. ``labels`` is the order of the probability columns.
    """

    family: ClassVar[str]
    labels: tuple[str, ...] = BINARY_LABELS
    #: Where a fit that checkpoints keeps them (GRU, LSTM, transformers); ``None`` for the others.
    work_dir: Path | None = None
    #: A transformer's scoring arithmetic on a CPU (one of :data:`CPU_BF16_CHOICES`; see
    #: docs/decisions/cpu-bf16-scoring.md), given by ``from_options`` or :func:`load_predictor`; others ignore it.
    cpu_bf16: str = "off"
    #: Log-offsets per class tuned on validation for macro recall (:mod:`ml.models.priors`), applied to every
    #: answer; ``None``: the model's own probabilities. Saved as ``class_priors`` in ``predictor.json``.
    class_priors: dict[str, float] | None = None

    @abstractmethod
    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        val_texts: Sequence[str] | None = None,
        val_labels: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Train on raw texts and label names; return training facts (history, steps, ...)."""

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities of shape ``(len(texts), len(self.labels))`` for raw texts (with :attr:`class_priors`)."""
        return apply_priors(self._predict_proba(texts), self.labels, self.class_priors)

    def predict_proba_cleaned(self, cleaned: Sequence[str]) -> np.ndarray:
        """Like :meth:`predict_proba`, for texts already cleaned with :func:`ml.text.clean` (not cleaned again)."""
        return apply_priors(self._predict_proba_cleaned(cleaned), self.labels, self.class_priors)

    def _predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """The model's own probabilities for raw texts; a family that cleans in its own way overrides it."""
        from ml.text import clean

        return self._predict_proba_cleaned([clean(text) for text in texts])

    @abstractmethod
    def _predict_proba_cleaned(self, cleaned: Sequence[str]) -> np.ndarray:
        """The model's own probabilities for cleaned texts, before :attr:`class_priors`."""

    def scoring_precision(self) -> str | None:
        """The arithmetic :meth:`predict_proba` uses on this machine when a setting can change it (``"fp32"`` or
        ``"bf16"`` for a transformer, see :attr:`cpu_bf16`); ``None``: the model's own, fixed."""
        return None

    @abstractmethod
    def _save(self, path: Path) -> None:
        """Write the family's files into the (empty, existing) directory ``path``."""

    @classmethod
    @abstractmethod
    def _load(cls, path: Path, meta: dict[str, Any]) -> Predictor:
        """Rebuild a predictor from a directory written by :meth:`_save`."""

    def params(self) -> dict[str, Any]:
        """Hyper-parameters worth recording next to the model."""
        return {}

    def discard_work_dir(self) -> None:
        """Remove the last fit's checkpoints. :func:`ml.training.train` keeps them through the fit and calls this
        once the model is saved, so a task killed while saving resumes the finished fit instead of retraining."""
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def save(self, path: str | os.PathLike[str], extra_meta: dict[str, Any] | None = None) -> Path:
        """Save atomically: the directory appears complete or not at all, replacing any previous one."""
        target = Path(path)
        meta = {
            "family": self.family,
            "labels": list(self.labels),
            "format_version": FORMAT_VERSION,
            "params": self.params(),
            "class_priors": self.class_priors,
            **(extra_meta or {}),
        }
        with atomic_dir(target) as tmp:
            self._save(tmp)
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
        return target

    def p_positive(self, texts: Sequence[str]) -> np.ndarray:
        """P(positive) for each text."""
        return self.predict_proba(texts)[:, self.labels.index("positive")]


def family_class(family: str) -> type[Predictor]:
    """The predictor class registered for ``family``."""
    try:
        module_name, class_name = FAMILIES[family].split(":")
    except KeyError:
        raise ModelError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}") from None
    return getattr(importlib.import_module(module_name), class_name)


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``predictor.json`` of a saved model directory."""
    meta_path = Path(path) / META_FILE
    try:
        return json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path} is not a saved model: {META_FILE} is missing") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{meta_path} is corrupt: {exc}") from None


def load_predictor(path: str | os.PathLike[str], *, cpu_bf16: str = "off") -> Predictor:
    """Load any saved predictor by path, whatever its family.

    Args:
        path: A directory written by :meth:`Predictor.save`.
        cpu_bf16: How a transformer scores on a CPU: ``"off"`` (fp32), ``"on"`` (bf16 autocast) or ``"auto"``;
            callers pass their settings' ``cpu_bf16``. Other families ignore it.

    Raises:
        ConfigError: ``cpu_bf16`` is none of those.
        ModelError: ``path`` is not a saved model of a supported format.
    """
    check_cpu_bf16(cpu_bf16)
    meta = read_meta(path)
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{path}: unsupported format_version {meta.get('format_version')!r}")
    predictor = family_class(meta["family"])._load(Path(path), meta)
    predictor.labels = tuple(meta["labels"])
    predictor.class_priors = _class_priors(path, meta.get("class_priors"), predictor.labels)
    predictor.cpu_bf16 = cpu_bf16
    return predictor


def _class_priors(path, value: Any, labels: Sequence[str]) -> dict[str, float] | None:
    """A saved model's ``class_priors``: ``None``, or a number for each of its classes."""
    if not value:
        return None
    if (not isinstance(value, dict) or set(value) != set(labels)
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values())):
        raise ModelError(f"{path}: class_priors must map each of {list(labels)} to a number, not {value!r}")
    return {label: float(value[label]) for label in labels}


def check_cpu_bf16(setting: str) -> str:
    """``setting`` when it is one of :data:`CPU_BF16_CHOICES`.

    Raises:
        ConfigError: Any other value.
    """
    if setting not in CPU_BF16_CHOICES:
        raise ConfigError(f"cpu_bf16 must be off, on or auto, not {setting!r}")
    return setting


def decide(
    proba: np.ndarray, labels: Sequence[str], band: tuple[float, float] = (0.4, 0.6)
) -> list[str]:
    """Turn probabilities into display labels (``Positive``, ``Negative``, ``Neutral``).

    A binary model's P(positive) inside the closed ``band`` means Neutral; a three-class model takes the argmax.
    """
    import numpy as np

    labels = tuple(labels)
    if "neutral" in labels:
        return [DISPLAY[labels[i]] for i in np.asarray(proba).argmax(axis=1)]
    low, high = band
    p_pos = np.asarray(proba)[:, labels.index("positive")]
    return ["Neutral" if low <= p <= high else ("Positive" if p > high else "Negative") for p in p_pos]


@contextmanager
def atomic_dir(target: Path):
    """Yield a temporary sibling directory that replaces ``target`` when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

