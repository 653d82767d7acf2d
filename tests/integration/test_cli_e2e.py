"""The command line end to end, as a user runs it: download (file://) -> prepare -> train -> evaluate."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run_ml(args, home, check=True, **env):
    proc = subprocess.run(
        [sys.executable, "-m", "ml", *args],
        env={**os.environ, "SENTIMENT_HOME": str(home), **env},
        capture_output=True, text=True, timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"ml {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.mark.slow
def test_end_to_end(tmp_path, s140_zip):
    home = tmp_path / "home"
    out = json.loads(run_ml(["data", "download", "--url", s140_zip.as_uri(), "--no-progress"], home).stdout)
    assert out["archive"].endswith("trainingandtestdata.zip")
    prep = json.loads(run_ml(["data", "prepare"], home, SENTIMENT140_URL=s140_zip.as_uri()).stdout)
    assert prep["rows"] == {"train": 320, "validation": 80, "test": 60}
    for family in ("logreg", "linearsvc", "multinomialnb"):
        result = json.loads(run_ml(["train", family, "--max-samples", "200"], home).stdout)
        assert result["n_train"] == 200 and (home / "models" / "default" / family / "predictor.json").exists()
    report = json.loads(run_ml(["evaluate"], home).stdout)
    assert {m["model"] for m in report["models"]} == {"logreg", "linearsvc", "multinomialnb"}
    board = json.loads((home / "reports" / "default" / "leaderboard.json").read_text())
    assert all(row["test_accuracy"] > 0.6 for row in board)


def test_failures_are_one_line_and_nonzero(tmp_path):
    home = tmp_path / "home"
    proc = run_ml(["data", "prepare"], home, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: no input at") and len(proc.stderr.strip().splitlines()) == 1
    proc = run_ml(["train", "nope"], home, check=False)
    assert proc.returncode == 1 and "unknown family 'nope'" in proc.stderr
    proc = run_ml(["train", "logreg", "--teacher", "minilm"], home, check=False)
    assert proc.returncode == 1 and "applies to gru and lstm" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_ml(["train", "gru", "--teacher", "minilm"], home, check=False)
    assert proc.returncode == 1 and "teacher 'minilm': not a saved model" in proc.stderr
    proc = run_ml(["evaluate"], home, check=False, SENTIMENT_SEED="x")
    assert proc.returncode == 1 and "seed" in proc.stderr and "Traceback" not in proc.stderr


def test_help_texts():
    for args in (["--help"], ["data", "download", "--help"], ["data", "prepare", "--help"], ["train", "--help"],
                 ["evaluate", "--help"]):
        proc = subprocess.run([sys.executable, "-m", "ml", *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "Usage" in proc.stdout


def test_prepare_reads_the_archive_download_just_verified_whatever_its_name(tmp_path, s140_zip):
    """The README's order, as a new user runs it: download any archive, then prepare with no other setting."""
    import shutil

    sample = shutil.copy(s140_zip, tmp_path / "trainingandtestdata-sample.zip")
    home = tmp_path / "home"
    out = json.loads(run_ml(["data", "download", "--url", f"file://{sample}", "--no-progress"], home).stdout)
    assert out["archive"].endswith("trainingandtestdata-sample.zip")
    prep = json.loads(run_ml(["data", "prepare"], home).stdout)
    assert prep["rows"] == {"train": 320, "validation": 80, "test": 60}
    manifest = json.loads((home / "data" / "processed" / "default" / "manifest.json").read_text())
    assert manifest["source"]["name"] == "trainingandtestdata-sample.zip"


def test_config_lists_every_setting_with_its_source(tmp_path):
    proc = run_ml(["config", "--json"], tmp_path / "home", SENTIMENT_SEED="7", SENTIMENT_API_KEY="s3cret-key")
    rows = {row["env"]: row for row in json.loads(proc.stdout)}
    assert rows["SENTIMENT_SEED"]["value"] == 7 and rows["SENTIMENT_SEED"]["source"] == "env SENTIMENT_SEED"
    assert rows["SENTIMENT_VAL_FRACTION"]["source"] == "default" and rows["SENTIMENT_VAL_FRACTION"]["help"]
    assert rows["SENTIMENT_API_KEY"]["value"] == "********" and "s3cret-key" not in proc.stdout
    assert rows["SENTIMENT_HOME"]["value"] == str((tmp_path / "home").resolve())
