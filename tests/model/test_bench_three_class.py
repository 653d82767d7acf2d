"""The three-class report and ensemble scripts (``bench/three_class_report.py``, ``bench/three_class_ensembles.py``)
on a run of two three-class LogisticRegressions over a SemEval-like fixture, one of them with tuned priors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fixtures import make_neutral_tsv

ROOT = Path(__file__).resolve().parents[2]


def run_script(args: list[str], home: Path) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SENTIMENT_HOME": str(home), "SENTIMENT_RUN_ID": "default"}
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_report_and_ensembles_score_with_and_without_priors(home, tmp_path, monkeypatch):
    from ml.data import prepare
    from ml.evaluate import evaluate
    from ml.settings import get_settings
    from ml.training import train

    neutral = get_settings(dataset="neutral")
    prepare(neutral, make_neutral_tsv(tmp_path / "semeval.tsv", n=400))
    trained = train("logreg", neutral, class_weight="none", name="lr-a")
    monkeypatch.setenv("SENTIMENT_CLASS_PRIORS", "none")
    train("logreg", get_settings(dataset="neutral"), name="lr-b")
    evaluate(neutral)

    report = {line["model"]: line for line in run_script(
        ["bench/three_class_report.py", str(neutral.reports_dir / "leaderboard.json")], home)}
    assert set(report) == {"lr-a", "lr-b"} and report["lr-b"]["class_priors"] is None
    assert "own_test_macro_recall" not in report["lr-b"]
    if trained["fit"]["class_priors"]:                    # scored both ways only when it has priors
        assert 0 <= report["lr-a"]["own_test_macro_recall"] <= 100
    for line in report.values():
        assert line["n_test"] > 0 and 0 <= line["test_macro_recall"] <= 100 and set(line["test_recall"]) == {
            "negative", "neutral", "positive"}

    lines = run_script(["bench/three_class_ensembles.py", "lr-a", "lr-b"], home)
    assert [(line["models"], line["probabilities"]) for line in lines] == [
        (["lr-a"], "own"), (["lr-a"], "tuned priors"), (["lr-b"], "own"), (["lr-b"], "tuned priors"),
        (["lr-a", "lr-b"], "own"), (["lr-a", "lr-b"], "tuned priors")]
    for own, tuned in zip(lines[::2], lines[1::2], strict=True):   # tuned on validation: never worse there
        assert tuned["val_macro_recall"] >= own["val_macro_recall"]
