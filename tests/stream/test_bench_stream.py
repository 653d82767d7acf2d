"""``bench/stream.py --quick`` runs end to end: the pipeline and the write-up's baseline, exactly once each."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT
from fixtures import make_head_tail, make_s140_zip

pytestmark = [pytest.mark.slow, pytest.mark.stream]


def test_bench_stream_quick(tmp_path):
    data = tmp_path / "data"
    make_head_tail(data, per_class=1500)
    make_s140_zip(data / "sentiment140" / "trainingandtestdata-sample.zip", n_train=400)
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "stream.py"), "--data", str(data), "--quick",
                           "--home", str(tmp_path / "home")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    pipeline = next(r for r in rows if r.get("mode") == "pipeline")
    base = next(r for r in rows if r.get("mode") == "baseline")
    summary = next(r for r in rows if r.get("summary"))
    assert pipeline["tweets"] == 300 and pipeline["missing"] == 0 and pipeline["duplicated"] == 0
    assert pipeline["latency_p95_ms"] >= pipeline["latency_p50_ms"] > 0
    assert base["tweets"] == 30 and base["missing"] == 0 and base["duplicated"] == 0
    assert summary["speedup_vs_baseline"] > 0 and "ge_20x_baseline_exactly_once" in summary["goals"]
    assert next(r for r in rows if r.get("step") == "job-exit")["exit_code"] == 0
