"""The streaming job end to end: landing files -> spark-submit --master local[2] job.py -> parquet, scored by a real
``bentoml serve``; killed, restarted, starved of its service, stopped; every post id exactly once."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
from conftest import KEY, StreamJob, dead_letter_rows, output_rows

from ml.predictor import decide, load_predictor
from ml.text import clean
from spark_apps.stream.landing import post, write_landing

pytestmark = [pytest.mark.slow, pytest.mark.stream]

TEXTS = ["I love this so much", "what a terrible day", "so happy right now", "I hate this so much", "zyxw qvut",
         "", "http://t.co/abc @someone", "best movie ever #mood"]
MALFORMED = ["{bad json", '{"id": 42, "text": "number id"}', '{"text": "no id"}', "[]"]


def posts(ids: range, keyword_every: int = 3) -> list[dict]:
    return [post(f"p{i}", TEXTS[i % len(TEXTS)], keyword="phone" if i % keyword_every == 0 else None,
                 source="replay") for i in ids]


def check_output(job: StreamJob, expected_ids: set[str]):
    """Every expected id exactly once, each labelled, with the Neutral band of the service's rules."""
    rows = output_rows(job.paths.output)
    assert rows is not None
    counts = rows["id"].value_counts()
    assert set(counts.index) == expected_ids, (expected_ids - set(counts.index), set(counts.index) - expected_ids)
    assert counts.max() == 1, counts[counts > 1]
    assert rows["label"].notna().all() and rows["model"].notna().all()
    for row in rows.itertuples():
        if not row.clean_text:
            assert (row.label, row.p_positive == row.p_positive) == ("Neutral", False)  # NaN: null p_positive
        else:
            assert (row.label == "Neutral") == (0.4 <= row.p_positive <= 0.6), row
            assert (row.label == "Positive") == (row.p_positive > 0.6), row
        assert row.clean_text == clean(row.text)
    return rows


def test_end_to_end_dead_letters_second_driver_and_sigterm(tmp_path, bento, stream_model):
    home = tmp_path / "home"
    job = StreamJob(home, service_url=bento.url)
    first = posts(range(0, 60)) + [posts(range(5, 6))[0]] + MALFORMED[:2]  # p5 twice in one file
    write_landing(job.paths.landing, first)
    job.start()
    try:
        job.wait_running()
        second = posts(range(60, 100)) + posts(range(0, 10)) + MALFORMED[2:]  # p0..p9 delivered again
        write_landing(job.paths.landing, second)
        lines = len(first) + len(second)
        status = job.wait_rows(lines)

        other = StreamJob(home, service_url=bento.url)
        other.log_path = tmp_path / "second-driver.log"
        other.start()
        assert other.wait_exit(120) == 3
        log = other.log_path.read_text()
        assert f"is already running: driver pid {status['driver']['pid']} on host" in log

        os.killpg(os.getpgid(job.pid), signal.SIGTERM)  # the whole group: spark-submit's JVM and the driver
        assert job.wait_exit(60) == 0, job.log_tail()
    finally:
        job.stop()
    status = job.status()
    assert status["state"] == "stopped" and status["error"] is None and "SIG" in status["stop_reason"]
    rows = check_output(job, {f"p{i}" for i in range(100)})
    assert set(rows["keyword"].dropna()) == {"phone"} and rows["model"].unique().tolist() == [stream_model["tag"]]
    assert (rows["p_positive"].isna() == (rows["clean_text"] == "")).all()
    letters = dead_letter_rows(job.paths.deadletter)
    assert sorted(letter["raw"] for letter in letters) == sorted(MALFORMED)
    assert {letter["reason"] for letter in letters} == {"bad JSON", "id: expected a string, got BIGINT", "no id",
                                                         "not a JSON object"}
    totals = status["totals"]
    assert totals["rows_in"] == lines and totals["written"] == 100 and totals["dead_letters"] == 4
    assert totals["duplicates"] == 11 and totals["late_rows_dropped"] == 0
    assert totals["rows_in"] == totals["written"] + totals["dead_letters"] + totals["duplicates"]
    assert status["model"] == stream_model["tag"] and status["latency_ms"]["p95"] >= status["latency_ms"]["p50"] > 0
    assert status["driver"]["host"] and status["config"]["spark_master"] == "local[2]"
    assert KEY not in job.log_path.read_text()


