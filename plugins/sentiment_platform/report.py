"""The daily report of a stream: one partition per day, ``<home>/stream/<name>/reports/date=YYYY-MM-DD/``.

* ``summary.json`` -- ``{"stream", "date", "rows", "by_keyword": {keyword: {"counts": {label: n}, "shares":
  {label: x}, "mean_p_positive": x}}, "drift": <ml.drift.compare(...)>, "reference_model": tag, "models": {tag: n},
  "duplicates_dropped": n}`` (posts without a keyword under ``"(none)"``);
* ``hourly.parquet`` -- one row per keyword, UTC hour and label: ``keyword, hour, label, count, share,
  mean_p_positive`` (``share``: of the keyword's posts in that hour);
* ``chart.png`` -- posts per hour by label, the day's P(positive) histogram against the champion's validation
  profile (with PSI and Jensen-Shannon distance), and label shares per keyword.

The day's rows are the stream's committed output (``_spark_metadata``: never a half-written batch) whose
``ingest_ts`` falls on that UTC day, deduplicated by post id. Drift compares them with the validation profile
(``reference``) of the model that scored most of them (its BentoML metadata, else its training run's leaderboard),
else of the latest packaged champion: PSI of the P(positive) histograms (flag above ``report_psi_threshold``, 0.2)
and the Jensen-Shannon distance of the label distributions (above ``report_js_threshold``, 0.1). A day without
posts gets an explicit empty report. Re-running a day replaces its partition with identical bytes (no wall-clock
time inside; written in a temporary folder renamed into place).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.drift import LABELS, SCORE_BINS, compare, profile

if TYPE_CHECKING:
    import pandas as pd

    from ml.settings import Settings

log = logging.getLogger(__name__)

NO_KEYWORD = "(none)"
COLUMNS = ["id", "keyword", "label", "p_positive", "model", "ingest_ts"]
COLOURS = {"Negative": "#d62728", "Neutral": "#9e9e9e", "Positive": "#2ca02c"}


def report_dir(settings: Settings, stream: str, day: date) -> Path:
    return settings.stream_dir(stream) / "reports" / f"date={day.isoformat()}"


def read_day(output: Path, day: date) -> pd.DataFrame:
    """The committed rows of ``day`` (UTC, by ``ingest_ts``): ``COLUMNS``, keyword ``None`` when there is none."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as ds

    from spark_apps.stream.sparklog import committed_files

    files = committed_files(output)
    keys: list[str] = []
    for path in files[:1]:  # every file of a sink has the same partition folders
        rel = Path(path).relative_to(output).parts[:-1]
        keys = [part.split("=", 1)[0] for part in rel if "=" in part]
    if "date" in keys:
        files = [f for f in files if f"date={day.isoformat()}" in Path(f).parts]
    empty = pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS}).astype(
        {"p_positive": "float64", "ingest_ts": "datetime64[ns, UTC]"})
    if not files:
        return empty
    partitioning = ds.partitioning(pa.schema([(k, pa.string()) for k in keys]), flavor="hive") if keys else None
    dataset = ds.dataset(files, format="parquet", partitioning=partitioning, partition_base_dir=str(output))
    table = dataset.to_table(columns=COLUMNS)
    frame = table.to_pandas()
    stamps = pd.to_datetime(frame["ingest_ts"], utc=True)
    start = pd.Timestamp(day.isoformat(), tz="UTC")
    frame = frame[(stamps >= start) & (stamps < start + pd.Timedelta(days=1))].copy()
    frame["ingest_ts"] = pd.to_datetime(frame["ingest_ts"], utc=True)
    frame["keyword"] = frame["keyword"].where(frame["keyword"].notna() & (frame["keyword"] != "__HIVE_DEFAULT_PARTITION__"),
                                              None)
    return frame.reset_index(drop=True)


