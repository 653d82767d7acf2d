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
    assert done.returncode == 1
    assert json.loads(done.stdout) == {"stream": "quiet", "state": "unknown", "driver_alive": False}
    done = run("-m", "spark_apps.stream", "stop", "--name", "quiet", env=env)
    assert done.returncode == 0 and json.loads(done.stdout)["was_running"] is False


def test_a_service_down_at_start_fails_at_once_naming_it(tmp_path):
    from ml.processes import free_port

    url = f"http://127.0.0.1:{free_port()}"
    env = {"SENTIMENT_HOME": str(tmp_path), "SENTIMENT_SERVICE_URL": url, "SENTIMENT_SCORE_RETRIES": "1",
           "SENTIMENT_SCORE_BACKOFF_S": "0.1"}
    done = run(str(ROOT / "spark_apps/stream/job.py"), env=env)
    assert done.returncode == 1
    assert f"error: scoring service {url}/classify unavailable after 2 attempts" in done.stderr
    status = json.loads((tmp_path / "stream" / "tweets" / "status.json").read_text())
    assert status["state"] == "failed" and url in status["error"]


def test_landing_retention_deletes_only_old_files_both_queries_committed(tmp_path):
    import os
    import time

    from spark_apps.stream.paths import StreamPaths
    from spark_apps.stream.run import pruner

    paths = StreamPaths.under(tmp_path / "s")
    paths.landing.mkdir(parents=True)
    files = {name: paths.landing / f"part-{name}.jsonl" for name in ("old", "uncommitted", "new", "main-only")}
    for name, path in files.items():
        path.write_text("{}\n")
        if name != "new":
            os.utime(path, (time.time() - 7200, time.time() - 7200))

    def log(folder, batch, names):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / str(batch)).write_text("v1\n" + "".join(
            json.dumps({"path": f"file://{files[n]}", "batchId": batch}) + "\n" for n in names))

    for checkpoint, names in ((paths.main_checkpoint, ["old", "new", "main-only"]),
                              (paths.deadletter_checkpoint, ["old", "new"])):
        log(checkpoint / "sources" / "0", 0, names)
        log(checkpoint / "commits", 0, [])
        log(checkpoint / "sources" / "0", 1, ["uncommitted"])  # planned, never committed
    pruner(paths, hours=1, with_deadletter=True)()
    assert sorted(p.name for p in paths.landing.iterdir()) == [
        "part-main-only.jsonl", "part-new.jsonl", "part-uncommitted.jsonl"]
