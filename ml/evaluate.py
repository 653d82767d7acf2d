"""Score every model of a run on the same data and write the leaderboard.

For each saved model in ``models/<run>/``:

* on the validation split: accuracy, precision, recall, F1 (positive class for binary data, macro for three
  classes), ROC-AUC and the confusion matrix;
* on the official test file: accuracy on its positive/negative tweets (359 in Sentiment140's), and three-class
  accuracy and macro-F1 on all of them (498) with the Neutral band for binary models.

Writes ``reports/<run>/leaderboard.json`` (best first), ``leaderboard.md`` (with the write-up's reference
numbers), ``leaderboard.png`` and ``confusion_<model>.png``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.data import load_split, read_manifest
from ml.drift import profile
from ml.errors import ModelError
from ml.predictor import DISPLAY, decide, load_predictor, read_meta
from ml.training import trained_models

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ml.settings import Settings

log = logging.getLogger(__name__)

#: Accuracies (%) reported by the write-up this platform grows from; the numbers to beat.
REFERENCE = {"bert": 86.3, "gru": 83.6, "lstm": 83.3, "logreg": 79.2, "linearsvc": 78.8, "multinomialnb": 77.5}


def _binary_view(proba: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """P(positive) renormalised over negative+positive (equal to P(positive) for binary models)."""
    p_pos = proba[:, labels.index("positive")]
    p_neg = proba[:, labels.index("negative")]
    return p_pos / (p_pos + p_neg + 1e-12)


def score(predictor, df: pd.DataFrame, band: tuple[float, float] = (0.4, 0.6)) -> tuple[dict[str, Any], np.ndarray,
                                                                                         list[str]]:
    """Validation metrics of one predictor on one frame: metrics, confusion matrix and its class order.

    The metrics include ``reference``: the profile of the answers the service would give on this frame (labels
    with the Neutral band, P(positive) histogram), against which the stream's answers are checked for drift.
    """
    import numpy as np
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score

    labels = predictor.labels
    started = time.perf_counter()
    proba = predictor.predict_proba(df["text"].tolist())
    seconds = time.perf_counter() - started
    truth = df["label"].to_numpy()
    classes = [lab for lab in labels if lab in set(truth)] or list(labels)
    if set(truth) <= {"negative", "positive"}:
        # Binary data: decide by the larger of P(negative), P(positive), whatever the model's label set.
        p_pos = _binary_view(proba, labels)
        pred = np.where(p_pos >= 0.5, "positive", "negative")
        precision, recall, f1, _ = precision_recall_fscore_support(
            truth, pred, pos_label="positive", average="binary", zero_division=0)
        auc = roc_auc_score(truth == "positive", p_pos) if len(set(truth)) == 2 else float("nan")
        classes = ["negative", "positive"]
    else:
        pred = np.asarray(labels)[proba.argmax(axis=1)]
        precision, recall, f1, _ = precision_recall_fscore_support(truth, pred, average="macro", zero_division=0)
        try:
            cols = [labels.index(c) for c in classes]
            sub = proba[:, cols] / proba[:, cols].sum(axis=1, keepdims=True)
            auc = roc_auc_score(truth, sub, multi_class="ovr", labels=classes)
        except ValueError:
            auc = float("nan")
    metrics = {
        "accuracy": float(accuracy_score(truth, pred)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "roc_auc": float(auc),
        "n_val": int(len(df)),
        "predict_rows_per_s": round(len(df) / seconds, 1) if seconds > 0 else None,
        "reference": profile(decide(proba, labels, band), proba[:, labels.index("positive")].tolist()),
    }
    return metrics, confusion_matrix(truth, pred, labels=classes), classes


def score_test(predictor, df: pd.DataFrame, band: tuple[float, float]) -> dict[str, Any]:
    """Official-test metrics: binary accuracy on pos/neg tweets; 3-class accuracy and macro-F1 with the band."""
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    if df.empty:
        return {"test_accuracy": None, "test3_accuracy": None, "test3_macro_f1": None, "n_test": 0}
    proba = predictor.predict_proba(df["text"].tolist())
    truth = df["label"].to_numpy()
    polar = truth != "neutral"
    p_pos = _binary_view(proba, predictor.labels)
    binary_pred = np.where(p_pos >= 0.5, "positive", "negative")
    three_pred = np.array([s.lower() for s in decide(proba, predictor.labels, band)])
    return {
        "test_accuracy": float(accuracy_score(truth[polar], binary_pred[polar])) if polar.any() else None,
        "n_test_polar": int(polar.sum()),
        "test3_accuracy": float(accuracy_score(truth, three_pred)),
        "test3_macro_f1": float(f1_score(truth, three_pred, average="macro",
                                         labels=sorted(set(truth) | set(three_pred)), zero_division=0)),
        "n_test": int(len(df)),
    }


def evaluate(settings: Settings, *, max_samples: int | None = None, models: list[str] | None = None) -> list[dict]:
    """Score the run's models and write the leaderboard files; return the leaderboard rows, best first.

    Args:
        settings: Platform settings (run, Neutral band, artifacts root).
        max_samples: Score on a seeded stratified sample of the validation split (default: all of it).
        models: Names of models to score (default: every model saved in the run).
    """
    import pandas as pd

    names = models or trained_models(settings)
    if not names:
        raise ModelError(f"no trained models in {settings.models_dir}: run `python -m ml train FAMILY` first")
    manifest = read_manifest(settings)
    val = load_split(settings, "validation", max_samples)
    test = load_split(settings, "test")
    band = settings.neutral_band
    sentiment140 = is_sentiment140(manifest)
    out = settings.reports_dir
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        path = settings.models_dir / name
        predictor = load_predictor(path, cpu_bf16=settings.model.cpu_bf16)
        meta = read_meta(path)
        if meta.get("data_version") != manifest["data_version"]:
            log.warning("%s was trained on data version %s, scoring on %s",
                        name, meta.get("data_version"), manifest["data_version"])
        metrics, cm, classes = score(predictor, val, band)
        row = {
            "model": name,
            "family": meta["family"],
            **metrics,
            **score_test(predictor, test, band),
            "train_seconds": meta.get("train_seconds"),
            "n_train": meta.get("n_train"),
            "labels": list(predictor.labels),
            "data_version": manifest["data_version"],
            "run_id": settings.training.run_id,
            "path": str(path),
            "reference_accuracy": REFERENCE.get(meta["family"]) if sentiment140 else None,
            "teacher": _teacher_of(meta),
            "scoring_precision": predictor.scoring_precision(),  # bf16 on a CPU only when SENTIMENT_CPU_BF16 says
        }
        rows.append(row)
        plot_confusion(cm, classes, f"{name} (validation)", out / f"confusion_{name}.png")
        log.info("%s: val accuracy %.4f, test accuracy %s", name, row["accuracy"], row["test_accuracy"])
    rows.sort(key=lambda r: (r["accuracy"], r["test_accuracy"] or 0.0), reverse=True)
    _write_atomic(out / "leaderboard.json", json.dumps(rows, indent=2))
    _write_atomic(out / "leaderboard.md", to_markdown(rows, manifest, band))
    plot_leaderboard(pd.DataFrame(rows), out / "leaderboard.png")
    log.info("leaderboard written to %s", out / "leaderboard.md")
    return rows


def is_sentiment140(manifest: dict) -> bool:
    """Whether the run's data is Sentiment140: only then are the write-up's (two-class Sentiment140) accuracies
    a yardstick, not for other data such as SemEval."""
    return (manifest.get("source") or {}).get("kind", "sentiment140") == "sentiment140"


def _teacher_of(meta: dict) -> str | None:
    """``family:name`` of the model a distilled model learned from (``None`` for the others)."""
    teacher = (meta.get("fit") or {}).get("teacher") or None
    return f"{teacher.get('family')}:{teacher.get('name')}" if teacher else None


def _pct(value: float | None) -> str:
    return "" if value is None or value != value else f"{100 * value:.1f}"


def _family_cell(row: dict) -> str:
    teacher = row.get("teacher")
    return f"{row['family']} (distilled from {teacher})" if teacher else row["family"]


def to_markdown(rows: list[dict], manifest: dict, band: tuple[float, float]) -> str:
    """The leaderboard as a Markdown table next to the write-up's reference accuracies."""
    lines = [
        f"# Leaderboard: run `{rows[0]['run_id']}`" if rows else "# Leaderboard",
        "",
        f"Data version `{manifest['data_version']}`: {manifest['rows']['train']:,} training rows, "
        f"{manifest['rows']['validation']:,} validation rows, {manifest['rows']['test']:,} test rows. "
        f"Neutral band on P(positive): [{band[0]}, {band[1]}].",
        "",
        "| # | model | family | val acc % | write-up % | F1 % | ROC-AUC | test acc % (pos/neg) "
        "| test 3-class acc % | test 3-class macro-F1 % | train s | n train |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows, 1):
        ref = r.get("reference_accuracy")
        lines.append(
            f"| {i} | {r['model']} | {_family_cell(r)} | {_pct(r['accuracy'])} | {'' if ref is None else ref} "
            f"| {_pct(r['f1'])} | {r['roc_auc']:.3f} | {_pct(r['test_accuracy'])} | {_pct(r['test3_accuracy'])} "
            f"| {_pct(r['test3_macro_f1'])} | {r['train_seconds']} | {r['n_train']:,} |"
        )
    if is_sentiment140(manifest):
        lines += ["", "Write-up figures were measured on the full 1.6M-tweet file; compare like with like "
                  "(same data version, same sample size)."]
    else:
        lines += ["", "No write-up figures: they are two-class Sentiment140 accuracies, and this data is "
                  f"`{(manifest.get('source') or {}).get('name', '?')}`."]
    return "\n".join(lines) + "\n"


def plot_leaderboard(df: pd.DataFrame, path: Path) -> None:
    """Bar chart of validation accuracy per model, with the write-up's reference as a marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(df) + 2), 4), dpi=110)
    x = range(len(df))
    ax.bar(x, 100 * df["accuracy"], color="#4C72B0", label="validation accuracy")
    refs = df["reference_accuracy"]
    if refs.notna().any():
        ax.scatter([i for i, r in zip(x, refs, strict=True) if r == r and r is not None],
                   [r for r in refs if r == r and r is not None], color="#DD8452", marker="_", s=600,
                   linewidths=3, label="write-up", zorder=3)
    for i, acc in zip(x, df["accuracy"], strict=True):
        ax.text(i, 100 * acc + 0.5, f"{100 * acc:.1f}", ha="center", fontsize=9)
    ax.set_xticks(list(x), df["model"], rotation=20, ha="right")
    floor = min([100 * df["accuracy"].min(), *[r for r in refs if r == r and r is not None]])
    ax.set_ylim(max(0, floor - 10), 104)
    ax.set_ylabel("accuracy %")
    ax.set_title("Validation accuracy by model", pad=12)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    _save_fig(fig, path)


def plot_confusion(cm: np.ndarray, classes: list[str], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3.6), dpi=110)
    ax.imshow(cm, cmap="Blues")
    names = [DISPLAY.get(c, c) for c in classes]
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]:,}", ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    _save_fig(fig, path)


def _save_fig(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
