"""A teacher's probabilities for distillation: a saved model of any family scores the student's training texts,
once; the result is cached so a resumed fit, or the LSTM after the GRU, reuses it.

Why and how the GRU/LSTM learn from them: docs/decisions/rnn-design-and-distillation.md.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml.errors import ConfigError, ModelError
from ml.predictor import META_FILE, labels_for, load_predictor, read_meta
from ml.text import clean

log = logging.getLogger(__name__)


def teacher_probabilities(teacher_dir: str | os.PathLike[str], cleaned: Sequence[str], labels: Sequence[str],
                          cache_dir: str | os.PathLike[str] | None = None, *,
                          cpu_bf16: str = "off") -> tuple[Any, dict[str, Any]]:
    """A saved model's probabilities for ``cleaned`` texts, columns in the order of ``labels``; and facts.

    With ``cache_dir``, the probabilities are kept there under a hash of the teacher's ``predictor.json``, its
    files, ``labels``, ``cpu_bf16`` (a transformer teacher's arithmetic on a CPU) and the texts, written
    atomically; a later fit on the same texts (a resumed one, or the LSTM after the GRU) reuses them. A lock
    per entry makes concurrent fits (parallel DAG tasks) compute each entry once.

    Raises:
        ConfigError: ``teacher_dir`` is not a saved model, or predicts other classes than ``labels``.
    """
    import numpy as np

    path = Path(teacher_dir)
    try:
        meta = read_meta(path)
    except ModelError as exc:  # missing or corrupt predictor.json: a wrong teacher setting
        raise ConfigError(f"teacher: {exc}") from None
    if set(meta.get("labels", ())) != set(labels):
        raise ConfigError(f"teacher {path} predicts {meta.get('labels')}, but the training data has the classes "
                          f"{list(labels)}; distil from a model trained on the same classes")
    facts = {"path": str(path), "family": meta.get("family"), "name": meta.get("name", path.name)}

    def compute():
        started = time.perf_counter()
        teacher = load_predictor(path, cpu_bf16=cpu_bf16)
        log.info("teacher %s (%s) scores %d training texts", path, teacher.family, len(cleaned))
        proba = np.asarray(teacher.predict_proba_cleaned(list(cleaned)), dtype=np.float32)
        proba = proba[:, [list(teacher.labels).index(label) for label in labels]]
        return proba, {**facts, "seconds": round(time.perf_counter() - started, 1), "reused": False,
                       "precision": teacher.scoring_precision()}

    if cache_dir is None:
        return compute()
    entry = Path(cache_dir) / f"{_cache_key(path, cleaned, labels, cpu_bf16)}.npy"
    entry.parent.mkdir(parents=True, exist_ok=True)
    with open(entry.with_name(f".{entry.stem}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent fit of the same entry waits, then reuses it
        if entry.is_file():
            try:
                proba = np.load(entry)
            except (OSError, ValueError, EOFError) as exc:  # a damaged entry is computed again
                log.warning("ignoring the damaged teacher cache entry %s (%s)", entry, exc)
                proba = None
            if proba is not None and proba.shape == (len(cleaned), len(labels)):
                log.info("teacher probabilities for %d texts reused from %s", len(cleaned), entry)
                return proba, {**facts, "seconds": 0.0, "reused": True}
        proba, facts = compute()
        tmp = entry.with_name(f".{entry.stem}.tmp.npy")
        with open(tmp, "wb") as fh:
            np.save(fh, proba)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, entry)
        return proba, facts


def _cache_key(path: Path, cleaned: Sequence[str], labels: Sequence[str], cpu_bf16: str) -> str:
    digest = hashlib.sha256((path / META_FILE).read_bytes())
    for item in sorted(path.rglob("*")):  # a teacher retrained in place has other files (sizes, times)
        if item.is_file():
            stat = item.stat()
            digest.update(f"{item.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    digest.update(json.dumps(list(labels)).encode())
    digest.update(cpu_bf16.encode())  # a transformer teacher's arithmetic on a CPU
    for text in cleaned:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def teacher_targets(predictor, texts: Sequence[str], labels: Sequence[str], *,
                    cache_dir: str | os.PathLike[str] | None, cpu_bf16: str = "off") -> dict[str, Any]:
    """The keyword arguments that hand ``predictor.fit`` its teacher's probabilities on ``texts`` (raw, cleaned
    here as the student cleans them): ``{"teacher_proba", "teacher_facts"}``, or ``{}`` for a predictor
    without a ``teacher``."""
    teacher = getattr(predictor, "teacher", None)
    if not teacher:
        return {}
    proba, facts = teacher_probabilities(teacher, [clean(t) for t in texts], labels_for(labels), cache_dir,
                                         cpu_bf16=cpu_bf16)
    return {"teacher_proba": proba, "teacher_facts": facts}
