"""``bench/neural.py`` end to end on a tiny folder laid out like ``../shared/data`` (fresh clones have no data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures import make_head_tail, make_s140_zip

ROOT = Path(__file__).resolve().parents[2]


def data_folder(root: Path) -> Path:
    make_head_tail(root, per_class=200)
    make_s140_zip(root / "sentiment140" / "trainingandtestdata-sample.zip", n_train=120)
    return root


@pytest.mark.slow
def test_neural_bench_distils_the_rnn_from_the_minilm_it_fine_tunes(tmp_path):
    data = data_folder(tmp_path / "data")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "bench/neural.py", "--data", str(data), "--models", "logreg,gru,lstm,minilm", "--subset", "300",
         "--minilm-subset", "80", "--rnn-epochs", "1", "--rnn-teacher", "minilm", "--minilm-lr", "1e-4"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    names = [line.get("model", line.get("summary")) for line in lines]
    assert names == ["minilm", "logreg", "gru", "lstm", "neural vs logreg"]    # the teacher trains first
    minilm, logreg, gru, lstm, summary = lines
    assert all(0.0 <= line["accuracy"] <= 1.0 and line["n_test"] == 120 for line in (minilm, logreg, gru, lstm))
    teacher = gru["fit"]["teacher"]
    assert teacher["family"] == "minilm" and teacher["weight"] == 1.0 and teacher["reused"] is False
    assert gru["options"]["teacher"] == teacher["path"]
    assert lstm["fit"]["teacher"]["reused"] is True                             # one teacher pass for both
    assert set(summary["beats_logreg"]) == {"minilm", "gru", "lstm"}
    assert not any(tmp_path.glob("neural-teacher-*")), "the teacher's temporary folder is removed"
