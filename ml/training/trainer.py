"""Train one model family on the prepared split and save it under ``models/<run_id>/<name>/``.

A student (GRU/LSTM with a ``teacher``) gets its teacher's cached probabilities from :mod:`ml.training.teacher`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ml.data import load_split, read_manifest
from ml.errors import ConfigError
from ml.predictor import META_FILE, Predictor, family_class
from ml.settings import Settings
from ml.training.teacher import teacher_targets

log = logging.getLogger(__name__)

#: Rows of the validation split handed to ``fit`` for early stopping / checkpoint selection.
FIT_VALIDATION_ROWS = 10_000


def build_predictor(family: str, settings: Settings, options: dict[str, Any]):
    """Instantiate a family's predictor from settings and CLI/DAG options (``None`` values are dropped)."""
    cls = family_class(family)
    options = {k: v for k, v in options.items() if v is not None}
    return cls.from_options(settings, options) if hasattr(cls, "from_options") else cls(seed=settings.data.seed)


def distils(family: str) -> bool:
    """Whether ``family`` can learn from a teacher model (``teacher`` option): GRU and LSTM."""
    return bool(getattr(family_class(family), "distils", False))


def takes_word_vectors(family: str) -> bool:
    """Whether ``family`` can start its embedding from pretrained word vectors (``embeddings``): GRU and LSTM."""
    return bool(getattr(family_class(family), "word_vectors", False))


def transfers(family: str) -> bool:
    """Whether ``family`` can start from another saved model of its family (``init_from``): GRU, LSTM and the
    transformers."""
    return bool(getattr(family_class(family), "transfers", False))


def resolve_model(value: str, settings: Settings, what: str = "teacher") -> str:
    """A saved model given as a directory, or as the name of a model of the current run (``what`` names the
    option in the error).

    Raises:
        ConfigError: Neither names a saved model.
    """
    path = Path(value).expanduser()
    by_name = settings.models_dir / value
    # A bare name means the run's model first, whatever the working directory holds.
    candidates = (by_name, path) if os.sep not in value else (path, by_name)
    for candidate in candidates:
        if (candidate / META_FILE).is_file():
            return str(candidate.resolve())
    raise ConfigError(f"{what} {value!r}: not a saved model directory, nor a model of run {settings.training.run_id!r} "
                      f"(in {settings.models_dir}); train it first, e.g. `python -m ml train minilm`")


def resolve_teacher(value: str, settings: Settings) -> str:
    """A teacher given as a saved model directory, or as the name of a model of the current run."""
    return resolve_model(value, settings, "teacher")


def resolve_init_from(family: str, value: str, settings: Settings) -> str:
    """The saved model a ``family`` fit starts from (``init_from``): a directory or a model name of the run, of
    the same family.

    Raises:
        ConfigError: a family that cannot transfer, or a value that names no saved model of that family.
    """
    from ml.predictor import read_meta

    if not transfers(family):
        raise ConfigError(f"--init-from applies to gru, lstm and the transformers, not to {family}")
    path = resolve_model(value, settings, "init_from")
    source = read_meta(path).get("family")
    if source != family:
        raise ConfigError(f"init_from {value!r} is a {source} model; a {family} starts from a saved {family} model")
    return path


