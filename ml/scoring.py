"""The metrics of one model on one labelled frame (pure functions of probabilities and labels; no files).

* :func:`score` -- the validation split: accuracy, precision, recall, F1 (positive class for binary data, macro
  for three classes), macro-averaged recall with each class's recall, ROC-AUC, the confusion matrix, and the
  profile of the answers drift is measured against.
* :func:`score_test` -- the test split: accuracy on its positive/negative rows; where it has neutral labels,
  three-class accuracy, macro-F1 and macro-averaged recall of the answers (the Neutral band for binary models).
* :func:`score_extra` -- an external labelled set, the same way, plus the share of Neutral answers of a binary
  model.

Macro-averaged recall (the mean of the classes' recalls) is SemEval's and TweetEval's sentiment metric: unlike
accuracy it does not reward a model for ignoring a rare class.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ml.drift import profile
from ml.predictor import TERNARY_LABELS, decide

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def binary_view(proba: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """P(positive) renormalised over negative+positive (equal to P(positive) for binary models)."""
    labels = tuple(labels)
    p_pos = proba[:, labels.index("positive")]
    p_neg = proba[:, labels.index("negative")]
    return p_pos / (p_pos + p_neg + 1e-12)


def recalls(truth: np.ndarray, pred: np.ndarray) -> tuple[float, dict[str, float]]:
    """Macro-averaged recall over the classes present in ``truth``, and each one's recall."""
    import numpy as np

    classes = [c for c in TERNARY_LABELS if c in set(truth)]
    by_class = {c: float(np.mean(pred[truth == c] == c)) for c in classes}
    return (float(np.mean(list(by_class.values()))) if by_class else float("nan")), by_class


def answers(proba: np.ndarray, labels: Sequence[str], band: tuple[float, float]) -> np.ndarray:
    """The service's answers as class names: the Neutral band for a binary model, the argmax for three classes."""
    import numpy as np

    return np.array([s.lower() for s in decide(proba, labels, band)])


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
        p_pos = binary_view(proba, labels)
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
    macro_recall, by_class = recalls(truth, pred)
    metrics = {
        "accuracy": float(accuracy_score(truth, pred)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "macro_recall": macro_recall,
        "recall_by_class": by_class,
        "roc_auc": float(auc),
        "n_val": int(len(df)),
        "predict_rows_per_s": round(len(df) / seconds, 1) if seconds > 0 else None,
        "reference": profile(decide(proba, labels, band), proba[:, labels.index("positive")].tolist()),
    }
    return metrics, confusion_matrix(truth, pred, labels=classes), classes


def _three_class(truth: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score

    macro_recall, by_class = recalls(truth, pred)
    return {"accuracy": float(accuracy_score(truth, pred)),
            "macro_f1": float(f1_score(truth, pred, average="macro", labels=list(TERNARY_LABELS), zero_division=0)),
            "macro_recall": macro_recall, "recall_by_class": by_class}


def score_test(predictor, df: pd.DataFrame, band: tuple[float, float]) -> dict[str, Any]:
    """Test metrics: binary accuracy on the positive/negative rows; where the frame has neutral labels, three-class
    accuracy, macro-F1 and macro-averaged recall of the answers (``test3_*``, else ``None``)."""
    import numpy as np
    from sklearn.metrics import accuracy_score

    empty = {"test_accuracy": None, "n_test_polar": 0, "test3_accuracy": None, "test3_macro_f1": None,
             "test3_macro_recall": None, "test3_recall_by_class": None, "n_test": 0}
    if df.empty:
        return empty
    proba = predictor.predict_proba(df["text"].tolist())
    truth = df["label"].to_numpy()
    polar = truth != "neutral"
    binary_pred = np.where(binary_view(proba, predictor.labels) >= 0.5, "positive", "negative")
    out = {**empty, "n_test": int(len(df)), "n_test_polar": int(polar.sum()),
           "test_accuracy": float(accuracy_score(truth[polar], binary_pred[polar])) if polar.any() else None}
    if not polar.all():
        three = _three_class(truth, answers(proba, predictor.labels, band))
        out.update({f"test3_{k}": v for k, v in three.items()})
    return out


def score_extra(predictor, df: pd.DataFrame, band: tuple[float, float]) -> dict[str, Any]:
    """Metrics on an external labelled set.

    With neutral labels: ``accuracy``, ``macro_f1`` and ``macro_recall`` (with ``recall_by_class``) of the
    service's answers over three classes. Without: ``accuracy`` and ``macro_f1`` of the positive/negative
    decision. Always ``binary_accuracy`` on the positive/negative rows, and for a binary model
    ``neutral_share``: the share of rows it answers Neutral (its P(positive) inside the band).
    """
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    proba = predictor.predict_proba(df["text"].tolist())
    truth = df["label"].to_numpy()
    polar = truth != "neutral"
    binary_pred = np.where(binary_view(proba, predictor.labels) >= 0.5, "positive", "negative")
    pred = answers(proba, predictor.labels, band)
    out: dict[str, Any] = {
        "n": int(len(df)),
        "binary_accuracy": float(accuracy_score(truth[polar], binary_pred[polar])) if polar.any() else None,
    }
    if polar.all():
        out.update(accuracy=float(accuracy_score(truth, binary_pred)),
                   macro_f1=float(f1_score(truth, binary_pred, average="macro", zero_division=0)))
    else:
        out.update(_three_class(truth, pred))
    if "neutral" not in predictor.labels:
        out["neutral_share"] = float(np.mean(pred == "neutral"))
    return out
