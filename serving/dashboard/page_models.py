"""The Models page: every training run's leaderboard beside the write-up's figures, its figures, params and data."""

from __future__ import annotations

import json
import math

import altair as alt
import pandas as pd
import streamlit as st

from ml.evaluate import REFERENCE
from serving.dashboard import sources
from serving.dashboard.ui import Context

#: Leaderboard columns shown first, in this order; any other scalar column follows (new evaluation columns too).
FIRST = ["model", "family", "accuracy", "reference_accuracy", "vs_reference", "f1", "precision", "recall", "roc_auc",
         "test_accuracy", "test3_accuracy", "test3_macro_f1", "train_seconds", "n_train"]
HIDDEN = {"reference", "path", "labels", "run_id", "data_version"}
PERCENT = ("accuracy",)  # columns whose name contains one of these are shown in % like the write-up


def render(ctx: Context) -> None:
    st.title("Models")
    runs = ctx.runs()
    if not runs:
        st.info(f"No leaderboard under {ctx.settings.reports_root} yet: trigger the sentiment140_training DAG, or run "
                "`python -m ml evaluate`.")
        return
    st.subheader("Runs")
    st.table(_runs_table(runs), hide_index=True)
    labels = {r.run_id: f"{r.run_id} ({r.record.get('status', 'no run record')})" for r in runs}
    chosen = st.selectbox("Run", list(labels), format_func=labels.get, key="run", bind="query-params")
    run = next(r for r in runs if r.run_id == chosen)
    _run(run)


def _runs_table(runs: list[sources.Run]) -> pd.DataFrame:
    rows = []
    for run in runs:
        best = max((r.get("accuracy") for r in run.rows if _is_number(r.get("accuracy"))), default=None)
        rows.append({"run": run.run_id, "status": run.record.get("status", "–"),
                     "champion": run.record.get("champion", "–"), "model tag": run.record.get("model_tag", "–"),
                     "data version": run.record.get("data_version") or _first(run.rows, "data_version") or "–",
                     "models": len(run.rows), "best accuracy %": "–" if best is None else f"{100 * best:.1f}",
                     "finished": run.record.get("finished_at", "–")})
    return pd.DataFrame(rows)


def _run(run: sources.Run) -> None:
    record = run.record
    facts = {k: record.get(k) for k in ("dag_run_id", "status", "data_version", "champion", "model_tag", "bento_tag",
                                        "planned_at", "finished_at", "failed_families") if record.get(k) is not None}
    st.markdown(" · ".join(f"**{k.replace('_', ' ')}** `{v}`" for k, v in facts.items()) or "No run record "
                "(`run.json`): the leaderboard was written by `python -m ml evaluate`.")
    st.subheader(f"Leaderboard of {run.run_id}")
    st.caption("Accuracies in % on the validation split; *write-up* is the figure the original write-up reports for "
               "the family (ml.evaluate.REFERENCE); test3_* are the held-out three-class figures.")
    st.table(leaderboard_table(run.rows), hide_index=True)
    left, right = st.columns(2)
    with left:
        st.caption("Validation accuracy against the write-up's figures")
        st.altair_chart(_bars(run.rows), width="stretch")
    with right:
        figure = run.figure("leaderboard.png")
        if figure:
            st.caption("The evaluation's figure (leaderboard.png)")
            st.image(str(figure), width="stretch")
    st.subheader("Confusion matrices")
    images = [(row.get("model"), run.confusion(str(row.get("model")))) for row in run.rows]
    images = [(name, path) for name, path in images if path]
    if not images:
        st.caption("No confusion_<model>.png in this run's folder.")
    for start in range(0, len(images), 3):
        for col, (name, path) in zip(st.columns(3), images[start:start + 3], strict=False):
            col.image(str(path), caption=str(name), width="stretch")
    with st.expander("Params of the run (run.json)"):
        params = {k: record.get(k) for k in ("families", "train", "settings", "eval_max_samples", "build_bento",
                                             "rows", "failures") if k in record}
        st.json(params or {"note": "no run record"}, expanded=2)


def leaderboard_table(rows: list[dict]) -> pd.DataFrame:
    """The leaderboard as strings, known columns first, then every other scalar column in name order."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["reference_accuracy"] = [_reference(r) for r in rows]
    frame["vs_reference"] = [None if ref is None or not _is_number(r.get("accuracy")) else 100 * r["accuracy"] - ref
                             for r, ref in zip(rows, frame["reference_accuracy"], strict=True)]
    scalar = [c for c in frame.columns if c not in HIDDEN and frame[c].map(_is_scalar).all()]
    order = [c for c in FIRST if c in scalar] + sorted(c for c in scalar if c not in FIRST)
    out = pd.DataFrame({_title(c): frame[c].map(lambda v, c=c: _cell(c, v)) for c in order})
    return out


def _reference(row: dict) -> float | None:
    value = row.get("reference_accuracy")
    if _is_number(value):
        return float(value)
    return REFERENCE.get(str(row.get("family")))


def _title(column: str) -> str:
    return {"reference_accuracy": "write-up", "vs_reference": "vs write-up"}.get(column, column)


def _cell(column: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if column == "vs_reference":
        return f"{value:+.1f}"
    if column == "reference_accuracy":
        return f"{value:.1f}"
    if isinstance(value, bool) or not _is_number(value):
        return json.dumps(value) if isinstance(value, dict | list) else str(value)
    if any(p in column for p in PERCENT) and 0 <= value <= 1:
        return f"{100 * value:.1f}"
    if column.endswith("seconds"):
        return f"{value:,.1f}"
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 100:
        return f"{int(value):,}"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:,.1f}"


def _bars(rows: list[dict]) -> alt.Chart:
    data = []
    for row in rows:
        if _is_number(row.get("accuracy")):
            data.append({"model": row["model"], "source": "this run", "accuracy": 100 * row["accuracy"]})
        ref = _reference(row)
        if ref is not None:
            data.append({"model": row["model"], "source": "write-up", "accuracy": ref})
    present = {str(row.get("family")) for row in rows}
    data += [{"model": f"{family} (write-up)", "source": "write-up", "accuracy": ref}
             for family, ref in REFERENCE.items() if family not in present]
    frame = pd.DataFrame(data, columns=["model", "source", "accuracy"])
    return alt.Chart(frame).mark_bar().encode(
        y=alt.Y("model:N", title=None, sort="-x"), x=alt.X("accuracy:Q", title="accuracy %",
                                                          scale=alt.Scale(domain=[50, 100], clamp=True)),
        yOffset="source:N", color=alt.Color("source:N", title=None,
                                            scale=alt.Scale(domain=["this run", "write-up"],
                                                            range=["#1565c0", "#bdbdbd"])),
        tooltip=["model:N", "source:N", alt.Tooltip("accuracy:Q", format=".1f")]).properties(height=280)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not (
        isinstance(value, float) and math.isnan(value))


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _first(rows: list[dict], key: str):
    return next((r.get(key) for r in rows if r.get(key)), None)
