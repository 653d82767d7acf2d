"""The transformer family: batching, offline model resolution, fine-tuning, resume, 3 classes, save/load.

Nothing here touches the network: the Hub is switched off (HF_HUB_OFFLINE=1 in conftest) and the training tests
also block sockets. Training uses the all-MiniLM-L6-v2 checkpoint shipped in site-packages or a tiny randomly
initialised BERT written to a temporary directory.
"""

from __future__ import annotations

import json
import os
import random
import socket
from pathlib import Path

import numpy as np
import pytest
from fixtures import NEGATIVE, NEUTRAL, POSITIVE, train_failing_to_save, tweet

from ml.errors import ModelError
from ml.lengths import coverage_of, covering_length
from ml.predictor import BINARY_LABELS, TERNARY_LABELS, load_predictor
from ml.text import clean

pytest.importorskip("torch")
pytest.importorskip("transformers")

PROBE_POS = ["I love this so much", "what a great day", "so happy right now!!"]
PROBE_NEG = ["I hate this so much", "what a terrible day", "so sad right now"]


def dataset(n: int, pools: dict[str, list[str]], seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    names = list(pools)
    labels = [names[i % len(names)] for i in range(n)]
    return [tweet(rng, pools[label]) for label in labels], labels


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] or kwargs}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch):
    """Offline, with an empty Hugging Face cache (huggingface_hub reads its variables once, at import: the
    constants are patched too, so a model cached on the test machine cannot make these tests pass or fail)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 2-layer, 32-wide BERT with random weights and the MiniLM (bert-base-uncased) tokenizer, saved locally."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from ml.models.transformer.hub import minilm_dir

    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_roberta(tmp_path_factory):
    """A 2-layer RoBERTa with random weights and a byte-level BPE tokenizer trained here on the fixture phrases:
    RoBERTa's own layout (``<s>`` 0, ``<pad>`` 1, ``</s>`` 2; positions offset past the padding id), offline."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

    path = tmp_path_factory.mktemp("tiny-roberta")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(POSITIVE + NEGATIVE + NEUTRAL, vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(path))
    tokenizer = RobertaTokenizer(vocab=str(path / "vocab.json"), merges=str(path / "merges.txt"))
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=130, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2)
    RobertaModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# ------------------------------------------------------------------------------------------------ fast tests
def test_encode_ids_equals_the_tokenizer_call_and_leaves_its_settings_alone():
    """The direct backend call gives the wrapper's ids; the backend's padding/truncation survive; slow fallback."""
    from transformers import AutoTokenizer

    from ml.models.transformer.batching import encode_ids
    from ml.models.transformer.hub import minilm_dir

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)
    texts = [clean(t) for t in [tweet(random.Random(i), POSITIVE + NEGATIVE + NEUTRAL) for i in range(60)]]
    texts += ["", "a", "supercalifragilisticexpialidocious " * 20, "caf\u00e9 na\u00efve \u00fcber"]
    backend = tokenizer.backend_tokenizer
    backend.enable_padding(length=77, pad_id=0, pad_token="[PAD]")
    backend.enable_truncation(99)
    before = (backend.padding, backend.truncation)
    for max_length in (3, 8, 40, 128):
        expected = [list(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
        backend.enable_padding(length=77, pad_id=0, pad_token="[PAD]")  # the wrapper call resets both settings
        backend.enable_truncation(99)
        assert encode_ids(tokenizer, texts, max_length) == expected, max_length
        assert (backend.padding, backend.truncation) == before
    assert max(len(ids) for ids in encode_ids(tokenizer, texts, 8)) == 8

    class Slow:  # a tokenizer without a Rust backend goes through its own __call__
        is_fast = False

        def __call__(self, texts, **kwargs):
            return tokenizer(texts, **kwargs)

    assert encode_ids(Slow(), texts, 16) == encode_ids(tokenizer, texts, 16)
    assert encode_ids(tokenizer, [], 16) == [] == encode_ids(Slow(), [], 16)


def test_covering_length_covers_99_percent():
    lengths = [10] * 980 + [20] * 15 + [90] * 5
    assert covering_length(lengths) == 20
    assert coverage_of(lengths, 20) >= 0.99 and coverage_of(lengths, 19) < 0.99
    assert covering_length(lengths, multiple=8) == 24
    assert covering_length([500] * 100, cap=128) == 128
    assert covering_length([]) == 1


def test_length_grouped_batches_cover_every_index_once_and_group_lengths():
    from ml.models.transformer.batching import length_grouped_batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 60, size=1_000)
    batches = length_grouped_batches(lengths, 32, seed=1, epoch=0, group=10)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1_000))
    assert max(len(b) for b in batches) == 32
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    random_spread = np.mean([np.ptp(lengths[b]) for b in np.array_split(rng.permutation(1_000), 32)])
    assert spread < random_spread / 4                      # grouped: far less padding than random batches

    again = length_grouped_batches(lengths, 32, seed=1, epoch=0, group=10)
    assert all((a == b).all() for a, b in zip(batches, again, strict=True))           # seeded
    other = length_grouped_batches(lengths, 32, seed=1, epoch=1, group=10)
    assert not all(len(a) == len(b) and (a == b).all() for a, b in zip(batches, other, strict=True))

    ordered = np.concatenate(length_grouped_batches(lengths, 100, shuffle=False))
    assert (np.diff(lengths[ordered]) >= 0).all()


