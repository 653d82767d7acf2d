"""Deduplication and leak-free splits: no text is trained on twice by accident, and no cleaned text is in two splits.

* :func:`deduplicate` works on the text whatever the id (files without an id column number their rows, so ids
  alone never find a duplicate): rows repeating an earlier row's text and label go, every row of a text seen
  with conflicting labels goes, then the id rules of sources with real ids (Sentiment140) apply.
* :func:`leak_free_split` splits by *cleaned* text (:func:`ml.text.clean`, what every model reads): rows whose
  cleaned texts are equal (``"so happy http://t.co/x"`` and ``"so happy @bob"``) land in the same split.
* :func:`drop_overlap` removes from a split the rows whose cleaned text is in another (a named or official test
  file, a named validation file).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ml.errors import DataError
from ml.text import clean

if TYPE_CHECKING:
    import pandas as pd


def deduplicate(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop repeated texts, texts with conflicting labels, id conflicts and empty texts; count each.

    Returns:
        The kept rows (first occurrences, in order) and the counts: ``repeated_texts`` (rows whose text was seen
        before, whatever the label: information), ``duplicate_rows`` (rows repeating an earlier row's text and
        label, whatever the id), ``conflicting_texts`` / ``conflicting_text_rows`` (texts seen with more than one
        label, and their rows left after the duplicates: all go), ``conflicting_ids`` / ``conflicting_id_rows``
        (ids with several labels), ``repeated_ids`` (later rows of an id, other text) and ``empty_text``. The
        row counts add up: rows read = rows kept + duplicate_rows + conflicting_text_rows + conflicting_id_rows
        + repeated_ids + empty_text.
    """
    counts: dict[str, int] = {}
    counts["repeated_texts"] = int(df["text"].duplicated().sum())
    n = len(df)
    df = df.drop_duplicates(subset=["text", "label"], keep="first")
    counts["duplicate_rows"] = n - len(df)
    n_labels = df.groupby("text", sort=False)["label"].transform("nunique")
    conflicting = (n_labels > 1).to_numpy()
    counts["conflicting_text_rows"] = int(conflicting.sum())
    counts["conflicting_texts"] = int(df.loc[conflicting, "text"].nunique())
    df = df[~conflicting]
    n_labels = df.groupby("id", sort=False)["label"].transform("nunique")
    conflicting = (n_labels > 1).to_numpy()
    counts["conflicting_id_rows"] = int(conflicting.sum())
    counts["conflicting_ids"] = int(df.loc[conflicting, "id"].nunique())
    df = df[~conflicting]
    n = len(df)
    df = df.drop_duplicates(subset="id", keep="first")
    counts["repeated_ids"] = n - len(df)
    empty = (df["text"].str.strip() == "").to_numpy()
    counts["empty_text"] = int(empty.sum())
    return df[~empty].reset_index(drop=True), counts


def cleaned_keys(texts: Iterable[str]) -> list[str]:
    """The key rows are grouped by: the cleaned text, or a key of the row's own when nothing is left after
    cleaning (a text that is only a URL or emoji carries no content to leak, and must not form one big group)."""
    out = []
    for i, text in enumerate(texts):
        key = clean(text)
        out.append(key if key else f"\x00{i}")
    return out


def drop_overlap(df: pd.DataFrame, other: pd.DataFrame | None) -> tuple[pd.DataFrame, int]:
    """``df`` without the rows whose cleaned text is one of ``other``'s; and how many went."""
    if other is None or other.empty or df.empty:
        return df, 0
    taken = {clean(t) for t in other["text"]} - {""}
    keep = [clean(t) not in taken for t in df["text"]]
    kept = df[keep].reset_index(drop=True)
    return kept, len(df) - len(kept)


def leak_free_split(df: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``df`` into ``(rest, held_out)``: about ``fraction`` of the rows held out, stratified by label,
    seeded and shuffled, with every cleaned text in one side only.

    Rows are grouped by cleaned text (:func:`cleaned_keys`); the groups, each with its first row's label, are
    split with scikit-learn's stratified ``train_test_split``. With one row per cleaned text this is the plain
    stratified split of the rows.
    """
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import train_test_split

    if len(df) < 10:
        raise DataError(f"only {len(df)} usable rows: too few to split")
    df = df.reset_index(drop=True)
    keys = pd.Series(cleaned_keys(df["text"]), index=df.index)
    first = ~keys.duplicated()
    groups = keys[first].to_numpy()
    try:
        rest, held = train_test_split(groups, test_size=fraction, stratify=df.loc[first, "label"].to_numpy(),
                                      random_state=seed, shuffle=True)
    except ValueError as exc:  # a class with a single text cannot be stratified
        raise DataError(f"cannot split {len(groups)} distinct texts by label ({exc})") from None
    order = {key: i for i, key in enumerate(np.concatenate([rest, held]))}
    rank = keys.map(order).to_numpy()
    held_set = set(held)
    in_held = keys.isin(held_set).to_numpy()
    # The groups' shuffled order, and within a group the file's order.
    a = df[~in_held].iloc[np.argsort(rank[~in_held], kind="stable")].reset_index(drop=True)
    b = df[in_held].iloc[np.argsort(rank[in_held], kind="stable")].reset_index(drop=True)
    return a, b
