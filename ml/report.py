"""The leaderboard's human views: ``leaderboard.md`` (:func:`to_markdown`), ``leaderboard.png`` and the confusion
matrices. Three-class columns appear only where the data has neutral labels, the Neutral band only beside binary
models, and each external set gets a column group of its own."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.predictor import DISPLAY

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def is_sentiment140(manifest: Mapping[str, Any]) -> bool:
    """Whether a dataset is Sentiment140: only then are the write-up's (two-class Sentiment140) accuracies a
    yardstick, not for other data such as SemEval."""
    return (manifest.get("source") or {}).get("kind", "sentiment140") == "sentiment140"


def _pct(value: float | None) -> str:
    return "" if value is None or value != value else f"{100 * value:.1f}"


def _family_cell(row: Mapping[str, Any]) -> str:
    notes = []
    if row.get("teacher"):
        notes.append(f"distilled from {row['teacher']}")
    if row.get("init_from"):
        notes.append(f"from {row['init_from']}")
    return f"{row['family']} ({'; '.join(notes)})" if notes else row["family"]


def _data_cell(row: Mapping[str, Any]) -> str:
    classes = len(row.get("labels") or ())
    weight, priors = row.get("class_weight"), row.get("class_priors")
    return (f"{row.get('dataset') or 'default'}, {classes} classes" + (f", {weight} weights" if weight else "")
            + (", tuned priors" if priors else ""))


def _manifests(rows: list[dict], manifests: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """``{dataset: manifest}``; a single manifest (the one-dataset form) stands for every row's dataset."""
    if "data_version" in manifests:
        names = {row.get("dataset") or "default" for row in rows} or {"default"}
        return {name: manifests for name in sorted(names)}
    return dict(manifests)


def to_markdown(rows: list[dict], manifests: Mapping[str, Any], band: tuple[float, float],
                extra: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The leaderboard as Markdown: one table of the models on their own data, then one column group per
    external set. ``manifests`` maps each dataset to its manifest (or is one manifest); ``extra`` holds each
    external set's facts (source, rows, labels, overlap with the training splits)."""
    by_dataset = _manifests(rows, manifests)
    s140 = any(is_sentiment140(m) for m in by_dataset.values())
    lines = [f"# Leaderboard: run `{rows[0]['run_id']}`" if rows else "# Leaderboard", ""]
    for name, m in by_dataset.items():
        lines.append(f"Dataset `{name}` (`{(m.get('source') or {}).get('name', '?')}`), data version "
                     f"`{m['data_version']}`: {m['rows']['train']:,} training rows, {m['rows']['validation']:,} "
                     f"validation rows, {m['rows']['test']:,} test rows.")
    if any(len(r.get("labels") or ("negative", "positive")) == 2 for r in rows):
        lines.append(f"Neutral band of the binary models on P(positive): [{band[0]}, {band[1]}].")
    three = any(r.get("test3_accuracy") is not None for r in rows)
    head = ["#", "model", "family", "data", "val acc %", "val F1 %", "val macro-recall %", "ROC-AUC",
            "test acc % (pos/neg)"]
    if three:
        head += ["test 3-class acc %", "test 3-class macro-F1 %", "test 3-class macro-recall %"]
    head += (["write-up %"] if s140 else []) + ["train s", "n train"]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(rows, 1):
        ref = r.get("reference_accuracy")
        cells = [str(i), r["model"], _family_cell(r), _data_cell(r), _pct(r["accuracy"]), _pct(r["f1"]),
                 _pct(r.get("macro_recall")), f"{r['roc_auc']:.3f}", _pct(r["test_accuracy"])]
        if three:
            cells += [_pct(r.get("test3_accuracy")), _pct(r.get("test3_macro_f1")), _pct(r.get("test3_macro_recall"))]
        cells += ([] if not s140 else ["" if ref is None else str(ref)]) + [str(r["train_seconds"]),
                                                                            f"{r['n_train']:,}"]
        lines.append("| " + " | ".join(cells) + " |")
    if s140:
        lines += ["", "Write-up figures were measured on the full 1.6M-tweet file; compare like with like "
                  "(same data version, same sample size)."]
    else:
        names = ", ".join(f"`{(m.get('source') or {}).get('name', '?')}`" for m in by_dataset.values())
        lines += ["", f"No write-up figures: they are two-class Sentiment140 accuracies, and this data is {names}."]
    if extra:
        lines += ["", *_extra_tables(rows, extra)]
    return "\n".join(lines) + "\n"


def _extra_tables(rows: list[dict], extra: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One column group per external set: macro-recall, accuracy and macro-F1 (three classes where the set has
    neutral labels), positive/negative accuracy, and the Neutral share of binary models."""
    binary_models = any("neutral" not in (r.get("labels") or ()) for r in rows)
    lines = ["## External test sets", ""]
    head, keys = ["model"], []
    for name, facts in extra.items():
        counts = facts.get("label_counts") or {}
        overlap = ", ".join(f"{n} in `{d}` training" for d, n in (facts.get("overlap") or {}).items() if n)
        lines.append(f"- `{name}`: {facts.get('source')}, {facts.get('n', 0):,} rows "
                     f"({', '.join(f'{k} {v:,}' for k, v in counts.items())})"
                     + (f"; cleaned texts also in training: {overlap}" if overlap else ""))
        if "neutral" in counts:
            group = [("macro_recall", "3-class macro-recall %"), ("accuracy", "3-class acc %"),
                     ("macro_f1", "3-class macro-F1 %")]
        else:
            group = [("accuracy", "acc %"), ("macro_f1", "macro-F1 %")]
        group.append(("binary_accuracy", "pos/neg acc %"))
        if binary_models and "neutral" in counts:
            group.append(("neutral_share", "Neutral answers % (binary)"))
        head += [f"{name}: {title}" for _, title in group]
        keys += [(name, key) for key, _ in group]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        sets = r.get("extra") or {}
        lines.append("| " + " | ".join([r["model"], *(_pct((sets.get(n) or {}).get(k)) for n, k in keys)]) + " |")
    return lines


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


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