def test_make_batch_pads_to_a_multiple_of_8():
    from ml.models.transformer.batching import make_batch

    seqs = [[101, 5, 102], [101, 5, 6, 7, 8, 9, 10, 11, 12, 102], [101, 102]]
    ids, mask, y = make_batch(seqs, [0, 1, 2], pad_id=0, labels=[1, 0, 1])
    assert ids.shape == mask.shape == (3, 16)
    assert mask.sum(axis=1).tolist() == [3, 10, 2]
    assert ids[0, :3].tolist() == [101, 5, 102] and (ids[0, 3:] == 0).all()
    assert y.tolist() == [1, 0, 1]


def test_truncating_the_long_encoding_equals_encoding_short():
    """fit tokenizes once at the cap and cuts to the measured length: exactly what a second encoding gives."""
    from transformers import AutoTokenizer

    from ml.models.transformer.hub import minilm_dir
    from ml.models.transformer.predictor import MiniLMPredictor
    from ml.text import clean

    predictor = MiniLMPredictor()
    predictor.tokenizer = AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)
    texts = [clean(t) for t in [tweet(random.Random(i), POSITIVE + NEGATIVE) for i in range(50)]]
    texts += ["", "a", "supercalifragilisticexpialidocious " * 20]
    long = predictor._encode(texts, 128)
    for max_length in (2, 3, 8, 16):
        assert predictor._truncate(long, texts, max_length) == predictor._encode(texts, max_length), max_length
    assert predictor._truncate(long, texts, 128) is long


def test_families_defaults_and_options(settings):
    from ml.models.transformer.hub import minilm_dir
    from ml.models.transformer.predictor import BertPredictor, MiniLMPredictor, RobertaPredictor
    from ml.predictor import family_class

    assert family_class("minilm") is MiniLMPredictor
    minilm = MiniLMPredictor.from_options(settings, {"epochs": 1, "batch_size": 8, "max_length": 40, "junk": 1})
    assert minilm.model_name == str(minilm_dir()) and (minilm_dir() / "config.json").is_file()
    assert (minilm.config.epochs, minilm.config.batch_size, minilm.config.max_length) == (1, 8, 40)
    bert = BertPredictor.from_options(settings, {})
    assert bert.model_name == "bert-base-uncased"
    assert (bert.config.learning_rate, bert.config.epochs, bert.config.seed) == (1e-5, 2, settings.data.seed)
    assert RobertaPredictor.from_options(settings, {}).model_name == "roberta-base"
    assert RobertaPredictor.from_options(settings, {}).config.learning_rate == 1e-5      # the write-up's recipe
    assert minilm.config.learning_rate == MiniLMPredictor().config.learning_rate == 5e-5   # the small model's
    assert MiniLMPredictor.from_options(settings, {"learning_rate": 2e-5}).config.learning_rate == 2e-5
    assert BertPredictor.from_options(settings, {"model_name": "/some/dir"}).model_name == "/some/dir"
    assert BertPredictor.from_options(settings, {"compile_scope": "model"}).config.compile_scope == "model"
    with pytest.raises(ModelError, match="compile_scope must be one of auto, layers, model"):
        BertPredictor.from_options(settings, {"compile_scope": "everything"})


def test_auto_compile_scope_compiles_by_layers_for_short_runs_only():
    from ml.models.transformer.compilation import AUTO_LAYERS_BELOW, resolve_compile_scope

    assert resolve_compile_scope("auto", AUTO_LAYERS_BELOW - 1) == "layers"
    assert resolve_compile_scope("auto", AUTO_LAYERS_BELOW) == "model"
    assert resolve_compile_scope("auto", 3_200_000) == "model"  # 2 epochs over 1.6M tweets
    assert resolve_compile_scope("layers", 10**9) == "layers" and resolve_compile_scope("model", 1) == "model"
    with pytest.raises(ValueError, match="compile_scope"):
        resolve_compile_scope("everything", 1)


def test_compile_cache_lives_under_the_platform_home(settings, tmp_path, monkeypatch):
    from ml.models.transformer.compilation import use_compile_cache
    from ml.models.transformer.predictor import BertPredictor

    predictor = BertPredictor.from_options(settings, {})
    assert predictor.compile_cache_dir == Path(settings.home) / "cache" / "torchinductor"
    assert BertPredictor.from_options(settings, {"compile_cache_dir": tmp_path}).compile_cache_dir == tmp_path

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "placeholder")  # recorded, so the test's value is undone after
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    assert use_compile_cache(tmp_path / "a") == tmp_path / "a"
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "a") and (tmp_path / "a").is_dir()
    assert use_compile_cache(tmp_path / "b") == tmp_path / "a"  # an explicit (or already used) cache wins


