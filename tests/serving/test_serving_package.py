"""Packaging: champion choice, the model store entry (labels, metadata, latest), errors, the CLI command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import copy_home
from typer.testing import CliRunner

from ml.champion import select_champion
from ml.errors import ConfigError, ModelError
from serving.package import _parse_tag, model_store, package_model


def row(model, family, accuracy, f1=0.5, **extra):
    return {"model": model, "family": family, "accuracy": accuracy, "f1": f1, "roc_auc": 0.8,
            "test_accuracy": accuracy, "test3_macro_f1": 0.5, "train_seconds": 1.0, "n_train": 100, **extra}


# ----------------------------------------------------------------------------------------- select_champion
def test_champion_prefers_a_transformer_over_a_better_classical_model():
    board = [row("logreg", "logreg", 0.80), row("minilm", "minilm", 0.78), row("bert", "bert", 0.79),
             row("gru", "gru", 0.81)]
    assert select_champion(board)["model"] == "bert"


def test_champion_without_transformers_is_the_best_overall():
    board = [row("logreg", "logreg", 0.78), row("gru", "gru", 0.81), row("nb", "multinomialnb", 0.76)]
    assert select_champion(board)["model"] == "gru"


def test_champion_ties_go_to_f1_then_to_the_first_row():
    assert select_champion([row("a", "roberta", 0.8, f1=0.7), row("b", "roberta", 0.8, f1=0.9)])["model"] == "b"
    assert select_champion([row("a", "roberta", 0.8), row("b", "roberta", 0.8)])["model"] == "a"


def test_champion_ignores_rows_without_accuracy():
    board = [row("bert", "bert", math.nan), row("minilm", "minilm", None), row("logreg", "logreg", 0.7)]
    assert select_champion(board)["model"] == "logreg"
    with pytest.raises(ModelError, match="no model with a validation accuracy"):
        select_champion([row("bert", "bert", None)])
    with pytest.raises(ModelError):
        select_champion([])


THREE = ["negative", "neutral", "positive"]


def test_champion_rule_three_class_prefers_the_best_macro_recall_of_the_three_class_models():
    board = [row("minilm", "minilm", 0.90, labels=["negative", "positive"]),          # binary, Sentiment140
             row("minilm-neutral", "minilm", 0.70, labels=THREE, macro_recall=0.66),
             row("logreg-neutral", "logreg", 0.72, labels=THREE, macro_recall=0.61),
             row("gru-neutral", "gru", 0.65, labels=THREE, macro_recall=0.68)]
    assert select_champion(board)["model"] == "gru-neutral"                         # the default rule
    assert select_champion(board, "three-class")["model"] == "gru-neutral"
    assert select_champion(board, "transformer")["model"] == "minilm"
    assert select_champion(board, "accuracy")["model"] == "minilm"
    binary_only = [r for r in board if "neutral" not in r["labels"]] + [row("lr", "logreg", 0.95)]
    assert select_champion(binary_only, "three-class")["model"] == "minilm"         # no three-class model: as before
    tie = [row("a", "logreg", 0.6, labels=THREE, macro_recall=0.7), row("b", "logreg", 0.7, labels=THREE, macro_recall=0.7)]
    assert select_champion(tie)["model"] == "b"                                     # equal recall: accuracy decides
    with pytest.raises(ConfigError, match="champion rule must be one of"):
        select_champion(board, "newest")


def test_the_champion_rule_is_a_setting(monkeypatch, home):
    """SENTIMENT_CHAMPION_RULE sets the rule packaging and the DAG apply; an unknown rule fails at start."""
    from ml.settings import get_settings

    monkeypatch.setenv("SENTIMENT_CHAMPION_RULE", "accuracy")
    assert get_settings().training.champion_rule == "accuracy"
    monkeypatch.setenv("SENTIMENT_CHAMPION_RULE", "best")
    with pytest.raises(ConfigError, match="SENTIMENT_CHAMPION_RULE"):
        get_settings()


# ----------------------------------------------------------------------------------------- package_model
@pytest.fixture
def trained(trained_home, home, settings):
    """``settings`` whose artifacts root holds the trained logreg (and whose model store is empty)."""
    copy_home(trained_home, home)
    return settings


def write_board(settings, rows):
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    (settings.reports_dir / "leaderboard.json").write_text(json.dumps(rows))


def test_package_by_name_stores_labels_metadata_and_latest(trained):
    write_board(trained, [row("logreg", "logreg", 0.9)])
    info = package_model(trained, "logreg")
    assert info["tag"].startswith("tweet-sentiment:") and info["family"] == "logreg"
    stored = model_store(trained).get("tweet-sentiment:latest")
    assert str(stored.tag) == info["tag"]
    assert stored.path.startswith(str(trained.bentoml_home))
    manifest = json.loads((trained.processed_dir / "manifest.json").read_text())
    assert stored.info.labels == {"family": "logreg", "run_id": "default", "model": "logreg",
                                  "data_version": manifest["data_version"]}
    meta = stored.info.metadata
    assert meta["family"] == "logreg" and meta["run_id"] == "default"
    assert meta["data_version"] == manifest["data_version"]
    assert meta["metrics"]["accuracy"] == 0.9 and meta["metrics"]["test3_macro_f1"] == 0.5
    assert meta["neutral_band"] == [0.4, 0.6]
    assert meta["labels"] == ["negative", "positive"]
    assert meta["label_map"] == {"0": "negative", "1": "positive"}
    assert (trained.bentoml_home / "models" / "tweet-sentiment").is_dir()
    assert {p.name for p in (trained.models_dir / "logreg").iterdir()} <= {p.name for p in Path(stored.path).iterdir()}


def test_package_again_moves_latest_and_keeps_the_band_setting(trained_home, home, monkeypatch):
    from ml.settings import get_settings

    copy_home(trained_home, home)
    first = package_model(get_settings(), "logreg")
    monkeypatch.setenv("SENTIMENT_NEUTRAL_LOW", "0.3")
    monkeypatch.setenv("SENTIMENT_NEUTRAL_HIGH", "0.7")
    settings = get_settings()
    second = package_model(settings, "logreg")
    assert first["tag"] != second["tag"]
    store = model_store(settings)
    assert str(store.get("tweet-sentiment:latest").tag) == second["tag"]
    assert store.get(second["tag"]).info.metadata["neutral_band"] == [0.3, 0.7]
    assert len(store.list("tweet-sentiment")) == 2


def test_default_choice_needs_a_leaderboard(trained):
    with pytest.raises(ModelError, match="python -m ml evaluate"):
        package_model(trained)


def test_default_choice_takes_the_champion_among_trained_models(trained):
    from ml.training import train

    train("multinomialnb", trained, name="nb")
    # "bert" is on the board but not on disk: it is skipped, so the best trained model wins.
    board = [row("bert", "bert", 0.95), row("logreg", "logreg", 0.70),
             row("nb", "multinomialnb", 0.75, roc_auc=None, test3_macro_f1=float("nan"))]
    write_board(trained, board)
    info = package_model(trained)
    assert (info["model"], info["family"]) == ("nb", "multinomialnb")
    assert info["metrics"]["accuracy"] == 0.75
    assert "roc_auc" not in info["metrics"] and "test3_macro_f1" not in info["metrics"]  # BentoML takes no None


def test_model_may_be_a_family_name(trained):
    from ml.training import train

    train("multinomialnb", trained, name="nb-small")
    info = package_model(trained, "multinomialnb")
    assert (info["model"], info["family"]) == ("nb-small", "multinomialnb")
    assert info["metrics"] == {}


def test_unknown_model_and_empty_run_are_errors(trained):
    with pytest.raises(ModelError, match="no trained model or family named 'bert'.*trained: logreg"):
        package_model(trained, "bert")
    with pytest.raises(ModelError, match="no trained models"):
        package_model(trained, "logreg", run_id="empty-run")


def test_run_id_selects_the_run(trained):
    from ml.settings import get_settings
    from ml.training import train

    other = get_settings(run_id="exp2")
    train("multinomialnb", other)
    info = package_model(trained, "multinomialnb", run_id="exp2")
    assert info["run_id"] == "exp2" and info["family"] == "multinomialnb"


def test_a_copy_that_does_not_load_is_removed(trained):
    (trained.models_dir / "logreg" / "model.joblib").write_bytes(b"not a joblib file")
    with pytest.raises(ModelError, match="does not load"):
        package_model(trained, "logreg")
    assert model_store(trained).list() == []


def test_cli_package_prints_the_result(trained):
    from serving.cli import app

    result = CliRunner().invoke(app, ["package", "--model", "logreg"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["tag"].startswith("tweet-sentiment:") and out["model"] == "logreg"
    assert str(model_store(trained).get("tweet-sentiment:latest").tag) == out["tag"]


def test_parse_build_tag():
    assert _parse_tag("noise\n__tag__:tweet-sentiment:abc123\n") == "tweet-sentiment:abc123"
    with pytest.raises(ModelError):
        _parse_tag("Successfully built")
