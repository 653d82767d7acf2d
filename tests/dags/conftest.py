"""Fixtures of the DAG tests: a migrated Airflow home per session and a tiny transformer."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# Importing Airflow in this process (hooks, sensors) must not create ~/airflow: give it a throw-away home.
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME = tempfile.mkdtemp(prefix="airflow-tests-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
atexit.register(shutil.rmtree, _AIRFLOW_HOME, True)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from airflow_harness import PLUGINS, airflow_env, migrate  # noqa: E402

if str(PLUGINS) not in sys.path:
    sys.path.append(str(PLUGINS))  # what Airflow does for every component


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> Path:
    """An Airflow home whose SQLite metadata DB is migrated once for the session."""
    home = tmp_path_factory.mktemp("airflow")
    migrate(airflow_env(home / "unused", home))
    return home


@pytest.fixture(scope="session")
def tiny_transformer(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT (about 1M parameters) with the MiniLM tokenizer, saved locally."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from ml.models.transformer.hub import minilm_dir

    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)
    config = transformers.BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    transformers.BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