@pytest.mark.slow
def test_compiling_by_layers_compiles_the_block_once_and_keeps_eager_evaluation_exact(tiny_bert, tmp_path,
                                                                                       monkeypatch):
    """Regional compilation (real Inductor, on CPU): every encoder layer runs one compiled graph, batches of new
    lengths do not recompile, and an eager pass through the compiled model equals the uncompiled model's."""
    import torch
    from torch._dynamo.utils import counters
    from transformers import AutoModelForSequenceClassification

    from ml.models.transformer.batching import make_batch
    from ml.models.transformer.compilation import repeated_blocks
    from ml.models.transformer.loop import TrainLoop

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    reference = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    reference.load_state_dict(model.state_dict())
    blocks = repeated_blocks(model)
    assert blocks is model.bert.encoder.layer and len(blocks) == 2
    assert repeated_blocks(torch.nn.Sequential(torch.nn.Linear(2, 2))) is None
    with pytest.raises(ValueError, match="compile_scope"):
        TrainLoop(model, device="cpu", compile=True, compile_scope="everything")

    torch._dynamo.reset()
    counters.clear()
    loop = TrainLoop(model, device="cpu", total_steps=8, lr=1e-3, compile=True, compile_scope="layers")
    assert loop.compile_scope == "layers"
    assert all(getattr(block, "_compiled_call_impl", None) is not None for block in blocks)
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(1000, 2000, size=n)) for n in (3, 7, 12, 20, 30, 5, 16, 9)]
    losses = []
    for width in (4, 8, 4, 8):  # two batch shapes, each twice
        idx = np.array([i for i, s in enumerate(seqs) if (len(s) <= 8) == (width == 4)])
        batch = make_batch(seqs, idx, 0, labels=np.array([i % 2 for i in range(len(seqs))]))
        losses.append(float(loop.train_step([batch])))
    assert all(np.isfinite(losses))
    assert counters["stats"]["unique_graphs"] == 1  # both layers, all lengths: one graph
    assert counters["frames"]["ok"] == 1

    reference.load_state_dict(model.state_dict())
    mine = loop.predict_logits(seqs, pad_id=0, compiled=False)
    theirs = TrainLoop(reference, device="cpu", compile=False).predict_logits(seqs, pad_id=0)
    np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    other = TrainLoop(model, device="cpu", compile=False).predict_logits(seqs, pad_id=0)  # another loop, same model
    np.testing.assert_allclose(other, theirs, rtol=1e-5, atol=1e-6)
    assert counters["stats"]["unique_graphs"] == 1  # the eager passes compiled nothing

    flat = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))  # no repeated block: compiled whole
    assert TrainLoop(flat, device="cpu", compile=True, compile_scope="layers").compile_scope == "model"


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_hub_models_fail_offline_naming_the_offline_choices(family, settings, empty_hf_cache, no_network):
    from ml.predictor import family_class

    predictor = family_class(family).from_options(settings, {})
    with pytest.raises(ModelError) as err:
        predictor.fit(["good", "bad"], ["positive", "negative"])
    message = str(err.value)
    assert predictor.model_name in message and "minilm" in message and "--model-name" in message
    assert "HF_HUB_OFFLINE=0" in message                            # how to download it where there is internet


def test_hub_model_unreachable_says_so(settings, empty_hf_cache, monkeypatch):
    from ml.models.transformer.predictor import BertPredictor

    refused = []

    def unreachable(*args, **kwargs):
        refused.append(args[1:] or kwargs)
        raise ConnectionRefusedError("[Errno 111] Connection refused (test)")

    import huggingface_hub.constants
    import huggingface_hub.utils._http

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")                         # online allowed, but no route to the Hub
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the hub read the variable at import
    monkeypatch.setattr(huggingface_hub.utils._http.time, "sleep", lambda seconds: None)  # its retries' back-off
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1")
    monkeypatch.setattr(socket.socket, "connect", unreachable)
    monkeypatch.setattr(socket, "create_connection", unreachable)
    with pytest.raises(ModelError) as err:
        BertPredictor.from_options(settings, {}).fit(["good", "bad"], ["positive", "negative"])
    message = str(err.value)
    assert "bert-base-uncased" in message and "unreachable" in message and "minilm" in message
    assert "HF_HUB_OFFLINE=0" not in message
    assert refused, "the Hub was never asked: offline mode was still on"


def test_missing_local_directory_is_a_model_error(settings):
    from ml.models.transformer.predictor import BertPredictor

    with pytest.raises(ModelError, match="no such model directory"):
        BertPredictor.from_options(settings, {"model_name": "/no/such/model"}).fit(["a", "b"], ["positive", "negative"])


