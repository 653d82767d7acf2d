"""The job's command line and ``python -m spark_apps.stream``, without Spark."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **(env or {})})


def test_help_names_every_option_and_its_setting(tmp_path):
    done = run(str(ROOT / "spark_apps/stream/job.py"), "--help", env={"SENTIMENT_HOME": str(tmp_path),
                                                                      "SENTIMENT_TRIGGER_SECONDS": "2.5"})
    assert done.returncode == 0
    for option in ("--available-now", "--input", "--scorer", "--score-chunk", "--dedup-window-hours",
                   "--max-files-per-trigger", "--stop-grace-s", "--partition-by"):
        assert option in done.stdout
    assert "Default: 2.5 (setting trigger_seconds)" in " ".join(done.stdout.split())


def test_bad_values_fail_before_spark_naming_the_setting(tmp_path):
    done = run(str(ROOT / "spark_apps/stream/job.py"), "--score-chunk", "0", env={"SENTIMENT_HOME": str(tmp_path)})
    assert done.returncode == 2 and "SENTIMENT_SCORE_CHUNK (score_chunk)" in done.stderr
    done = run(str(ROOT / "spark_apps/stream/job.py"), "--input", "socket", env={"SENTIMENT_HOME": str(tmp_path)})
    assert done.returncode == 2 and "--input socket needs --port" in done.stderr


def test_status_and_stop_of_a_stream_that_is_not_running(tmp_path):
    env = {"SENTIMENT_HOME": str(tmp_path)}
    done = run("-m", "spark_apps.stream", "status", "--name", "quiet", env=env)
    assert done.returncode == 1 and json.loads(done.stdout) == {"stream": "quiet", "state": "unknown"}
    done = run("-m", "spark_apps.stream", "stop", "--name", "quiet", env=env)
    assert done.returncode == 0 and json.loads(done.stdout)["was_running"] is False
