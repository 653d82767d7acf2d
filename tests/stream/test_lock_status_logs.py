"""The driver lock, the status file and the readers of Spark's metadata logs (no Spark needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from spark_apps.stream.lock import DriverLock, LockHeld, is_locked, read_holder
from spark_apps.stream.sparklog import batch_files, committed_files, last_commit, source_files
from spark_apps.stream.status import StreamStatus, read_status

ROOT = Path(__file__).resolve().parents[2]


def hold_lock(path: Path) -> subprocess.Popen:
    """Another process holding the lock until its stdin closes."""
    code = textwrap.dedent(f"""
        import sys
        from spark_apps.stream.lock import DriverLock
        lock = DriverLock({str(path)!r}, stream="tweets").acquire()
        print("held", flush=True)
        sys.stdin.read()
        lock.release()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_driver_is_refused_with_the_holders_details(tmp_path):
    path = tmp_path / "driver.lock"
    holder = hold_lock(path)
    try:
        assert is_locked(path)
        with pytest.raises(LockHeld) as err:
            DriverLock(path, stream="tweets").acquire()
        message = str(err.value)
        assert f"driver pid {holder.pid} on host" in message and "is already running" in message
        assert str(path) in message
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert not is_locked(path)  # the holder exited cleanly: released, file emptied
    assert read_holder(path) == {}


def test_a_stale_lock_of_a_dead_driver_is_recovered(tmp_path, caplog):
    path = tmp_path / "driver.lock"
    path.write_text(json.dumps({"stream": "tweets", "pid": 999999, "host": "gone", "started_utc": "2026-01-01"}))
    with DriverLock(path, stream="tweets") as lock:
        assert lock.recovered["pid"] == 999999
        assert read_holder(path)["pid"] == os.getpid()
        assert is_locked(path)  # flock locks belong to open files: our own probe sees the lock too
    assert "recovered the stale lock" in caplog.text and "999999" in caplog.text


def test_killed_holder_releases_the_lock(tmp_path):
    path = tmp_path / "driver.lock"
    holder = hold_lock(path)
    holder.kill()
    holder.wait(10)
    with DriverLock(path, stream="tweets") as lock:
        assert lock.recovered["pid"] == holder.pid


def progress(batch: int, rows_in: int, dead: int, written: int, dups: int, models=("m:1",)):
    row = SimpleNamespace  # what observedMetrics holds: objects with asDict()
    return SimpleNamespace(
        batchId=batch, id="q", runId="r", name="stream:tweets", timestamp="2026-12-01T08:00:00.000Z",
        numInputRows=rows_in, inputRowsPerSecond=10.0, processedRowsPerSecond=float("nan"), batchDuration=900,
        durationMs={"addBatch": 800, "triggerExecution": 900},
        observedMetrics={"landing": row(asDict=lambda: {"rows_in": rows_in, "dead_letters": dead}),
                         "written": row(asDict=lambda: {"written": written, "latency_ms": [120.0, 480.5],
                                                       "models": list(models)})},
        stateOperators=[SimpleNamespace(customMetrics={"numDroppedDuplicateRows": dups}, numRowsDroppedByWatermark=0)])


def test_status_totals_per_batch_once_and_across_restarts(tmp_path):
    path = tmp_path / "status.json"
    status = StreamStatus(path, "tweets", config={}, paths={})
    status.write()
    status.on_main_progress(progress(0, 10, 1, 8, 1))
    status.on_main_progress(progress(1, 5, 0, 5, 0))
    status.on_main_progress(progress(1, 5, 0, 5, 0))  # the same batch again: counted once
    doc = read_status(path)
    assert doc["totals"] == {"rows_in": 15, "written": 13, "dead_letters": 1, "duplicates": 1,
                             "late_rows_dropped": 0, "batches": 2}
    assert doc["batch_id"] == 1 and doc["state"] == "running" and doc["model"] == "m:1"
    assert doc["latency_ms"] == {"p50": 120.0, "p95": 480.5} and doc["processed_rows_per_s"] is None
    assert not list(tmp_path.glob(".*tmp"))  # written atomically: no temporary file left
    again = StreamStatus(path, "tweets", config={}, paths={}, previous=doc)
    again.on_main_progress(progress(2, 3, 0, 2, 1))
    assert read_status(path)["totals"]["rows_in"] == 18 and read_status(path)["totals"]["batches"] == 3


def write_log(folder: Path, name: str, entries: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("v1\n" + "".join(json.dumps(e) + "\n" for e in entries))


def test_metadata_logs(tmp_path):
    out = tmp_path / "out"
    meta = out / "_spark_metadata"
    add = lambda n: {"path": f"file://{out}/part-{n}.parquet", "action": "add"}  # noqa: E731
    write_log(meta, "0", [add(0)])
    write_log(meta, "1", [add(1), add(2)])
    write_log(meta, "2.compact", [add(0), add(1), add(2), add(3)])
    write_log(meta, "3", [add(4), {"path": f"file://{out}/part-0.parquet", "action": "delete"}])
    (meta / ".3.tmp").write_text("garbage")
    assert committed_files(out) == [f"{out}/part-{n}.parquet" for n in (1, 2, 3, 4)]
    assert batch_files(out, 1) == [f"{out}/part-1.parquet", f"{out}/part-2.parquet"]
    assert batch_files(out, 2) == [f"{out}/part-3.parquet"]
    ckpt = tmp_path / "ckpt"
    write_log(ckpt / "sources" / "0", "0", [{"path": "file:///l/a%20b.jsonl", "batchId": 0}])
    write_log(ckpt / "sources" / "0", "1", [{"path": "file:///l/c.jsonl", "batchId": 1}])
    write_log(ckpt / "commits", "0", [{}])
    assert source_files(ckpt, [1]) == ["/l/c.jsonl"] and source_files(ckpt) == ["/l/a b.jsonl", "/l/c.jsonl"]
    assert last_commit(ckpt) == 0 and last_commit(tmp_path / "new") is None
