"""The recurrent family: vocabulary layout, training on a tiny fixture, 3 classes, save/load."""

from __future__ import annotations

import itertools
import json
import random
import string
import zipfile

import numpy as np
import pytest
from fixtures import NEGATIVE, NEUTRAL, POSITIVE, train_failing_to_save, tweet

from ml.predictor import BINARY_LABELS, TERNARY_LABELS, load_predictor
from ml.text import clean

pytest.importorskip("tensorflow")

SMALL = {"embedding_dim": 16, "units": 8, "top_units": 8, "batch_size": 32, "learning_rate": 0.01,
         "patience": 3, "not_an_option": "ignored"}


def words(n: int) -> list[str]:
    """``n`` distinct letter-only words (the cleaner drops digits), in alphabetical order."""
    out = ("".join(p) for k in itertools.count(3) for p in itertools.product(string.ascii_lowercase, repeat=k))
    return list(itertools.islice(out, n))


def dataset(n: int, pools: dict[str, list[str]], seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    names = list(pools)
    labels = [names[i % len(names)] for i in range(n)]
    return [tweet(rng, pools[label]) for label in labels], labels


def test_vocabulary_layout_pad_oov_buckets_and_10501_rows():
    from ml.models.rnn import EMBEDDING_ROWS
    from ml.models.rnn.network import build_models, build_vocabulary
    from ml.models.rnn.predictor import GRUPredictor

    vocab_words = words(10_200)
    # The first 10,000 words appear twice, the last 200 once: exactly the first 10,000 make the vocabulary.
    tokens = [[w] for w in vocab_words[:10_000]] * 2 + [[w] for w in vocab_words[10_000:]]
    vocabulary = build_vocabulary(tokens)
    assert vocabulary == vocab_words[:10_000]

    defaults = GRUPredictor()
    assert (defaults.embedding_dim, defaults.units, defaults.top_units, defaults.vocab_size) == (200, 100, 200, 10_000)
    core, full = build_models(vocabulary, max_length=8, n_classes=2)
    assert EMBEDDING_ROWS == 10_501
    embedding = core.get_layer("embedding")
    assert tuple(embedding.embeddings.shape) == (10_501, 200)
    assert embedding.mask_zero
    layer = full.get_layer("tokens")
    assert layer.vocabulary_size() == 10_501

    import keras

    for cell, rnn in (("gru", keras.layers.GRU), ("lstm", keras.layers.LSTM)):  # the write-up's network
        net, _ = build_models(vocabulary, max_length=8, n_classes=2, cell=cell)
        layers = [layer for layer in net.layers if not isinstance(layer, keras.layers.InputLayer)]
        assert [type(layer).__name__ for layer in layers] == ["Embedding", "Bidirectional", "Bidirectional",
                                                              type(rnn(1)).__name__, "Dense"]
        for bi in layers[1:3]:
            assert isinstance(bi.forward_layer, rnn) and bi.forward_layer.units == 100 and bi.forward_layer.return_sequences
        assert layers[3].units == 200 and not layers[3].return_sequences
        assert layers[4].units == 1 and layers[4].activation.__name__ == "sigmoid"
    three, _ = build_models(vocabulary, max_length=8, n_classes=3)
    assert three.layers[-1].units == 3 and three.layers[-1].activation.__name__ == "softmax"

    rare, unseen = vocab_words[10_000], "qwertyuiop"
    ids = layer(np.array(["", vocab_words[0], vocab_words[9_999], rare, unseen, unseen,
                          f"{vocab_words[0]} {vocab_words[1]}", " ".join(vocab_words[:20])], dtype=object)).numpy()
    assert ids.shape == (8, 8)
    assert (ids[0] == 0).all()                                     # empty text: all padding
    assert ids[1, 0] == 501 and (ids[1, 1:] == 0).all()            # most frequent token: first vocabulary row
    assert ids[2, 0] == 10_500                                     # 10,000th token: last row
    assert 1 <= ids[3, 0] <= 500                                   # outside the top 10,000: an OOV bucket
    assert 1 <= ids[4, 0] <= 500 and ids[4, 0] == ids[5, 0]        # an unseen token always hashes the same
    assert list(ids[6, :3]) == [501, 502, 0]                       # right-padded with 0
    assert (ids[7] == np.arange(501, 509)).all()                   # truncated to max_length

    buckets = layer(np.array(words(20_000)[-2_000:], dtype=object)).numpy()[:, 0]
    assert buckets.min() >= 1 and buckets.max() <= 500
    assert len(set(buckets.tolist())) > 400                        # 2,000 OOV words spread over the buckets


@pytest.mark.slow
def test_gru_trains_predicts_and_roundtrips(settings, tmp_path):
    from ml.models.rnn import MODEL_FILE
    from ml.models.rnn.predictor import GRUPredictor

    texts, labels = dataset(320, {"positive": POSITIVE, "negative": NEGATIVE})
    predictor = GRUPredictor.from_options(settings, {**SMALL, "epochs": 6})
    facts = predictor.fit(texts[:256], labels[:256], val_texts=texts[256:], val_labels=labels[256:])

    assert predictor.labels == BINARY_LABELS
    losses = facts["history"]["loss"]
    assert losses[-1] < losses[0] * 0.8, losses
    assert facts["history"]["val_accuracy"][-1] > 0.8
    from ml.lengths import coverage_of
    from ml.text import tokenize

    words = [len(tokenize(t)) for t in texts[:256]]                  # the measured length: the shortest that
    assert coverage_of(words, facts["max_length"]) >= 0.99 > coverage_of(words, facts["max_length"] - 1)  # fits 99%

    probe_pos = ["I love this so much", "what a great day", "so happy right now!!"]
    probe_neg = ["I hate this so much", "what a terrible day", "so sad right now"]
    proba = predictor.predict_proba(probe_pos + probe_neg + ["", "http://t.co/x @bob"])
    assert proba.shape == (8, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert proba[:3, 1].min() > proba[3:6, 1].max()                # learned direction, not a constant
    assert predictor.predict_proba([]).shape == (0, 2)
    many = predictor.predict_proba(probe_pos * 700)                # more than one prediction chunk
    assert many.shape == (2_100, 2) and np.allclose(many[0], many[-3])

    path = predictor.save(tmp_path / "gru")
    assert sorted(p.name for p in path.iterdir()) == sorted([MODEL_FILE, "predictor.json"])
    loaded = load_predictor(path)
    assert type(loaded) is GRUPredictor and loaded.labels == BINARY_LABELS
    probe = probe_pos + probe_neg + ["", "zzzz qqqq"]
    np.testing.assert_array_equal(loaded.predict_proba(probe), predictor.predict_proba(probe))
    raw = ["@bob I LOVE this!!! http://t.co/x #Happy", "so SAD... www.example.com"]
    np.testing.assert_array_equal(loaded.predict_proba_cleaned([clean(t) for t in raw]), loaded.predict_proba(raw))

    # model.keras alone predicts on raw tweets: it cleans them with ml.text.clean itself
    import keras

    from ml.models.rnn.layers import custom_objects

    alone = keras.saving.load_model(path / MODEL_FILE, custom_objects=custom_objects(), compile=False)
    raw += ["I LOVE this so much &amp; more", "@jo WHAT a TERRIBLE day", "café olé 😀", ""]
    expected = loaded.predict_proba(raw)[:, 1]
    np.testing.assert_allclose(alone.predict(np.array(raw, dtype=object), verbose=0)[:, 0], expected, atol=1e-6)
    tokens = alone.get_layer("tokens")
    np.testing.assert_array_equal(tokens(np.array(raw, dtype=object)).numpy(),
                                  tokens.ids(np.array([clean(t) for t in raw], dtype=object)).numpy())
    assert not (tokens(np.array(["I LOVE this"], dtype=object)).numpy()[0, :3] <= 500).any()   # no OOV rows


def test_saved_model_keras_loads_in_a_fresh_process_with_only_the_layers_module(settings, tmp_path):
    """A plain ``keras.saving.load_model`` (no ``custom_objects``) in a new interpreter: importing
    ``ml.models.rnn.layers`` registers what the file names, and the model then predicts on raw tweets what the
    predictor does. Without that import Keras cannot find the ``TokenIds`` class."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from ml.models.rnn import MODEL_FILE
    from ml.models.rnn.predictor import GRUPredictor

    texts, labels = dataset(64, {"positive": POSITIVE, "negative": NEGATIVE}, seed=11)
    predictor = GRUPredictor.from_options(settings, {**SMALL, "epochs": 1, "work_dir": tmp_path / "w"})
    predictor.fit(texts, labels)
    path = predictor.save(tmp_path / "gru") / MODEL_FILE
    raw = ["@bob I LOVE this!!! http://t.co/x #Happy", "so SAD... www.example.com", "caf\u00e9 ol\u00e9 \U0001f600", ""]
    script = "\n".join([
        "import json, sys",
        "import keras, numpy as np",
        "try:",
        "    keras.saving.load_model(sys.argv[1])",
        "except Exception as exc:",
        "    print(json.dumps({'without_import': str(exc)}))",
        "import ml.models.rnn.layers",
        "model = keras.saving.load_model(sys.argv[1])",
        "print(json.dumps(model.predict(np.array(json.loads(sys.argv[2]), dtype=object), verbose=0)[:, 0].tolist()))",
    ])
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script, str(path), json.dumps(raw)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-3000:]
    failed, predicted = [json.loads(line) for line in done.stdout.strip().splitlines()[-2:]]
    assert "Could not locate class 'TokenIds'" in failed["without_import"]
    np.testing.assert_allclose(predicted, predictor.predict_proba(raw)[:, 1], atol=1e-6)


@pytest.mark.slow
def test_lstm_three_classes(settings, tmp_path):
    from ml.models.rnn.predictor import LSTMPredictor

    texts, labels = dataset(300, {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}, seed=1)
    predictor = LSTMPredictor.from_options(settings, {**SMALL, "epochs": 8, "dropout": 0.1})
    facts = predictor.fit(texts[:240], labels[:240], val_texts=texts[240:], val_labels=labels[240:])

    assert predictor.labels == TERNARY_LABELS
    assert predictor.model.output_shape == (None, 3)
    core = predictor.model.get_layer("lstm_core")
    assert {"embedding_dropout", "dropout_1", "dropout_2", "dropout_top"} <= {layer.name for layer in core.layers}
    losses = facts["history"]["loss"]
    assert losses[-1] < losses[0] * 0.8, losses
    proba = predictor.predict_proba(texts[240:])
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    predicted = [TERNARY_LABELS[i] for i in proba.argmax(axis=1)]
    assert np.mean([p == t for p, t in zip(predicted, labels[240:], strict=True)]) > 0.6

    np.testing.assert_array_equal(predictor.predict_proba(texts[240:]), proba)  # no dropout at inference

    loaded = load_predictor(predictor.save(tmp_path / "lstm3"))
    assert loaded.labels == TERNARY_LABELS and loaded.dropout == 0.1
    np.testing.assert_array_equal(loaded.predict_proba(texts[240:]), proba)


@pytest.mark.slow
def test_resume_after_interruption_continues_at_the_next_epoch(settings, tmp_path):
    """A fit killed after epoch 2 of 4 resumes at epoch 3 from its checkpoint and ends where an uninterrupted
    fit ends; a checkpoint of other data is ignored; the work directory goes after success."""
    from ml.models.rnn.predictor import GRUPredictor

    texts, labels = dataset(192, {"positive": POSITIVE, "negative": NEGATIVE}, seed=3)
    train, val = (texts[:160], labels[:160]), {"val_texts": texts[160:], "val_labels": labels[160:]}
    options = {**SMALL, "epochs": 4, "patience": 10, "dropout": 0.1}
    probe = texts[160:]

    straight = GRUPredictor.from_options(settings, {**options, "work_dir": tmp_path / "straight"})
    straight_facts = straight.fit(*train, **val)
    assert straight_facts["epochs_run"] == 4 and straight_facts["resumed_from_epoch"] is None
    assert not (tmp_path / "straight").exists()

    class Killed(Exception):
        pass

    def kill_after_epoch_2(event):
        if event["epoch"] == 2:
            raise Killed

    work = tmp_path / "work"
    first = GRUPredictor.from_options(settings, {**options, "work_dir": work})
    first.callbacks.append(kill_after_epoch_2)
    with pytest.raises(Killed):
        first.fit(*train, **val)
    assert json.loads((work / "last" / "state.json").read_text())["epoch"] == 2

    seen = []
    second = GRUPredictor.from_options(settings, {**options, "work_dir": work})
    second.callbacks.append(lambda event: seen.append(event["epoch"]))
    facts = second.fit(*train, **val)
    assert facts["resumed_from_epoch"] == 2 and seen == [3, 4] and facts["epochs_run"] == 4
    assert len(facts["history"]["loss"]) == 4                                     # the history spans both runs
    np.testing.assert_allclose(facts["history"]["loss"], straight_facts["history"]["loss"], rtol=1e-4)
    np.testing.assert_allclose(second.predict_proba(probe), straight.predict_proba(probe), atol=1e-5)
    assert not work.exists()

    # A checkpoint left by other data is not resumed.
    third = GRUPredictor.from_options(settings, {**options, "work_dir": work, "keep_work_dir": True})
    third.callbacks.append(kill_after_epoch_2)
    with pytest.raises(Killed):
        third.fit(*train, **val)
    other = GRUPredictor.from_options(settings, {**options, "work_dir": work, "epochs": 1})
    assert other.fit(train[0][::-1], train[1][::-1], **val)["resumed_from_epoch"] is None



def _teacher(tmp_path, texts, labels, name="teacher"):
    """A real LogisticRegression trained on the true labels, saved: a teacher that knows the task."""
    from ml.models.classical import LogRegPredictor

    teacher = LogRegPredictor(max_features=500, ngram_max=2)
    teacher.fit(texts, labels)
    return teacher.save(tmp_path / name)


@pytest.mark.slow
def test_distillation_learns_the_teachers_knowledge_not_the_noisy_labels(settings, tmp_path):
    """The student's training labels are all wrong (swapped); only the teacher knows the task. With the teacher's
    probabilities as targets the GRU learns it; from the labels alone it cannot. The saved student needs no
    teacher, and a resumed fit reuses the teacher's probabilities instead of recomputing them."""
    import shutil

    from ml.models.rnn import MODEL_FILE
    from ml.models.rnn.predictor import GRUPredictor, LSTMPredictor
    from ml.training import fit_predictor

    texts, labels = dataset(320, {"positive": POSITIVE, "negative": NEGATIVE}, seed=5)
    teacher_dir = _teacher(tmp_path, texts[:256], labels[:256])
    swapped = ["negative" if label == "positive" else "positive" for label in labels[:256]]
    train, val = (texts[:256], swapped), {"val_texts": texts[256:], "val_labels": labels[256:]}
    probe = texts[256:]

    def accuracy(predictor):
        predicted = np.array(predictor.labels)[predictor.predict_proba(probe).argmax(axis=1)]
        return float(np.mean(predicted == np.array(labels[256:])))

    options = {**SMALL, "epochs": 6}
    plain = GRUPredictor.from_options(settings, {**options, "work_dir": tmp_path / "plain"})
    assert plain.fit(*train, **val)["teacher"] is None
    student = GRUPredictor.from_options(settings, {**options, "teacher": str(teacher_dir),
                                                   "work_dir": tmp_path / "work", "keep_work_dir": True})
    facts = fit_predictor(student, *train, settings, **val)

    assert accuracy(student) > 0.9 > 0.6 > accuracy(plain), (accuracy(student), accuracy(plain))
    teacher = facts["teacher"]
    assert teacher["family"] == "logreg" and teacher["weight"] == 1.0 and teacher["reused"] is False
    assert teacher["precision"] is None                     # a classical teacher: no precision setting applies
    assert teacher["agreement"] < 0.1                              # the teacher contradicts the swapped labels
    assert facts["history"]["accuracy"][-1] > 0.9                  # agreement with the soft targets, cut at 0.5
    cached = list((settings.home / "cache" / "teacher").glob("*.npy"))
    assert len(cached) == 1 and np.load(cached[0]).shape == (256, 2)

    # The resumed (finished) fit and an LSTM on the same texts reuse the teacher's probabilities.
    again = GRUPredictor.from_options(settings, {**options, "teacher": str(teacher_dir),
                                                 "work_dir": tmp_path / "work", "keep_work_dir": True})
    assert fit_predictor(again, *train, settings, **val)["teacher"]["reused"] is True
    lstm = LSTMPredictor.from_options(settings, {**options, "epochs": 1, "teacher": str(teacher_dir)})
    assert fit_predictor(lstm, *train, settings, **val)["teacher"]["reused"] is True
    # A teacher retrained in place is run again, not read from the cache.
    _teacher(tmp_path, texts[:256], swapped)
    retrained = LSTMPredictor.from_options(settings, {**options, "epochs": 1, "teacher": str(teacher_dir)})
    assert fit_predictor(retrained, *train, settings, **val)["teacher"]["reused"] is False

    saved = student.save(tmp_path / "student")
    with zipfile.ZipFile(saved / MODEL_FILE) as archive:  # built-in metrics only: any Keras can load it
        assert "agreement" not in archive.read("config.json").decode()
    meta = json.loads((saved / "predictor.json").read_text())
    assert meta["params"]["teacher"] == str(teacher_dir) and meta["params"]["teacher_weight"] == 1.0
    shutil.rmtree(teacher_dir)
    np.testing.assert_array_equal(load_predictor(saved).predict_proba(probe), student.predict_proba(probe))


@pytest.mark.slow
def test_distillation_three_classes_and_a_teacher_of_other_classes(settings, tmp_path):
    from ml.errors import ConfigError
    from ml.models.rnn.predictor import LSTMPredictor
    from ml.training import fit_predictor

    pools = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}
    texts, labels = dataset(300, pools, seed=2)
    teacher_dir = _teacher(tmp_path, texts, labels)
    # The student's labels are rotated (all wrong); 0.8 of each target is the teacher's, which knows the task.
    rotate = {"negative": "neutral", "neutral": "positive", "positive": "negative"}
    student = LSTMPredictor.from_options(settings, {**SMALL, "epochs": 8, "teacher": str(teacher_dir),
                                                    "teacher_weight": 0.8})
    facts = fit_predictor(student, texts[:240], [rotate[v] for v in labels[:240]], settings, val_texts=texts[240:],
                          val_labels=labels[240:])
    assert facts["teacher"]["weight"] == 0.8 and facts["teacher"]["agreement"] < 0.1
    assert facts["history"]["loss"][-1] < facts["history"]["loss"][0] * 0.8
    proba = student.predict_proba(texts[240:])
    assert proba.shape == (60, 3)
    predicted = [TERNARY_LABELS[i] for i in proba.argmax(axis=1)]
    assert np.mean([p == t for p, t in zip(predicted, labels[240:], strict=True)]) > 0.6

    binary_teacher = _teacher(tmp_path, *dataset(100, {"positive": POSITIVE, "negative": NEGATIVE}), name="binary")
    with pytest.raises(ConfigError, match="other|classes"):
        fit_predictor(LSTMPredictor.from_options(settings, {**SMALL, "epochs": 1, "teacher": str(binary_teacher)}),
                      texts, labels, settings)
    with pytest.raises(ConfigError, match="not a saved model"):
        fit_predictor(LSTMPredictor.from_options(settings, {**SMALL, "teacher": str(tmp_path / "nowhere")}), texts, labels,
                      settings)
    for weight in (0.0, 1.5):
        with pytest.raises(ConfigError, match="teacher_weight"):
            LSTMPredictor(teacher=str(teacher_dir), teacher_weight=weight)


@pytest.mark.slow
def test_train_keeps_checkpoints_until_the_model_is_saved(prepared):
    """A task killed while saving a finished fit resumes it from the checkpoint instead of training again; the
    checkpoints go once the model is saved."""
    from ml.models.checkpoints import work_dir_option
    from ml.training import train

    options = {**SMALL, "epochs": 2, "patience": 5}
    work = work_dir_option(prepared, "gru", {})

    train_failing_to_save("gru", prepared, **options)
    assert json.loads((work / "last" / "state.json").read_text())["epoch"] == 2       # the finished fit is kept

    earlier = json.loads((work / "last" / "state.json").read_text())["seconds"]
    result = train("gru", prepared, **options)
    assert result["fit"]["resumed_from_epoch"] == 2 and result["fit"]["epochs_run"] == 2
    assert result["train_seconds"] >= earlier > 0                                     # the first attempt's time counts
    assert not work.exists()                                                          # saved: checkpoints go
    assert load_predictor(result["path"]).predict_proba(["I love this"]).shape == (1, 2)

    kept = train("gru", prepared, **options, keep_work_dir=True)                       # asked to keep them
    assert kept["fit"]["resumed_from_epoch"] is None and (work / "last" / "state.json").is_file()
    shorter = train("gru", prepared, **{**options, "epochs": 1})                      # fewer epochs than it holds:
    assert shorter["fit"]["resumed_from_epoch"] is None and shorter["fit"]["epochs_run"] == 1  # not resumed


def test_a_refit_measures_its_own_length(settings):
    from ml.models.rnn.predictor import GRUPredictor

    short = ["good", "bad"] * 20
    long = [" ".join(["good"] * 30), " ".join(["bad"] * 30)] * 20
    labels = ["positive", "negative"] * 20
    predictor = GRUPredictor.from_options(settings, {**SMALL, "epochs": 1})
    assert predictor.fit(short, labels)["max_length"] == 1
    assert predictor.fit(long, labels)["max_length"] == 30                   # not the first fit's 1
    fixed = GRUPredictor.from_options(settings, {**SMALL, "epochs": 1, "max_length": 5})
    assert fixed.fit(long, labels)["max_length"] == 5                        # a set length stays


@pytest.mark.slow
def test_early_stopping_ends_the_fit_and_keeps_the_best_epoch(settings, tmp_path):
    """Validation labels that contradict the training labels: validation loss rises after epoch 1, the fit stops
    after ``patience`` more epochs and predicts with epoch 1's weights (those of a 1-epoch fit)."""
    from ml.models.rnn.predictor import GRUPredictor

    texts, labels = dataset(224, {"positive": POSITIVE, "negative": NEGATIVE}, seed=7)
    flipped = ["negative" if v == "positive" else "positive" for v in labels[192:]]
    options = {**SMALL, "patience": 2}
    stopped = GRUPredictor.from_options(settings, {**options, "epochs": 20})
    facts = stopped.fit(texts[:192], labels[:192], val_texts=texts[192:], val_labels=flipped)
    val_loss = facts["history"]["val_loss"]
    assert facts["best_epoch"] == 1 and min(val_loss) == val_loss[0], val_loss
    assert facts["epochs_run"] == 3                                    # epoch 1, then 2 without improvement
    one_epoch = GRUPredictor.from_options(settings, {**options, "epochs": 1})
    one_epoch.fit(texts[:192], labels[:192], val_texts=texts[192:], val_labels=flipped)
    probe = texts[192:]
    np.testing.assert_allclose(stopped.predict_proba(probe), one_epoch.predict_proba(probe), atol=1e-5)


@pytest.mark.slow
def test_init_from_a_binary_gru_keeps_vocabulary_embedding_and_recurrent_layers(settings, tmp_path):
    """--init-from for GRU: the source's vocabulary and weights, a new three-class output layer."""
    from ml.errors import ConfigError
    from ml.models.rnn.predictor import GRUPredictor
    from ml.training import resolve_init_from

    texts, labels = dataset(120, {"positive": POSITIVE, "negative": NEGATIVE})
    source = GRUPredictor.from_options(settings, {**SMALL, "epochs": 1})
    source.fit(texts, labels)
    source.save(tmp_path / "gru2", extra_meta={"name": "gru2"})

    texts3, labels3 = dataset(60, {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}, seed=4)
    student = GRUPredictor.from_options(settings, {"epochs": 1, "learning_rate": 0.0, "batch_size": 32,
                                                   "init_from": str(tmp_path / "gru2")})
    facts = student.fit(texts3 + ["brand new words only here"], labels3 + ["neutral"])
    assert (student.embedding_dim, student.units) == (16, 8)                     # the source's sizes
    assert facts["init_from"]["new_head"] is True
    assert set(facts["init_from"]["copied"]) == {"embedding", "bi_gru_1", "bi_gru_2", "gru_top"}
    assert student.model.get_layer("tokens").vocabulary == source.model.get_layer("tokens").vocabulary
    mine, theirs = student.model.get_layer("gru_core"), source.model.get_layer("gru_core")
    for name in facts["init_from"]["copied"]:
        for a, b in zip(mine.get_layer(name).get_weights(), theirs.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    assert mine.get_layer("proba").get_weights()[0].shape == (8, 3)
    with pytest.raises(ConfigError, match="is a gru model; a lstm starts from a saved lstm model"):
        resolve_init_from("lstm", str(tmp_path / "gru2"), settings)
    with pytest.raises(ConfigError, match="--init-from applies to gru, lstm and the transformers, not to logreg"):
        resolve_init_from("logreg", str(tmp_path / "gru2"), settings)