class Writer(threading.Thread):
    """Writes a landing file of ``size`` posts every ``every`` seconds until ``done`` is set (at least ``files``
    files), re-delivering some earlier ids."""

    def __init__(self, landing, start_id: int, files: int = 1, size: int = 25, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.landing, self.start_id, self.files, self.size, self.every = landing, start_id, files, size, every
        self.done = threading.Event()
        self.lines = 0
        self.ids: set[str] = set()

    def run(self) -> None:
        n = 0
        while n < self.files or not self.done.is_set():
            first = self.start_id + n * self.size
            batch = posts(range(first, first + self.size))
            if n % 4 == 3:
                batch += posts(range(first - self.size, first - self.size + 5))  # a replay overlap
            write_landing(self.landing, batch)
            self.lines += len(batch)
            self.ids.update(p["id"] for p in batch)
            n += 1
            time.sleep(self.every)


def test_sigkill_restart_and_service_outage_lose_nothing(tmp_path, bento):
    home = tmp_path / "home"
    env = {"SENTIMENT_SCORE_RETRIES": "2", "SENTIMENT_SCORE_BACKOFF_S": "0.2"}
    job = StreamJob(home, "--max-files-per-trigger", "8", service_url=bento.url, env=env)
    job.start()
    lines, ids = 0, set()
    try:
        job.wait_running()
        writer = Writer(job.paths.landing, 0, files=8)
        writer.start()
        job.wait_status(lambda d: (d.get("batch_id") or 0) >= 1, 120, "past its second micro-batch")
        job.kill_group()  # mid-stream: files keep landing, a batch may be half done
        time.sleep(1)
        job.start()
        time.sleep(2)
        writer.done.set()
        writer.join()
        lines, ids = lines + writer.lines, ids | writer.ids
        job.wait_rows(lines, 180)

        bento.stop()  # the service goes away for ~30 s
        down_at = time.monotonic()
        outage = Writer(job.paths.landing, 10_000, files=4, every=0.05)
        outage.done.set()
        outage.run()
        lines, ids = lines + outage.lines, ids | outage.ids
        assert job.wait_exit(120) == 1
        log = job.log_path.read_text()
        assert f"scoring service {bento.url}/classify unavailable after 3 attempts" in log
        status = job.status()
        assert status["state"] == "failed" and f"{bento.url}/classify" in status["error"]
        time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
        bento.start()  # back on the same port

        job.start()  # restart: the failed batch is run again from the checkpoint
        job.wait_rows(lines, 180)
        os.kill(job.status()["driver"]["pid"], signal.SIGTERM)  # the Python driver alone
        assert job.wait_exit(60) == 0
    finally:
        job.stop()
        if not bento.running():
            bento.start()
    rows = check_output(job, ids)
    status = job.status()
    assert status["state"] == "stopped" and status["totals"]["rows_in"] == lines
    assert status["totals"]["written"] == len(rows) == len(ids)
    assert status["totals"]["duplicates"] == lines - len(ids) and status["totals_exact"]


def test_available_now_with_the_local_scorer_recovers_a_stale_lock(tmp_path, stream_model):
    home = tmp_path / "home"
    job = StreamJob(home, "--available-now", "--scorer", "local", "--partition-by", "date",
                    env={"SENTIMENT_MODEL_TAG": stream_model["tag"]}, store=stream_model["store"])
    write_landing(job.paths.landing, posts(range(0, 30)) + ['{"id": "x"}'])
    write_landing(job.paths.landing, posts(range(20, 40)))
    job.paths.root.mkdir(parents=True, exist_ok=True)
    job.paths.lock.write_text(json.dumps({"stream": "tweets", "pid": 999_999, "host": "gone", "started_utc": "x"}))
    job.start()
    try:
        assert job.wait_exit(180) == 0, job.log_tail()
    finally:
        job.stop()
    assert "recovered the stale lock" in job.log_path.read_text()
    status = job.status()
    assert status["state"] == "stopped" and status["stop_reason"].startswith("available-now")
    assert status["totals"] == {"rows_in": 51, "written": 40, "dead_letters": 1, "duplicates": 10,
                                "late_rows_dropped": 0, "batches": status["totals"]["batches"]}
    rows = check_output(job, {f"p{i}" for i in range(40)})
    predictor = load_predictor(stream_model["path"])
    readable = rows[rows["clean_text"] != ""]
    expected = decide(predictor.predict_proba_cleaned(readable["clean_text"].tolist()), predictor.labels, (0.4, 0.6))
    assert readable["label"].tolist() == expected
    assert set(rows["model"]) == {stream_model["tag"]}