# ---------------------------------------------------------------------------------------------- training
@pytest.mark.slow
def test_minilm_fine_tunes_offline_and_roundtrips(settings, tmp_path, no_network):
    from ml.models.transformer.predictor import MiniLMPredictor

    texts, labels = dataset(96, {"positive": POSITIVE, "negative": NEGATIVE})
    predictor = MiniLMPredictor.from_options(settings, {"epochs": 3, "batch_size": 16, "learning_rate": 3e-4,
                                                        "eval_every": 4, "progress": False})
    facts = predictor.fit(texts[:64], labels[:64], val_texts=texts[64:], val_labels=labels[64:])

    assert predictor.labels == BINARY_LABELS
    assert facts["steps"] == 12 and facts["max_length"] % 8 == 0
    from ml.lengths import coverage_of

    pieces = [len(ids) for ids in predictor.tokenizer([clean(t) for t in texts[:64]])["input_ids"]]
    n = facts["max_length"]                                         # the shortest multiple of 8 that fits 99%
    assert coverage_of(pieces, n) >= 0.99 > coverage_of(pieces, n - 8), (n, sorted(pieces)[-3:])
    losses = [h["loss"] for h in predictor.metrics["history"] if "loss" in h]
    assert losses[-1] < losses[0], losses
    assert facts["best"]["val_accuracy"] >= 0.75
    assert not predictor.work_dir.exists()                          # checkpoints cleaned up after success

    proba = predictor.predict_proba(PROBE_POS + PROBE_NEG + ["", "@bob http://t.co/x"])
    assert proba.shape == (8, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert proba[:3, 1].min() > proba[3:6, 1].max()                 # learned direction, not a constant
    assert predictor.predict_proba([]).shape == (0, 2)

    path = predictor.save(tmp_path / "minilm")
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "labels.json", "metrics.json",
            "predictor.json"} <= names
    assert json.loads((path / "config.json").read_text())["id2label"] == {"0": "negative", "1": "positive"}
    loaded = load_predictor(path)
    assert loaded.family == "minilm" and loaded.config.max_length == facts["max_length"]
    probe = PROBE_POS + PROBE_NEG + ["", "x" * 500]
    np.testing.assert_allclose(loaded.predict_proba(probe), predictor.predict_proba(probe), rtol=0, atol=1e-6)
    raw = ["@bob I LOVE this!!! http://t.co/x #Happy", "so SAD... www.example.com"]
    np.testing.assert_array_equal(loaded.predict_proba_cleaned([clean(t) for t in raw]), loaded.predict_proba(raw))


@pytest.mark.slow
def test_resume_after_interruption_continues_the_step_count(settings, tmp_path, tiny_bert, no_network, monkeypatch):
    import ml.models.transformer.fit as transformer
    from ml.models.transformer.predictor import BertPredictor

    scopes: list[tuple[str, int]] = []
    resolve = transformer.resolve_compile_scope
    monkeypatch.setattr(transformer, "resolve_compile_scope", lambda scope, n: scopes.append((scope, n)) or resolve(scope, n))

    texts, labels = dataset(64, {"positive": POSITIVE, "negative": NEGATIVE}, seed=2)
    options = {"model_name": str(tiny_bert), "epochs": 2, "batch_size": 8, "learning_rate": 1e-3, "eval_every": 3,
               "save_every": 1, "progress": False}
    data = (texts[:48], labels[:48])
    val = {"val_texts": texts[48:], "val_labels": labels[48:]}

    reference = BertPredictor.from_options(settings, {**options, "work_dir": tmp_path / "ref"})
    reference.fit(*data, **val)
    assert reference.metrics["steps"] == 12 and reference.metrics["resumed_from_step"] is None
    assert scopes == [("auto", 96)]  # 'auto' is resolved on the run's samples: 12 steps x 8
    assert reference.metrics["compiled"] is None  # CPU: eager

    class Interrupt(Exception):
        pass

    def stop_at_5(state):
        if state["step"] == 5:
            raise Interrupt

    first = BertPredictor.from_options(settings, {**options, "work_dir": tmp_path / "work"})
    first.callbacks.append(stop_at_5)
    with pytest.raises(Interrupt):
        first.fit(*data, **val)
    state = json.loads((tmp_path / "work" / "last" / "state.json").read_text())
    assert state["step"] == 5

    seen: list[int] = []
    second = BertPredictor.from_options(settings, {**options, "work_dir": tmp_path / "work"})
    second.callbacks.append(lambda s: seen.append(s["step"]))
    facts = second.fit(*data, **val)
    assert facts["resumed_from_step"] == 5 and facts["steps"] == 12
    assert seen == list(range(6, 13))
    # Same batches, optimizer state and dropout RNG: the resumed run ends where the uninterrupted one did.
    np.testing.assert_allclose(second.predict_proba(texts[48:]), reference.predict_proba(texts[48:]), atol=1e-5)

    # A checkpoint of a different run (other data) is not resumed.
    third = BertPredictor.from_options(settings, {**options, "work_dir": tmp_path / "work", "max_steps": 4,
                                                  "keep_work_dir": True})
    third.callbacks.append(stop_at_5)
    assert third.fit(texts[:40], labels[:40], **val)["resumed_from_step"] is None


