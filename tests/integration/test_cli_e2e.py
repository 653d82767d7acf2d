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
