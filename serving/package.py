"""Put a trained model into the BentoML model store, and build a Bento from it.

``python -m ml package`` calls :func:`package_model`; the training DAG calls it and then :func:`build_bento`.
The model store lives at ``settings.bentoml_home`` (``$BENTOML_HOME``, default ``<artifacts root>/bentoml``).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.champion import LEADERBOARD, read_leaderboard, select_champion
from ml.errors import ModelError
from ml.predictor import DISPLAY, load_predictor, read_meta
from serving import MODEL_NAME

if TYPE_CHECKING:
    from ml.settings import Settings

log = logging.getLogger(__name__)

#: Leaderboard columns copied into the model's metadata.
METRIC_KEYS = ("accuracy", "f1", "macro_recall", "roc_auc", "test_accuracy", "test3_macro_f1", "test3_macro_recall",
               "train_seconds", "n_train")
SERVING_DIR = Path(__file__).resolve().parent
BENTOFILE = SERVING_DIR / "bentofile.yaml"


def _resolve_model(settings: Settings, model: str | None) -> tuple[str, dict[str, Any] | None]:
    """The model directory name to package, and its leaderboard row when there is one."""
    from ml.training import trained_models

    names = trained_models(settings)
    if not names:
        raise ModelError(f"no trained models in {settings.models_dir}: run `python -m ml train FAMILY` first")
    path = settings.reports_dir / LEADERBOARD
    if model is None:
        board = [row for row in read_leaderboard(settings) if row["model"] in names]
        if not board:
            raise ModelError(f"none of the models in {path} is in {settings.models_dir} "
                             f"(trained: {', '.join(names)}); re-run `python -m ml evaluate`")
        row = select_champion(board, settings.training.champion_rule)
        return row["model"], row
    board = read_leaderboard(settings) if path.is_file() else []
    rows = {row["model"]: row for row in board}
    if model in names:
        return model, rows.get(model)
    # Not a model name: treat it as a family and take that family's best (or only) model.
    same_family = [name for name in names if read_meta(settings.models_dir / name).get("family") == model]
    if not same_family:
        raise ModelError(f"no trained model or family named {model!r} in {settings.models_dir}; "
                         f"trained: {', '.join(names)}")
    if len(same_family) == 1:
        return same_family[0], rows.get(same_family[0])
    ranked = [rows[name] for name in same_family if name in rows]
    if not ranked:
        raise ModelError(f"several {model} models ({', '.join(same_family)}) and no leaderboard to choose: "
                         "run `python -m ml evaluate` or pass the model's name")
    row = select_champion(ranked, settings.training.champion_rule)
    return row["model"], row


def _without_none(value: Any) -> Any:
    """BentoML metadata cannot hold None: drop such entries (recursively); NaN becomes None, then dropped."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None
                and not (isinstance(v, float) and math.isnan(v))}
    if isinstance(value, list | tuple):
        return [_without_none(v) for v in value if v is not None]
    return value


def model_store(settings: Settings):
    """The BentoML model store under ``settings.bentoml_home`` (independent of any store BentoML cached)."""
    from bentoml._internal.models.model import ModelStore

    path = Path(settings.bentoml_home) / "models"
    path.mkdir(parents=True, exist_ok=True)
    return ModelStore(path)