def fit_predictor(predictor, texts: Sequence[str], labels: Sequence[str], settings: Settings, *,
                  val_texts: Sequence[str] | None = None, val_labels: Sequence[str] | None = None,
                  teacher_cache: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``predictor.fit``; a student (a predictor with a ``teacher``) also gets its teacher's probabilities on
    ``texts``, computed once and cached in ``teacher_cache`` (default: ``cache/teacher`` under the platform's
    home) with the transformer CPU arithmetic of ``settings.model.cpu_bf16``.

    Raises:
        ConfigError: The teacher is not a saved model, or predicts other classes than the training data has.
    """
    cache = teacher_cache or Path(settings.home) / "cache" / "teacher"
    targets = teacher_targets(predictor, texts, labels, cache_dir=cache, cpu_bf16=settings.model.cpu_bf16)
    return predictor.fit(texts, labels, val_texts=val_texts, val_labels=val_labels, **targets)


def train(
    family: str,
    settings: Settings,
    *,
    max_samples: int | None = None,
    name: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Train ``family`` and save it; return its saved metadata.

    Args:
        family: A registered family name (``python -m ml train --help`` lists them).
        settings: Platform settings; the model goes to ``settings.models_dir / (name or family)``.
        max_samples: Train on a seeded, stratified sample of this many rows.
        name: Directory name of the saved model (default: the family).
        **options: Family options such as ``epochs`` or ``model_name``; families ignore those they do not use,
            except ``teacher`` (a saved model directory or a model name of the run) and ``embeddings``
            (``"minilm"`` or a word-vector file), which only GRU and LSTM take, and ``init_from`` (a saved model
            of the same family to start from), which GRU, LSTM and the transformers take.

    Raises:
        ConfigError: A ``teacher``, ``embeddings`` or ``init_from`` for another family, or one that names nothing
            usable.
    """
    if options.get("teacher_weight") is not None and not options.get("teacher"):
        raise ConfigError("teacher_weight needs a teacher (--teacher)")
    if options.get("embeddings"):
        if not takes_word_vectors(family):
            raise ConfigError(f"--embeddings applies to gru and lstm, not to {family}")
        from ml.embeddings import resolve_source
        from ml.models.rnn import EMBEDDING_DIM

        options["embeddings"] = resolve_source(options["embeddings"], options.get("embedding_dim") or EMBEDDING_DIM)
    if options.get("teacher"):
        if not distils(family):
            raise ConfigError(f"--teacher applies to gru and lstm, not to {family}")
        options["teacher"] = resolve_teacher(options["teacher"], settings)
    if options.get("init_from"):
        options["init_from"] = resolve_init_from(family, str(options["init_from"]), settings)
    if options.get("class_weight") is None:  # the run's setting, unless the call says otherwise
        options["class_weight"] = settings.training.class_weight
    manifest = read_manifest(settings)
    train_df = load_split(settings, "train", max_samples)
    val_df = load_split(settings, "validation", FIT_VALIDATION_ROWS)
    keep_work_dir = bool(options.get("keep_work_dir"))
    # The fit keeps its checkpoints until the model is saved (see Predictor.discard_work_dir).
    predictor = build_predictor(family, settings, {**options, "keep_work_dir": True})
    log.info("training %s on %d rows (data version %s)", family, len(train_df), manifest["data_version"])
    started = time.perf_counter()
    facts = fit_predictor(
        predictor, train_df["text"].tolist(), train_df["label"].tolist(), settings,
        val_texts=val_df["text"].tolist(), val_labels=val_df["label"].tolist(),
        teacher_cache=options.get("teacher_cache"),
    )
    # A resumed fit also counts the time its interrupted attempts spent up to their checkpoint.
    seconds = time.perf_counter() - started + float((facts or {}).get("earlier_seconds") or 0.0)
    facts = {**(facts or {}), "class_priors": tune_class_priors(predictor, val_df, settings.training.class_priors)}
    target = settings.models_dir / (name or family)
    meta = {
        "name": name or family,
        "run_id": settings.training.run_id,
        "dataset": settings.data.dataset,
        "data_version": manifest["data_version"],
        "n_train": len(train_df),
        "train_seconds": round(seconds, 2),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "fit": facts,
    }
    predictor.save(target, extra_meta=meta)
    if not keep_work_dir:
        predictor.discard_work_dir()
    log.info("%s trained in %.1fs; saved to %s", family, seconds, target)
    return {**meta, "family": family, "path": str(target)}


def tune_class_priors(predictor: Predictor, val_df, mode: str) -> dict[str, float] | None:
    """Tune the fitted ``predictor``'s class priors on the validation rows ``val_df`` when ``mode`` says so
    (:mod:`ml.models.priors`), set them on the predictor and return them (``None``: its own probabilities)."""
    from ml.models import priors

    predictor.class_priors = None
    if not priors.wanted(mode, predictor.labels) or val_df.empty:
        return None
    proba = predictor.predict_proba(val_df["text"].tolist())
    predictor.class_priors = priors.tune(proba, val_df["label"].tolist(), predictor.labels)
    if predictor.class_priors:
        log.info("class priors tuned on %d validation rows for macro recall: %s", len(val_df), predictor.class_priors)
    return predictor.class_priors


def trained_models(settings: Settings) -> list[str]:
    """Names of the saved models of the current run."""
    root = settings.models_dir
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "predictor.json").is_file() and not p.name.startswith("."))
