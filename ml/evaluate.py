"""Score every model of a run and write the leaderboard.

For each saved model in ``models/<run>/``, on the dataset it was trained on (``data/processed/<dataset>/``):

* on the validation split: accuracy, precision, recall, F1 (positive class for binary data, macro for three
  classes), macro-averaged recall, ROC-AUC and the confusion matrix;
* on the test split: accuracy on its positive/negative tweets (359 in Sentiment140's official file), and where it
  has neutral labels three-class accuracy, macro-F1 and macro-averaged recall (the Neutral band for binary
  models);
* on each external labelled set (``extra``): the same three-class figures, positive/negative accuracy and the
  share of Neutral answers of binary models (:func:`ml.scoring.score_extra`).

Writes ``reports/<run>/leaderboard.json`` (best first within each dataset), ``leaderboard.md`` (with the
write-up's reference numbers beside Sentiment140), ``leaderboard.png`` and ``confusion_<model>.png``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.data import load_split, read_manifest
from ml.errors import ConfigError, ModelError
from ml.predictor import load_predictor, read_meta
from ml.report import is_sentiment140, plot_confusion, plot_leaderboard, to_markdown, write_atomic
from ml.scoring import score, score_extra, score_test
from ml.training import trained_models

if TYPE_CHECKING:
    import pandas as pd

    from ml.settings import Settings

log = logging.getLogger(__name__)

#: Accuracies (%) reported by the write-up this platform grows from; the numbers to beat.
REFERENCE = {"bert": 86.3, "gru": 83.6, "lstm": 83.3, "logreg": 79.2, "linearsvc": 78.8, "multinomialnb": 77.5}

__all__ = ["REFERENCE", "evaluate", "is_sentiment140", "load_extra_sets", "score", "score_extra", "score_test",
           "to_markdown"]


def _set_name(ref: str, taken: set[str]) -> str:
    """A short name for an external set: the file's stem (a TweetEval file: its folder and split), unique."""
    from ml.data.tweeteval import TEXT_SUFFIX

    path = Path(ref.rstrip("/"))
    name = path.name.split(".")[0]
    if path.name.endswith(TEXT_SUFFIX):
        name = f"{path.parent.name}-{path.name.removesuffix(TEXT_SUFFIX)}"
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "extra"
    unique, i = name, 2
    while unique in taken:
        unique, i = f"{name}-{i}", i + 1
    return unique


def load_extra_sets(settings: Settings, refs: Sequence[str]) -> dict[str, tuple[pd.DataFrame, dict[str, Any]]]:
    """External labelled sets by name: ``{name: (rows, facts)}``.

    Each ref is a path or URL of anything ``data prepare`` reads (a labelled CSV/TSV, a TweetEval text file or
    folder, a Sentiment140 csv, or a Sentiment140 zip: its official test file), optionally named ``NAME=REF``.
    Rows are deduplicated on their text like training data.

    Raises:
        ConfigError: a set that cannot be read (named in the message).
    """
    from ml.data import deduplicate, read_source
    from ml.data.fetch import fetch_source
    from ml.errors import DataError

    sets: dict[str, tuple[pd.DataFrame, dict[str, Any]]] = {}
    for ref in refs:
        name, _, target = str(ref).partition("=") if re.match(r"^[A-Za-z0-9._-]+=", str(ref)) else ("", "", str(ref))
        try:
            path = fetch_source(target, settings.raw_dir, retries=settings.data.download_retries)
            rows, official_test, kind = read_source(path)
        except DataError as exc:
            raise ConfigError(f"--extra {ref}: {exc}") from None
        rows = official_test if official_test is not None else rows  # a Sentiment140 zip: its test file
        rows, _ = deduplicate(rows)
        name = name or _set_name(target, set(sets))
        counts = {label: int(n) for label, n in sorted(rows["label"].value_counts().items())}
        sets[name] = rows, {"source": target, "kind": kind, "n": len(rows), "label_counts": counts}
    return sets


class _Datasets:
    """Each dataset's manifest, splits and training texts, loaded once for all the models that use it."""

    def __init__(self, settings: Settings, max_samples: int | None) -> None:
        self.settings, self.max_samples, self._cache = settings, max_samples, {}

    def get(self, name: str) -> dict[str, Any]:
        if name not in self._cache:
            s = self.settings if name == self.settings.data.dataset else self.settings.override(dataset=name)
            self._cache[name] = {"settings": s, "manifest": read_manifest(s),
                                 "validation": load_split(s, "validation", self.max_samples),
                                 "test": load_split(s, "test")}
        return self._cache[name]

    def loaded(self, order: Sequence[str]) -> list[str]:
        """The datasets the models used, in ``order``."""
        return [name for name in order if name in self._cache]

    def training_keys(self, name: str) -> set[str]:
        """The cleaned texts of a dataset's training split (an external set's overlap with it is reported)."""
        entry = self.get(name)
        if "keys" not in entry:
            from ml.text import clean

            entry["keys"] = {clean(t) for t in load_split(entry["settings"], "train")["text"]} - {""}
        return entry["keys"]