@pytest.mark.slow
def test_three_class_head_when_neutral_labels_are_present(settings, tmp_path, tiny_bert, no_network):
    from ml.models.transformer.predictor import BertPredictor

    texts, labels = dataset(120, {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}, seed=3)
    predictor = BertPredictor.from_options(settings, {"model_name": str(tiny_bert), "epochs": 8, "batch_size": 16,
                                                      "learning_rate": 1e-2, "progress": False,
                                                      "work_dir": tmp_path / "w"})
    facts = predictor.fit(texts[:96], labels[:96], val_texts=texts[96:], val_labels=labels[96:])

    assert predictor.labels == TERNARY_LABELS
    assert predictor.model.config.num_labels == 3
    losses = [h["loss"] for h in predictor.metrics["history"] if "loss" in h]
    assert losses[-1] < losses[0] * 0.8, losses
    assert facts["best"]["val_accuracy"] > 0.6                      # chance is 1/3
    proba = predictor.predict_proba(texts[96:])
    assert proba.shape == (24, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    loaded = load_predictor(predictor.save(tmp_path / "bert3"))
    assert loaded.labels == TERNARY_LABELS
    assert json.loads((tmp_path / "bert3" / "labels.json").read_text())["labels"] == list(TERNARY_LABELS)
    np.testing.assert_allclose(loaded.predict_proba(texts[96:]), proba, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_train_command_path_saves_a_loadable_minilm(prepared, no_network):
    from ml.training import train

    result = train("minilm", prepared, max_samples=48, epochs=1, batch_size=16, progress=False, unknown=None)
    loaded = load_predictor(result["path"])
    assert result["family"] == "minilm" and loaded.labels == BINARY_LABELS
    assert result["fit"]["steps"] == 3
    assert loaded.predict_proba(["good day", ""]).shape == (2, 2)


# ------------------------------------------------------------------------------------------ bf16 on a CPU
def test_cpu_bf16_native_reads_the_amx_flag(tmp_path):
    from ml.models.transformer.precision import cpu_bf16_native

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile amx_int8\n\n")
    assert cpu_bf16_native(info) is False                       # AVX-512 bf16 alone is not the matrix units
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n\n")
    assert cpu_bf16_native(info) is True
    assert cpu_bf16_native(tmp_path / "absent") is False        # not Linux: off


def test_inference_bf16_setting(monkeypatch):
    import torch

    from ml.errors import ConfigError
    from ml.models.transformer import precision as transformer
    from ml.settings import get_settings

    cpu = torch.device("cpu")
    assert transformer.inference_bf16(cpu, "off") is False and transformer.inference_bf16(cpu, "on") is True
    monkeypatch.setattr(transformer, "cpu_bf16_native", lambda: True)
    monkeypatch.setattr(transformer, "cpu_bf16_speedup", lambda: 2.2)
    assert transformer.inference_bf16(cpu, "auto") is True
    monkeypatch.setattr(transformer, "cpu_bf16_speedup", lambda: 0.4)    # the flag, but emulated: stays fp32
    assert transformer.inference_bf16(cpu, "auto") is False
    monkeypatch.setattr(transformer, "cpu_bf16_speedup", lambda: 2.2)
    monkeypatch.setattr(transformer, "cpu_bf16_native", lambda: False)
    assert transformer.inference_bf16(cpu, "auto") is False
    assert transformer.inference_bf16(torch.device("cuda"), "off") is None   # a GPU keeps the loop's default
    monkeypatch.delenv("SENTIMENT_CPU_BF16", raising=False)
    assert transformer.inference_bf16(cpu, get_settings().model.cpu_bf16) is False  # default: fp32, as before
    monkeypatch.setenv("SENTIMENT_CPU_BF16", "on")
    assert transformer.inference_bf16(cpu, get_settings().model.cpu_bf16) is True
    with pytest.raises(ConfigError, match="cpu_bf16"):
        get_settings(cpu_bf16="sometimes")
    with pytest.raises(ConfigError, match="cpu_bf16"):
        transformer.inference_bf16(cpu, "sometimes")


def test_cpu_bf16_speedup_is_measured():
    import torch

    from ml.models.transformer.precision import CPU_BF16_MIN_SPEEDUP, cpu_bf16_native, cpu_bf16_speedup

    cpu_bf16_speedup.cache_clear()
    threads = torch.get_num_threads()
    speedup = cpu_bf16_speedup()
    assert speedup > 0 and cpu_bf16_speedup() == speedup       # measured once per process
    assert torch.get_num_threads() == threads                   # the probe's single thread is given back
    print(f"bf16 matmul speedup {speedup:.2f}x (amx_bf16 listed: {cpu_bf16_native()}, "
          f"auto needs {CPU_BF16_MIN_SPEEDUP}x)")                # a figure, not a pass mark: it depends on load


@pytest.mark.slow
def test_cpu_bf16_scoring_follows_the_setting(settings, tmp_path, tiny_bert, no_network, monkeypatch):
    """SENTIMENT_CPU_BF16=on scores a saved model in bf16 autocast: close to fp32, yet not the fp32 numbers; the
    default stays fp32 and reuses the fit's own loop."""
    from ml.models.transformer.predictor import BertPredictor
    from ml.settings import get_settings

    texts, labels = dataset(48, {"positive": POSITIVE, "negative": NEGATIVE}, seed=5)
    predictor = BertPredictor.from_options(settings, {"model_name": str(tiny_bert), "epochs": 1, "batch_size": 16,
                                                      "learning_rate": 1e-2, "progress": False,
                                                      "work_dir": tmp_path / "w"})
    predictor.fit(texts[:32], labels[:32])
    monkeypatch.delenv("SENTIMENT_CPU_BF16", raising=False)
    predictor.cpu_bf16 = get_settings().model.cpu_bf16           # what from_options passes from the settings
    fp32 = predictor.predict_proba(texts)
    assert predictor._scoring_loop() is predictor._loop and not predictor._loop.bf16
    path = predictor.save(tmp_path / "bert")
    np.testing.assert_allclose(load_predictor(path, cpu_bf16=get_settings().model.cpu_bf16).predict_proba(texts), fp32,
                               rtol=0, atol=1e-6)

    monkeypatch.setenv("SENTIMENT_CPU_BF16", "on")
    loaded = load_predictor(path, cpu_bf16=get_settings().model.cpu_bf16)
    bf16 = loaded.predict_proba(texts)
    assert loaded._scoring_loop().bf16 is True
    assert not np.array_equal(bf16, fp32)                            # bf16 arithmetic did run ...
    np.testing.assert_allclose(bf16, fp32, rtol=0, atol=0.02)        # ... and agrees with fp32
    np.testing.assert_allclose(bf16.sum(axis=1), 1.0, rtol=1e-6)
    assert loaded.scoring_precision() == "bf16"
    predictor.cpu_bf16 = get_settings().model.cpu_bf16
    predictor.fit(texts[:32], labels[:32])                 # a refit drops the scorer of the last fit ...
    assert predictor._scoring_loop() is not predictor._loop and predictor.scoring_precision() == "bf16"
    monkeypatch.setenv("SENTIMENT_CPU_BF16", "off")
    predictor.cpu_bf16 = get_settings().model.cpu_bf16
    predictor.fit(texts[:32], labels[:32])                 # ... and scores with the new fit's own loop
    assert predictor._scoring_loop() is predictor._loop and predictor.scoring_precision() == "fp32"

    # bench/cpu_bf16.py compares both precisions on the same model and texts, one JSON line each
    import subprocess
    import sys

    import pandas as pd

    table = tmp_path / "texts.parquet"
    pd.DataFrame({"text": texts, "label": labels}).to_parquet(table)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(root / "bench" / "cpu_bf16.py"), "--model", str(path), "--texts",
                           str(table), "--repeats", "1"], capture_output=True, text=True, timeout=300, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    fp32_line, bf16_line, comparison = [json.loads(line) for line in done.stdout.splitlines()]
    assert (fp32_line["precision"], bf16_line["precision"]) == ("fp32", "bf16")
    assert fp32_line["texts"] == 48 and 0 <= fp32_line["accuracy"] <= 100
    assert 0 < comparison["max_abs_proba_change"] <= 0.02 and comparison["speedup"] > 0


@pytest.mark.slow
def test_train_resumes_a_finished_fit_whose_save_failed(prepared, tiny_bert, no_network):
    """The last step is checkpointed inside a run: a failed save costs no training, and the resumed fit restores
    the same best weights."""
    from ml.models.checkpoints import work_dir_option
    from ml.training import train

    options = {"model_name": str(tiny_bert), "epochs": 1, "batch_size": 32, "learning_rate": 1e-3,
               "progress": False, "eval_every": 4}
    work = work_dir_option(prepared, "bert", {})

    train_failing_to_save("bert", prepared, **options)
    state = json.loads((work / "last" / "state.json").read_text())
    assert state["step"] == 10                                      # 320 training rows / 32: the final step

    result = train("bert", prepared, **options)
    assert result["fit"]["resumed_from_step"] == 10 and result["fit"]["steps"] == 10
    assert result["train_seconds"] >= state["seconds"] > 0          # the first attempt's time counts
    assert result["fit"]["best"] == state["best"]
    assert not work.exists()
    assert load_predictor(result["path"]).predict_proba(["I love this"]).shape == (1, 2)


def test_a_refit_measures_its_own_length(settings, tiny_bert, no_network, tmp_path):
    from ml.models.transformer.predictor import BertPredictor

    labels = ["positive", "negative"] * 8
    options = {"model_name": str(tiny_bert), "epochs": 1, "batch_size": 16, "progress": False,
               "work_dir": tmp_path / "w"}
    predictor = BertPredictor.from_options(settings, options)
    assert predictor.fit(["good", "bad"] * 8, labels)["max_length"] == 8          # 3 pieces, padded to 8
    assert predictor.fit([" ".join(["good"] * 30), "bad"] * 8, labels)["max_length"] == 32


def test_gradient_accumulation_takes_the_step_of_the_whole_batch():
    """Micro-batches of 5 and 11 texts, each padded to its own width, move the weights as one batch of 16 does
    (each text weighs the same: unequal sizes would tell a per-micro-batch mean from the whole batch's)."""
    import copy

    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from ml.models.transformer.batching import make_batch
    from ml.models.transformer.loop import TrainLoop

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, num_labels=2)
    model = BertForSequenceClassification(config)
    rng = np.random.default_rng(0)
    sizes = [*rng.integers(2, 6, size=5), *rng.integers(10, 30, size=11)]  # short then long texts
    seqs = [[2, *rng.integers(5, 100, size=int(n)).tolist(), 3] for n in sizes]
    labels = rng.integers(0, 2, size=16)
    options = {"device": "cpu", "total_steps": 4, "lr": 1e-3, "compile": False}

    def gradients_at_step(loop):  # what the optimizer step receives (compared directly: Adam's first step
        seen = []                   # is about lr * sign(g), which would blow float noise up to lr)
        step = loop.optimizer.step
        loop.optimizer.step = lambda: (seen.extend(p.grad.clone() for p in loop.model.parameters()), step())
        return seen

    accumulated, whole = TrainLoop(copy.deepcopy(model), **options), TrainLoop(copy.deepcopy(model), **options)
    grads_a, grads_w = gradients_at_step(accumulated), gradients_at_step(whole)
    micro = [make_batch(seqs, range(0, 5), 0, labels), make_batch(seqs, range(5, 16), 0, labels)]
    assert micro[0][0].shape[1] != micro[1][0].shape[1]                     # padded to different widths
    loss_a = accumulated.train_step(micro)
    loss_w = whole.train_step([make_batch(seqs, range(16), 0, labels)])
    assert float(loss_a) == pytest.approx(float(loss_w), rel=1e-5)          # the mean over all 16
    assert len(grads_a) == len(grads_w) == len(list(model.parameters()))
    names = [name for name, _ in model.named_parameters()]
    for name, a, b in zip(names, grads_a, grads_w, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4, msg=name)
    assert sum(float(g.abs().sum()) for g in grads_a) > 0
    with torch.no_grad():
        moved = sum(float((a - b).abs().sum()) for a, b in zip(accumulated.model.parameters(), model.parameters(), strict=True))
    assert moved > 0                                                        # and the step changed the weights