def _shares(counts: Mapping[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {label: round(n / total, 6) if total else 0.0 for label, n in counts.items()}


def _mean(values: pd.Series) -> float | None:
    values = values.dropna()
    return None if values.empty else round(float(values.mean()), 6)


def summarise(frame: pd.DataFrame) -> tuple[dict[str, Any], Any]:
    """``by_keyword`` and the hourly table (a pyarrow Table in a fixed order) of a day's rows."""
    import pyarrow as pa

    by_keyword: dict[str, Any] = {}
    frame = frame.assign(kw=frame["keyword"].fillna(NO_KEYWORD), hour=frame["ingest_ts"].dt.hour.astype("int32"))
    for keyword in sorted(frame["kw"].unique()):
        group = frame[frame["kw"] == keyword]
        counts = {label: int((group["label"] == label).sum()) for label in LABELS}
        by_keyword[keyword] = {"counts": counts, "shares": _shares(counts), "mean_p_positive": _mean(group["p_positive"])}
    rows = []
    for (keyword, hour), group in sorted(frame.groupby(["kw", "hour"]), key=lambda item: item[0]):
        total = len(group)
        for label in LABELS:
            members = group[group["label"] == label]
            if len(members):
                rows.append({"keyword": None if keyword == NO_KEYWORD else keyword, "hour": int(hour), "label": label,
                             "count": len(members), "share": round(len(members) / total, 6),
                             "mean_p_positive": _mean(members["p_positive"])})
    schema = pa.schema([("keyword", pa.string()), ("hour", pa.int32()), ("label", pa.string()),
                        ("count", pa.int64()), ("share", pa.float64()), ("mean_p_positive", pa.float64())])
    return by_keyword, pa.Table.from_pylist(rows, schema=schema)


def reference_of(settings: Settings, tag: str) -> dict[str, Any] | None:
    """The validation profile of a packaged model: its BentoML metadata, else its training run's leaderboard row."""
    name, _, version = tag.partition(":")
    if (settings.bentoml_home / "models" / name / version).is_dir():  # (importing BentoML costs seconds)
        try:
            from serving.package import model_store

            meta = model_store(settings).get(tag).info.metadata
            if isinstance(meta.get("reference"), dict):
                return meta["reference"]
        except Exception:  # unreadable: look in the training reports
            log.warning("could not read the metadata of %s in the model store", tag, exc_info=True)
    for record_path in sorted(settings.reports_root.glob("*/run.json")) if settings.reports_root.is_dir() else []:
        try:
            run = json.loads(record_path.read_text())
            if run.get("model_tag") != tag:
                continue
            board = json.loads((record_path.parent / "leaderboard.json").read_text())
        except (OSError, ValueError):
            continue
        for row in board:
            if row.get("model") == run.get("champion") and isinstance(row.get("reference"), dict):
                return row["reference"]
    return None


def pick_reference(settings: Settings, models: Mapping[str, int]) -> tuple[dict[str, Any] | None, str | None]:
    """The reference profile for a day scored by ``models`` ({tag: rows}): the busiest model's with a profile,
    else the latest packaged champion's."""
    for tag in sorted(models, key=lambda t: (-models[t], t)):
        found = reference_of(settings, tag)
        if found:
            return found, tag
    from serving import MODEL_NAME

    if not (settings.bentoml_home / "models" / MODEL_NAME / "latest").is_file():
        return None, None  # nothing packaged at all
    try:
        from serving.package import model_store

        latest = str(model_store(settings).get(f"{MODEL_NAME}:latest").tag)
    except Exception:
        return None, None
    found = reference_of(settings, latest)
    return (found, latest) if found else (None, None)


def build_daily_report(settings: Settings, stream: str, day: date) -> dict[str, Any]:
    """Compute and write the report of ``stream`` for ``day`` (replacing an earlier one); return the summary."""
    output = settings.stream_dir(stream) / "output"
    frame = read_day(output, day)
    before = len(frame)
    frame = frame.sort_values(["ingest_ts", "id"], kind="stable").drop_duplicates("id", keep="first")
    by_keyword, hourly = summarise(frame)
    models = {str(tag): int(n) for tag, n in sorted(frame["model"].value_counts().items())}
    reference, reference_model = pick_reference(settings, models)
    live = profile(frame["label"].tolist(), [None if p != p else p for p in frame["p_positive"].tolist()])
    drift = compare(reference or {}, live, psi_threshold=settings.report.psi_threshold,
                    js_threshold=settings.report.js_threshold)
    summary = {"stream": stream, "date": day.isoformat(), "rows": int(len(frame)), "by_keyword": by_keyword,
               "drift": drift, "reference_model": reference_model, "models": models,
               "duplicates_dropped": int(before - len(frame))}
    write_partition(report_dir(settings, stream, day), summary, hourly, reference, live)
    log.info("report of stream %s for %s: %d posts, PSI %s, JS %s, drift %s (reference %s)", stream, day,
             summary["rows"], drift["psi"], drift["js"], drift["drift"], reference_model)
    return summary


def write_partition(final: Path, summary: dict[str, Any], hourly, reference: dict[str, Any] | None,
                    live: dict[str, Any]) -> None:
    """Write the three files into a temporary sibling folder, then rename it over ``final``."""
    import pyarrow.parquet as pq

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    pq.write_table(hourly, tmp / "hourly.parquet", compression="snappy")
    draw_chart(tmp / "chart.png", summary, hourly, reference, live)
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)


def draw_chart(path: Path, summary: dict[str, Any], hourly, reference: dict[str, Any] | None,
               live: dict[str, Any]) -> None:
    """Posts per hour by label, the P(positive) histogram against the reference, label shares per keyword."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    day, rows = summary["date"], summary["rows"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), dpi=100)
    hours = list(range(24))
    per_hour = {label: [0] * 24 for label in LABELS}
    for row in hourly.to_pylist():
        per_hour[row["label"]][row["hour"]] += row["count"]
    bottom = [0] * 24
    for label in LABELS:
        axes[0].bar(hours, per_hour[label], bottom=bottom, color=COLOURS[label], label=label)
        bottom = [b + v for b, v in zip(bottom, per_hour[label], strict=True)]
    axes[0].set(title=f"{summary['stream']} {day}: {rows} posts", xlabel="hour (UTC)", ylabel="posts", xlim=(-0.5, 23.5))
    axes[0].legend(loc="upper left", fontsize=8)

    centres = [(i + 0.5) / SCORE_BINS for i in range(SCORE_BINS)]
    width = 0.4 / SCORE_BINS

    def shares(hist: list[int]) -> list[float]:
        total = sum(hist)
        return [h / total if total else 0.0 for h in hist]

    if reference:
        axes[1].bar([c - width / 2 for c in centres], shares(reference.get("score_hist") or [0] * SCORE_BINS),
                    width=width, color="#1f77b4", label=f"validation ({summary['reference_model']})")
    axes[1].bar([c + width / 2 for c in centres], shares(live["score_hist"]), width=width, color="#ff7f0e",
                label="this day")
    drift = summary["drift"]
    flag = {True: "DRIFT", False: "no drift", None: "n/a"}[drift["drift"]]
    axes[1].set(title=f"P(positive): PSI {drift['psi']}, JS {drift['js']} ({flag})", xlabel="P(positive)",
                ylabel="share", xlim=(0, 1))
    axes[1].legend(loc="upper center", fontsize=8)

    keywords = sorted(summary["by_keyword"], key=lambda k: -sum(summary["by_keyword"][k]["counts"].values()))[:10]
    left = [0.0] * len(keywords)
    for label in LABELS:
        values = [summary["by_keyword"][k]["shares"][label] for k in keywords]
        axes[2].barh(keywords, values, left=left, color=COLOURS[label], label=label)
        left = [a + b for a, b in zip(left, values, strict=True)]
    axes[2].set(title="label shares per keyword (10 busiest)", xlim=(0, 1))
    axes[2].invert_yaxis()
    if not rows:
        for ax in axes:
            ax.text(0.5, 0.5, f"no posts on {day}", ha="center", va="center", transform=ax.transAxes, color="#555")
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def logical_day(context: Mapping[str, Any]) -> date:
    """The day a report run covers: its logical date (a scheduled or backfilled run's is the start of its day's
    interval; a manual run may name one), else its data interval's start, else the day before it ran (a manual run
    without a logical date)."""
    for key in ("logical_date", "data_interval_start"):
        value = context.get(key)
        if isinstance(value, datetime):
            return value.date()
    after = getattr(context.get("dag_run"), "run_after", None) or datetime.now()
    return (after - timedelta(days=1)).date()