def evaluate(settings: Settings, *, max_samples: int | None = None, models: list[str] | None = None,
             extra: Sequence[str] = ()) -> list[dict]:
    """Score the run's models and write the leaderboard files; return the leaderboard rows.

    Args:
        settings: Platform settings (run, Neutral band, artifacts root; ``data.dataset`` for models saved before
            models recorded their dataset).
        max_samples: Score on a seeded stratified sample of each validation split (default: all of it).
        models: Names of models to score (default: every model saved in the run).
        extra: External labelled sets (paths or URLs, ``NAME=REF`` to name one): see :func:`load_extra_sets`.
    """
    import pandas as pd

    from ml.text import clean

    names = models or trained_models(settings)
    if not names:
        raise ModelError(f"no trained models in {settings.models_dir}: run `python -m ml train FAMILY` first")
    extra_sets = load_extra_sets(settings, extra)
    datasets = _Datasets(settings, max_samples)
    band = settings.neutral_band
    out = settings.reports_dir
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        path = settings.models_dir / name
        meta = read_meta(path)
        dataset = meta.get("dataset") or settings.data.dataset
        data = datasets.get(dataset)
        manifest = data["manifest"]
        if meta.get("data_version") != manifest["data_version"]:
            log.warning("%s was trained on data version %s, scoring on %s",
                        name, meta.get("data_version"), manifest["data_version"])
        predictor = load_predictor(path, cpu_bf16=settings.model.cpu_bf16)
        metrics, cm, classes = score(predictor, data["validation"], band)
        params, fit = meta.get("params") or {}, meta.get("fit") or {}
        row = {
            "model": name,
            "family": meta["family"],
            "dataset": dataset,
            **metrics,
            **score_test(predictor, data["test"], band),
            "train_seconds": meta.get("train_seconds"),
            "n_train": meta.get("n_train"),
            "labels": list(predictor.labels),
            "class_weight": "balanced" if fit.get("class_weights") else None,
            "class_priors": meta.get("class_priors"),
            "init_from": _name_of(params.get("init_from")),
            "data_version": manifest["data_version"],
            "run_id": settings.training.run_id,
            "path": str(path),
            "reference_accuracy": REFERENCE.get(meta["family"]) if is_sentiment140(manifest) else None,
            "teacher": _teacher_of(meta),
            "scoring_precision": predictor.scoring_precision(),  # bf16 on a CPU only when SENTIMENT_CPU_BF16 says
            "extra": {set_name: score_extra(predictor, frame, band) for set_name, (frame, _) in extra_sets.items()},
        }
        rows.append(row)
        plot_confusion(cm, classes, f"{name} (validation)", out / f"confusion_{name}.png")
        log.info("%s: val accuracy %.4f, macro recall %.4f, test accuracy %s", name, row["accuracy"],
                 row["macro_recall"], row["test_accuracy"])
    order = list(dict.fromkeys([settings.data.dataset, *sorted({r["dataset"] for r in rows})]))
    rows.sort(key=lambda r: (order.index(r["dataset"]), -r["accuracy"], -(r["test_accuracy"] or 0.0)))
    facts = {}
    for set_name, (frame, set_facts) in extra_sets.items():
        keys = [clean(t) for t in frame["text"]]
        overlap = {d: sum(k in datasets.training_keys(d) for k in keys) for d in datasets.loaded(order)}
        facts[set_name] = {**set_facts, "overlap": overlap}
    manifests = {d: datasets.get(d)["manifest"] for d in datasets.loaded(order)}
    write_atomic(out / "leaderboard.json", json.dumps(rows, indent=2))
    write_atomic(out / "leaderboard.md", to_markdown(rows, manifests, band, facts))
    if facts:
        write_atomic(out / "extra_sets.json", json.dumps(facts, indent=2))
    plot_leaderboard(pd.DataFrame(rows), out / "leaderboard.png")
    log.info("leaderboard written to %s", out / "leaderboard.md")
    return rows


def _name_of(path: str | os.PathLike[str] | None) -> str | None:
    """``family:name`` of a saved model folder (an ``init_from``), or its folder name when unreadable."""
    if not path:
        return None
    try:
        meta = read_meta(path)
    except ModelError:
        return Path(path).name
    return f"{meta.get('family')}:{meta.get('run_id', '?')}/{meta.get('name', Path(path).name)}"


def _teacher_of(meta: dict) -> str | None:
    """``family:name`` of the model a distilled model learned from (``None`` for the others)."""
    teacher = (meta.get("fit") or {}).get("teacher") or None
    return f"{teacher.get('family')}:{teacher.get('name')}" if teacher else None
