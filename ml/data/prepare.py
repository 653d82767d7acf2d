"""Deduplicate, validate and split the data into the parquet files every family trains and is judged on."""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.data.readers import read_labelled, read_sentiment140_zip
from ml.download import file_digest
from ml.errors import DataError
from ml.predictor import TERNARY_LABELS, atomic_dir

if TYPE_CHECKING:
    import pandas as pd

    from ml.settings import Settings

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
MANIFEST = "manifest.json"


def deduplicate(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop exact duplicates, every row of an id seen with conflicting labels, repeated ids and empty texts."""
    counts: dict[str, int] = {}
    n = len(df)
    df = df.drop_duplicates()
    counts["exact_duplicates"] = n - len(df)
    n_labels = df.groupby("id")["label"].transform("nunique")
    conflicting = n_labels > 1
    counts["conflicting_id_rows"] = int(conflicting.sum())
    counts["conflicting_ids"] = int(df.loc[conflicting, "id"].nunique())
    df = df[~conflicting]
    n = len(df)
    df = df.drop_duplicates(subset="id", keep="first")
    counts["repeated_ids"] = n - len(df)
    empty = df["text"].str.strip() == ""
    counts["empty_text"] = int(empty.sum())
    return df[~empty], counts


def validate(df: pd.DataFrame, where: str, *, min_share: float = 0.01) -> dict[str, Any]:
    """Check schema, labels, nulls and balance; raise DataError on anything a model must not train on."""
    missing = {"id", "text", "label"} - set(df.columns)
    if missing:
        raise DataError(f"{where}: missing columns {sorted(missing)}")
    if df[["id", "text", "label"]].isna().any().any():
        raise DataError(f"{where}: null values in id/text/label")
    unknown = set(df["label"].unique()) - set(TERNARY_LABELS)
    if unknown:
        raise DataError(f"{where}: unknown labels {sorted(unknown)}")
    counts = df["label"].value_counts().to_dict()
    if len(counts) < 2:
        raise DataError(f"{where}: only one class ({list(counts)}) - a classifier needs at least two")
    shares = {k: v / len(df) for k, v in counts.items()}
    rare = [k for k, s in shares.items() if s < min_share]
    if rare:
        log.warning("%s: classes %s hold under %.0f%% of rows", where, rare, 100 * min_share)
    return {"label_counts": {k: int(v) for k, v in sorted(counts.items())},
            "min_class_share": round(min(shares.values()), 4)}


def content_hash(frames: dict[str, pd.DataFrame]) -> str:
    """A hash of the splits' ids, labels and texts in order: identical data, identical hash."""
    h = hashlib.sha256()
    for name in SPLITS:
        df = frames[name]
        h.update(name.encode())
        for col in ("id", "label", "text"):
            h.update("\x1f".join(map(str, df[col].tolist())).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _split(df: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    if len(df) < 10:
        raise DataError(f"only {len(df)} usable rows: too few to split")
    a, b = train_test_split(df, test_size=fraction, stratify=df["label"], random_state=seed, shuffle=True)
    return a.reset_index(drop=True), b.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- prepare
def prepare(
    settings: Settings,
    source: Path | None = None,
    *,
    text_column: str = "text",
    label_column: str = "label",
    force: bool = False,
) -> dict[str, Any]:
    """Turn a downloaded archive (or a labelled file) into validated parquet splits and a manifest.

    Args:
        settings: Platform settings (artifacts root, seed, validation fraction).
        source: A Sentiment140 zip or a labelled CSV/TSV. Default: the archive ``data download`` fetched.
        text_column: Text column of a labelled file with a header.
        label_column: Label column of a labelled file with a header.
        force: Rebuild even when the manifest says the same source and settings were already prepared.

    Returns:
        The manifest.
    """
    source = Path(source) if source else default_source(settings)
    if not source.is_file():
        raise DataError(f"no input at {source}: run `python -m ml data download` first or pass a file")
    source_sha = file_digest(source)
    params = {"seed": settings.data.seed, "val_fraction": settings.data.val_fraction,
              "text_column": text_column, "label_column": label_column}
    out_dir = settings.processed_dir
    old = read_manifest(settings, missing_ok=True)
    if old and not force and old["source"]["sha256"] == source_sha and old["params"] == params:
        log.info("%s already prepared (data version %s); nothing to do", source.name, old["data_version"])
        return old

    is_zip = zipfile.is_zipfile(source) or source.suffix == ".zip"
    if is_zip:
        train_all, test = read_sentiment140_zip(source)
        kind = "sentiment140"
    else:
        train_all, test = read_labelled(source, text_column, label_column), None
        kind = "labelled"
    n_raw = len(train_all)
    train_all, dropped = deduplicate(train_all)
    log.info("%s: %d rows read, drops: %s", source.name, n_raw, dropped)
    checks = validate(train_all, source.name)
    if test is None:
        train_all, test = _split(train_all, settings.data.val_fraction / 2, settings.data.seed)
    else:
        test = test.reset_index(drop=True)
    train, validation = _split(train_all, settings.data.val_fraction, settings.data.seed)
    frames = {"train": train, "validation": validation, "test": test}
    digest = content_hash(frames)
    manifest = {
        "source": {"path": str(source), "name": source.name, "sha256": source_sha, "kind": kind},
        "params": params,
        "rows_read": n_raw,
        "dropped": dropped,
        "rows": {k: len(v) for k, v in frames.items()},
        "label_counts": {k: {lab: int(c) for lab, c in sorted(v["label"].value_counts().items())}
                         for k, v in frames.items()},
        "labels": sorted(set(train["label"]), key=TERNARY_LABELS.index),
        "validation": checks,
        "content_hash": digest,
        "data_version": digest[:12],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with atomic_dir(out_dir) as tmp:
        for name, df in frames.items():
            df.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    log.info("prepared data version %s: %s", manifest["data_version"], manifest["rows"])
    return manifest


def default_source(settings: Settings) -> Path:
    """What ``prepare`` reads without a source: the archive ``data download`` verified last, whatever its name,
    else the one named after the configured data URL."""
    from ml.download import archive_name, latest_archive

    return latest_archive(settings.raw_dir) or settings.raw_dir / archive_name(settings.data.url)


def read_manifest(settings: Settings, missing_ok: bool = False) -> dict[str, Any] | None:
    path = settings.processed_dir / MANIFEST
    if not path.exists():
        if missing_ok:
            return None
        raise DataError(f"no prepared data at {settings.processed_dir}: run `python -m ml data prepare` first")
    return json.loads(path.read_text())


def load_split(settings: Settings, name: str, max_samples: int | None = None) -> pd.DataFrame:
    """One prepared split; ``max_samples`` takes a seeded, stratified sample of it."""
    import pandas as pd

    if name not in SPLITS:
        raise DataError(f"unknown split {name!r}; choose one of {SPLITS}")
    path = settings.processed_dir / f"{name}.parquet"
    if not path.exists():
        raise DataError(f"no {name} split at {path}: run `python -m ml data prepare` first")
    df = pd.read_parquet(path)
    if max_samples and max_samples < len(df):
        frac = max_samples / len(df)
        df = (df.groupby("label", group_keys=False)
                .sample(frac=frac, random_state=settings.data.seed)
                .sample(frac=1.0, random_state=settings.data.seed)
                .reset_index(drop=True))
    return df
