"""The GPU benchmark scripts run end to end in their CPU smoke modes, so they cannot rot between GPU sessions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str, tmp_path: Path) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_transformer_step_bench_quick(tmp_path):
    lines = run_bench("bench/transformer.py", "--quick", tmp_path=tmp_path)
    phases = [(line["padding"], line["phase"]) for line in lines]
    assert phases == [("fixed", "train"), ("fixed", "inference"), ("dynamic", "train"), ("dynamic", "inference")]
    assert all(line["samples_per_s"] > 0 for line in lines)


@pytest.mark.slow
def test_transformer_fit_bench_quick(tmp_path):
    """A whole fit of a tiny random-weight BERT: steps, evaluations, a loss, and the 1.6M estimate."""
    (line,) = run_bench("bench/transformer_fit.py", "--quick", tmp_path=tmp_path)
    assert line["bench"] == "transformer_fit" and line["n_train"] == 1024
    assert line["steps"] == 16 and line["evaluations"] >= 2            # 1,024 / 64 per step, evaluated twice
    assert line["steady_samples_per_s"] > 0 and line["estimate_minutes_1_6m"] > 0
    assert line["first_loss"] is not None and line["best_val_accuracy"] is not None
    assert not any(tmp_path.glob("transformer-fit-*")), "the temporary model directory is removed"


@pytest.mark.slow
def test_transformer_fit_bench_stopped_by_sigterm_prints_what_it_measured(tmp_path):
    """``timeout`` stops a long run: the line still comes, marked incomplete, with the steady rate so far."""
    import signal
    import time

    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "bench/transformer_fit.py", "--from-config", "tiny", "--device", "cpu",
                             "--train-samples", "100000", "--epochs", "1", "--batch-size", "64",
                             "--progress-every", "1"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline, progress = time.monotonic() + 300, 0
        for line in proc.stderr:  # two progress lines a second apart: the fit has taken steps
            progress += line.startswith("step ")
            if progress == 2 or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    (line,) = [json.loads(row) for row in out.splitlines() if row.startswith("{")]
    assert line["completed"] is False and line["stopped_by"] == "SIGTERM"
    assert 1 < line["steps"] < 100_000 // 64 and line["steady_samples_per_s"] > 0
    assert line["estimate_minutes_1_6m"] > 0


@pytest.mark.slow
def test_gpu_session_script_rehearses_on_a_cpu(tmp_path):
    """bench/gpu_session.sh with SMOKE=1: every step runs (tiny model, CPU), its lines land in $OUT/results.jsonl,
    and a step that overruns its limit is reported and fails the script without stopping the next step."""
    from fixtures import make_head_tail

    data = tmp_path / "data"
    make_head_tail(data, per_class=6_000)  # the fit benchmark holds out 5,000 tweets first
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp_path), "SMOKE": "1",
           "DATA": str(data), "PYTHON": sys.executable}

    def session(out: Path, **extra: str) -> tuple[int, list[dict]]:
        out.mkdir()
        done = subprocess.run(["bash", "bench/gpu_session.sh"], cwd=ROOT, env={**env, "OUT": str(out), **extra},
                              capture_output=True, text=True, timeout=900)
        lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()] \
            if (out / "results.jsonl").is_file() else []
        assert (out / "log").is_file()
        return done.returncode, lines

    code, lines = session(tmp_path / "all", STEPS="fit step compare fit512")
    assert code == 0, lines
    fits = [x for x in lines if x.get("bench") == "transformer_fit"]
    assert [x["tag"].split(",")[0] for x in fits] == ["defaults", "by-layers", "layers-batch512"]
    assert [x["batch_size"] for x in fits] == [64, 64, 512]              # fit512's own batch survives --quick
    assert [x["phase"] for x in lines if x.get("bench") == "transformer"] == ["train", "inference"]
    assert not [x for x in lines if "exit_code" in x]

    code, lines = session(tmp_path / "late", STEPS="fit step", FIT_TIMEOUT="1")
    assert code == 1
    assert {"step": "defaults", "exit_code": 124} in lines                 # the fit ran out of time ...
    assert [x["phase"] for x in lines if x.get("bench") == "transformer"] == ["train", "inference"]  # ... the step ran