@pytest.mark.slow
def test_fit_with_gradient_accumulation(settings, tiny_bert, no_network, tmp_path):
    from ml.models.transformer.predictor import BertPredictor

    texts, labels = dataset(64, {"positive": POSITIVE, "negative": NEGATIVE}, seed=5)
    options = {"model_name": str(tiny_bert), "epochs": 6, "batch_size": 8, "grad_accum": 2, "learning_rate": 1e-2,
               "progress": False, "work_dir": tmp_path / "w"}
    predictor = BertPredictor.from_options(settings, options)
    facts = predictor.fit(texts, labels)
    assert facts["steps_per_epoch"] == 4 and facts["steps"] == 24                # 8 micro-batches -> 4 steps
    losses = [h["loss"] for h in predictor.metrics["history"] if "loss" in h]
    assert losses[-1] < losses[0] * 0.8, losses


@pytest.mark.slow
def test_the_best_evaluated_checkpoint_is_kept(settings, tiny_bert, no_network, tmp_path):
    """Validation labels that contradict the training labels: the best evaluation comes early, and the fitted
    model ends with exactly the weights it had at that step, not the last step's."""
    import torch

    from ml.models.transformer.predictor import BertPredictor

    texts, labels = dataset(80, {"positive": POSITIVE, "negative": NEGATIVE}, seed=9)
    flipped = ["negative" if v == "positive" else "positive" for v in labels[64:]]
    predictor = BertPredictor.from_options(settings, {"model_name": str(tiny_bert), "epochs": 6, "batch_size": 16,
                                                      "learning_rate": 1e-2, "eval_every": 4, "progress": False,
                                                      "work_dir": tmp_path / "w"})
    snapshots = {}

    def snapshot(event):
        if event["evaluated"]:
            snapshots[event["step"]] = {k: v.detach().clone() for k, v in predictor.model.state_dict().items()}

    predictor.callbacks.append(snapshot)
    facts = predictor.fit(texts[:64], labels[:64], val_texts=texts[64:], val_labels=flipped)
    assert sorted(snapshots) == list(range(4, 25, 4)) and facts["steps"] == 24
    best = facts["best"]["step"]
    assert best < 24, facts["best"]
    final = predictor.model.state_dict()
    for name, value in snapshots[best].items():
        torch.testing.assert_close(final[name], value, msg=name)
    assert any(not torch.equal(final[k], v) for k, v in snapshots[24].items())   # not the last step's weights