def package_model(settings: Settings, model: str | None = None, *, run_id: str | None = None) -> dict[str, Any]:
    """Store a trained model in the BentoML model store as ``tweet-sentiment:<version>`` (the new latest).

    Args:
        settings: Platform settings (artifacts root, run, Neutral band, model store).
        model: A model name under ``models/<run>/`` or a family name; default: the champion of the run's
            leaderboard by the rule ``SENTIMENT_CHAMPION_RULE`` (see :func:`ml.champion.select_champion`).
        run_id: Package from this run instead of ``settings.training.run_id``.

    Returns:
        The tag, the model name, family, run id, data version, metrics, Neutral band, labels and store path.

    Raises:
        ModelError: no trained model, no leaderboard without ``model``, an unknown name, or a copy that does not
            load back.
    """
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    if run_id is not None and run_id != settings.training.run_id:
        settings = settings.override(run_id=run_id)
    name, row = _resolve_model(settings, model)
    source = settings.models_dir / name
    meta = read_meta(source)
    labels = list(meta["labels"])
    metrics = {key: row[key] for key in METRIC_KEYS if row and key in row}
    metadata = {
        "model": name,
        "family": meta["family"],
        "run_id": meta.get("run_id", settings.training.run_id),
        "data_version": meta.get("data_version"),
        "metrics": metrics,
        "neutral_band": list(settings.neutral_band),
        "neutral_rule": "argmax over three classes" if "neutral" in labels
        else "binary: P(positive) inside neutral_band means Neutral",
        "labels": labels,
        "label_map": {str(i): label for i, label in enumerate(labels)},
        "display": {label: DISPLAY[label] for label in (*labels, "neutral")},
        "trained_at": meta.get("trained_at"),
        "reference": (row or {}).get("reference"),  # the validation profile that drift is measured against
        "packaged_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": str(source),
    }
    bento_labels = {
        "family": str(meta["family"]),
        "run_id": str(metadata["run_id"]),
        "data_version": str(metadata["data_version"] or "unknown"),
        "model": name,
    }
    import bentoml

    metadata = _without_none(metadata)
    store = model_store(settings)
    with bentoml.models.create(MODEL_NAME, labels=bento_labels, metadata=metadata, _model_store=store) as stored:
        for item in source.iterdir():
            if item.name.startswith("."):
                continue
            target = Path(stored.path) / item.name
            if item.is_dir():
                shutil.copytree(item, target, dirs_exist_ok=True)
            else:
                shutil.copy2(item, target)
    stored = store.get(stored.tag)
    try:
        load_predictor(stored.path, cpu_bf16=settings.model.cpu_bf16).predict_proba(["packaging check"])
    except Exception as exc:
        store.delete(stored.tag)
        raise ModelError(f"the packaged copy of {name} does not load ({type(exc).__name__}: {exc}); "
                         "it was removed from the store") from exc
    log.info("packaged %s (%s) as %s in %s", name, meta["family"], stored.tag, settings.bentoml_home)
    return {
        "tag": str(stored.tag),
        "model": name,
        "family": meta["family"],
        "run_id": metadata["run_id"],
        "data_version": metadata.get("data_version"),
        "metrics": metadata["metrics"],
        "neutral_band": metadata["neutral_band"],
        "labels": labels,
        "store": str(settings.bentoml_home),
        "path": str(stored.path),
    }


def build_bento(settings: Settings, *, timeout: float = 600.0) -> str:
    """Run ``bentoml build`` on ``serving/bentofile.yaml`` with the repository as build context; return the tag.

    The Bento holds the service, the ``ml`` and ``serving`` packages, the latest ``tweet-sentiment`` model and
    the Python requirements. It runs in a subprocess so the model store is the one of ``settings``.
    """
    root = SERVING_DIR.parent
    env = {**os.environ, "BENTOML_HOME": str(settings.bentoml_home), "BENTOML_DO_NOT_TRACK": "True"}
    cmd = [sys.executable, "-m", "bentoml", "build", "-f", str(BENTOFILE), "--output", "tag", str(root)]
    try:
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ModelError(f"bentoml build did not finish in {timeout:.0f}s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise ModelError("bentoml build failed: " + " | ".join(tail))
    tag = _parse_tag(done.stdout)
    log.info("built Bento %s", tag)
    return tag


def _parse_tag(output: str) -> str:
    """The Bento tag printed by ``bentoml build --output tag`` (``__tag__:name:version``)."""
    for line in reversed(output.strip().splitlines()):
        line = line.strip()
        if line.startswith("__tag__:"):
            return line.removeprefix("__tag__:")
    raise ModelError(f"bentoml build printed no tag: {output.strip()[-300:]!r}")
