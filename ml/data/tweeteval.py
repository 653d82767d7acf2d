"""The TweetEval layout (cardiffnlp/tweeteval): a text file of one tweet per line, a labels file of one class number
per line, and a mapping from numbers to names::

    datasets/sentiment/train_text.txt    train_labels.txt    mapping.txt   (0 negative, 1 neutral, 2 positive)
                       val_text.txt      val_labels.txt
                       test_text.txt     test_labels.txt

A source in this layout is named by its text file (``…/test_text.txt``: the labels and the mapping are found
beside it) or by its folder (then its test split).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

from ml.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

TEXT_SUFFIX = "_text.txt"
MAPPING = "mapping.txt"
_NAMES = {"negative": "negative", "neutral": "neutral", "positive": "positive", "neg": "negative",
          "neu": "neutral", "pos": "positive"}


def is_tweeteval(path: str | Path) -> bool:
    """Whether ``path`` names a TweetEval text file (``<split>_text.txt``) or a folder holding ``test_text.txt``."""
    path = Path(path)
    if path.is_dir():
        return (path / f"test{TEXT_SUFFIX}").is_file()
    return path.name.endswith(TEXT_SUFFIX)


def tweeteval_files(path: str | Path) -> tuple[Path, Path, Path]:
    """``(text, labels, mapping)`` for a TweetEval text file or folder (the folder's test split)."""
    path = Path(path)
    text = path / f"test{TEXT_SUFFIX}" if path.is_dir() else path
    if not text.name.endswith(TEXT_SUFFIX):
        raise DataError(f"{path}: not a TweetEval text file (<split>{TEXT_SUFFIX})")
    split = text.name.removesuffix(TEXT_SUFFIX)
    return text, text.with_name(f"{split}_labels.txt"), text.with_name(MAPPING)


def sibling_names(text_name: str) -> list[str]:
    """The files a TweetEval text file needs beside it (to fetch them from the same URL folder)."""
    split = text_name.removesuffix(TEXT_SUFFIX)
    return [f"{split}_labels.txt", MAPPING]


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"no such file: {path} (a TweetEval source needs its text, labels and mapping files)")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path.name}: undecodable bytes, not UTF-8 ({exc.reason})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def read_mapping(path: Path) -> dict[str, str]:
    """``{"0": "negative", …}`` from a mapping file of ``number<TAB>name`` lines."""
    mapping = {}
    for i, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) != 2 or parts[1].strip().lower() not in _NAMES:
            raise DataError(f"{path.name}: line {i}: expected 'number<TAB>negative|neutral|positive', got {line!r}")
        mapping[parts[0].strip()] = _NAMES[parts[1].strip().lower()]
    if not mapping:
        raise DataError(f"{path.name}: the mapping is empty")
    return mapping


def read_tweeteval(path: str | Path) -> pd.DataFrame:
    """A TweetEval split as a frame of ``id`` (``<split>-<line>``), ``text`` and ``label`` (names).

    Raises:
        DataError: a missing file, a label missing from the mapping, or text and labels of different lengths.
    """
    import pandas as pd

    text_path, labels_path, mapping_path = tweeteval_files(path)
    mapping = read_mapping(mapping_path)
    texts, labels = _lines(text_path), _lines(labels_path)
    if len(texts) != len(labels):
        raise DataError(f"{text_path.name} has {len(texts)} lines but {labels_path.name} has {len(labels)}")
    if not texts:
        raise DataError(f"{text_path.name}: the file is empty")
    names = []
    for i, value in enumerate(labels, 1):
        name = mapping.get(value.strip())
        if name is None:
            raise DataError(f"{labels_path.name}: line {i}: label {value!r} is not in {mapping_path.name} "
                            f"({sorted(mapping)})")
        names.append(name)
    split = text_path.name.removesuffix(TEXT_SUFFIX)
    return pd.DataFrame({"id": [f"{split}-{i}" for i in range(1, len(texts) + 1)],
                         "text": [html.unescape(t) for t in texts], "label": names})