@pytest.mark.slow
def test_roberta_family_fine_tunes_a_roberta_model(settings, tiny_roberta, no_network, tmp_path):
    """The roberta family on a RoBERTa architecture and tokenizer (pad id 1, <s> ... </s>), not a BERT one."""
    from ml.models.transformer.predictor import RobertaPredictor

    texts, labels = dataset(96, {"positive": POSITIVE, "negative": NEGATIVE}, seed=4)
    predictor = RobertaPredictor.from_options(settings, {"model_name": str(tiny_roberta), "epochs": 6,
                                                         "batch_size": 16, "learning_rate": 1e-2, "eval_every": 4,
                                                         "progress": False, "work_dir": tmp_path / "w"})
    facts = predictor.fit(texts[:64], labels[:64], val_texts=texts[64:], val_labels=labels[64:])
    assert predictor.model.config.model_type == "roberta" and predictor.tokenizer.pad_token_id == 1
    ids = predictor._encode(["i love this"], facts["max_length"])[0]
    assert ids[0] == 0 and ids[-1] == 2                             # <s> ... </s>
    losses = [h["loss"] for h in predictor.metrics["history"] if "loss" in h]
    assert losses[-1] < losses[0] * 0.8, losses
    assert facts["best"]["val_accuracy"] >= 0.75
    probe = PROBE_POS + PROBE_NEG + ["", "x" * 300]
    loaded = load_predictor(predictor.save(tmp_path / "roberta"))
    assert loaded.family == "roberta"
    np.testing.assert_allclose(loaded.predict_proba(probe), predictor.predict_proba(probe), rtol=0, atol=1e-6)
    # Padding is id 1 and masked: a text scores the same alone and padded in a batch beside a long one.
    alone = [predictor.predict_proba([t])[0] for t in PROBE_POS]
    np.testing.assert_allclose(predictor.predict_proba(PROBE_POS + ["so " * 40])[:3], alone, atol=1e-5)


# ------------------------------------------------------------------------------------------ transfer, weights
@pytest.mark.slow
def test_init_from_a_two_class_model_keeps_its_encoder_with_a_new_three_class_head(settings, tmp_path, tiny_bert,
                                                                                     no_network):
    """--init-from: a two-class fine-tuned model's encoder, a new three-class head; the class weights reach the
    torch loss as its weight tensor."""
    import torch

    from ml.models.transformer.predictor import BertPredictor

    options = {"model_name": str(tiny_bert), "batch_size": 8, "progress": False, "learning_rate": 1e-2}
    texts, labels = dataset(32, {"positive": POSITIVE, "negative": NEGATIVE})
    source = BertPredictor.from_options(settings, {**options, "max_steps": 2, "work_dir": tmp_path / "w1"})
    source.fit(texts, labels)
    source.save(tmp_path / "s140", extra_meta={"name": "s140", "dataset": "default"})

    pools = {"positive": POSITIVE, "neutral": NEUTRAL, "negative": NEGATIVE}
    texts3, labels3 = dataset(30, pools, seed=2)
    texts3, labels3 = texts3 + texts3[:12:3] * 3, labels3 + labels3[:12:3] * 3       # more of every third class
    student = BertPredictor.from_options(settings, {**options, "max_steps": 1, "learning_rate": 0.0,
                                                    "init_from": str(tmp_path / "s140"), "class_weight": "balanced",
                                                    "work_dir": tmp_path / "w2"})
    facts = student.fit(texts3, labels3)
    assert facts["init_from"]["new_head"] is True and facts["init_from"]["labels"] == ["negative", "positive"]
    theirs, mine = source.model.state_dict(), student.model.state_dict()
    encoder = [k for k in theirs if not k.startswith("classifier.")]
    assert encoder and all(torch.equal(theirs[k], mine[k]) for k in encoder)     # lr 0: exactly the source's
    assert mine["classifier.weight"].shape == (3, 32) and theirs["classifier.weight"].shape == (2, 32)
    assert student.model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    weights = facts["class_weights"]
    assert weights["neutral"] != weights["positive"]
    torch.testing.assert_close(student._loop.loss_weight, torch.tensor([weights[c] for c in TERNARY_LABELS]))
    assert student.params()["init_from"] == str(tmp_path / "s140")

    # Same classes: the head is kept too (a warm start); another family is refused.
    again = BertPredictor.from_options(settings, {**options, "max_steps": 1, "learning_rate": 0.0,
                                                  "init_from": str(tmp_path / "s140"), "work_dir": tmp_path / "w3"})
    assert again.fit(texts, labels)["init_from"]["new_head"] is False
    torch.testing.assert_close(again.model.state_dict()["classifier.weight"], theirs["classifier.weight"])
    from ml.models.transformer.predictor import MiniLMPredictor

    with pytest.raises(ModelError, match="is a bert model; a minilm starts from a saved minilm model"):
        MiniLMPredictor.from_options(settings, {"init_from": str(tmp_path / "s140")}).fit(texts, labels)
