"""Sinks: atomic landing files (crash mid-file, rotation by size and by time) and the reconnectable socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from ingest_helpers import landed_files, read_landing, wait_until

from spark_apps.ingest.records import make_record, to_line
from spark_apps.ingest.sinks import FileSink
from spark_apps.ingest.socket_sink import SocketSink

ROOT = Path(__file__).resolve().parents[2]


def line(i: int, text: str = "post") -> bytes:
    return to_line(make_record(id=str(i), text=f"{text} {i}\nsecond line", source="replay"))


def test_files_are_renamed_complete_and_never_seen_partial(tmp_path):
    folder = tmp_path / "landing"
    commits = []
    sink = FileSink(folder, max_bytes=4096, max_seconds=60, on_commit=commits.append)
    done = threading.Event()
    sizes: dict[str, int] = {}
    problems = []

    def watch() -> None:
        while not done.is_set():
            for path in landed_files(folder):
                try:
                    data = path.read_bytes()
                except FileNotFoundError:
                    problems.append(f"{path.name} vanished")
                    continue
                if not data.endswith(b"\n"):
                    problems.append(f"{path.name} visible before complete")
                for raw in data.decode("utf-8").split("\n")[:-1]:
                    json.loads(raw)
                if sizes.setdefault(path.name, len(data)) != len(data):
                    problems.append(f"{path.name} changed after it became visible")

    watcher = threading.Thread(target=watch)
    watcher.start()
    for i in range(3000):
        sink.write(line(i), {"row": i + 1})
    sink.close()
    done.set()
    watcher.join()
    assert not problems, problems[:5]
    files = landed_files(folder)
    assert len(files) > 10 and sink.files == len(files)
    assert all(f.stat().st_size <= 4096 + len(line(0)) for f in files)
    assert [r["id"] for r in read_landing(folder)] == [str(i) for i in range(3000)]
    assert commits[-1] == {"row": 3000} and len(commits) == len(files)
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "no temp file left after close"
    name = files[0].name
    assert name.startswith("part-") and name.endswith(".jsonl") and f"-{os.getpid()}-" in name


def test_rotation_by_time_even_at_a_trickle(tmp_path):
    folder = tmp_path / "landing"
    commits = []
    sink = FileSink(folder, max_bytes=1 << 20, max_seconds=0.3, on_commit=commits.append)
    start = time.monotonic()
    sink.write(line(1), {"row": 1})
    assert landed_files(folder) == [] and sink.next_deadline() is not None
    sink.tick()
    assert landed_files(folder) == [], "not before the interval"
    wait_until(lambda: sink.tick() or landed_files(folder), timeout=3, what="rotation by time")
    elapsed = time.monotonic() - start
    assert 0.3 <= elapsed < 1.5
    assert commits == [{"row": 1}]
    sink.advance({"row": 5})  # filtered posts move the position on: saved after the interval, without a file
    wait_until(lambda: sink.tick() or commits[-1] == {"row": 5}, timeout=3, what="idle position saved")
    sink.close()
    assert len(landed_files(folder)) == 1


CRASH = textwrap.dedent("""
    import os, signal, sys
    from spark_apps.ingest.records import make_record, to_line
    from spark_apps.ingest.sinks import FileSink
    sink = FileSink(sys.argv[1], max_bytes=2000, max_seconds=60)
    for i in range(25):
        sink.write(to_line(make_record(id=str(i), text="crash test " + str(i), source="replay")), {"row": i + 1})
    sink._fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_crash_mid_file_leaves_only_whole_files(tmp_path):
    folder = tmp_path / "landing"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"}
    proc = subprocess.run([sys.executable, "-c", CRASH, str(folder)], env=env, capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    visible = read_landing(folder)  # every visible file parses whole
    hidden = [p for p in folder.iterdir() if p.name.startswith(".")]
    assert visible and len(visible) < 25 and len(hidden) == 1
    assert hidden[0].read_bytes(), "the unrenamed posts were in the hidden temp file"
    FileSink(folder)  # the next ingest removes the dead process's temp file (its posts come again)
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    assert read_landing(folder) == visible


def _reader(port: int) -> tuple[socket.socket, list[dict]]:
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    got: list[dict] = []

    def read() -> None:
        buf = b""
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                got.append(json.loads(raw))

    threading.Thread(target=read, daemon=True).start()
    return conn, got


def test_socket_sink_accepts_a_new_client_after_the_old_one_leaves():
    commits = []
    sink = SocketSink("127.0.0.1", 0, buffer=3, on_commit=commits.append)
    try:
        sink.write(line(0), {"row": 1})
        sink.write(line(1), {"row": 2})
        assert commits == [], "not handed to a client yet"
        first, got1 = _reader(sink.port)
        wait_until(lambda: len(got1) == 2, what="buffered posts sent to the first client")
        assert commits == [{"row": 2}]
        sink.write(line(2), {"row": 3})
        wait_until(lambda: len(got1) == 3, what="live post")
        assert got1[0]["text"] == "post 0\nsecond line", "a newline inside a post survives"
        first.shutdown(socket.SHUT_RDWR)  # hang up (a plain close waits for the reader thread's recv)
        first.close()
        wait_until(lambda: not sink.connected, what="the sink noticing the disconnect")
        for i in range(3, 8):
            sink.write(line(i), {"row": i + 1})
        assert sink.dropped == 2, "a bounded buffer: the oldest posts are dropped and counted"
        second, got2 = _reader(sink.port)
        wait_until(lambda: len(got2) == 3, what="buffered posts sent to the second client")
        assert [r["id"] for r in got2] == ["5", "6", "7"]
        sink.write(line(8), {"row": 9})
        wait_until(lambda: len(got2) == 4, what="live post to the second client")
        assert commits[-1] == {"row": 9} and sink.clients == 2
        second.shutdown(socket.SHUT_RDWR)
        second.close()
    finally:
        sink.close()


def test_replay_into_the_socket_sink_end_to_end(tmp_path):
    from spark_apps.ingest.replay import ReplaySource
    from spark_apps.ingest.runner import run_ingest
    from spark_apps.ingest.state import StateStore, Status

    path = tmp_path / "posts.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "text": f"line\n{i} 😀"}) + "\n" for i in range(50)))
    sink = SocketSink("127.0.0.1", 0, buffer=100)
    client, got = _reader(sink.port)
    wait_until(lambda: sink.connected, what="the client")
    store = StateStore(tmp_path / "state.json")
    status = run_ingest(ReplaySource(path, rate=0), sink, store=store,
                        status=Status(None, stream="tweets", source="replay", sink="socket"))
    wait_until(lambda: len(got) == 50, what="every post over the socket")
    client.close()
    assert [r["text"] for r in got[:2]] == ["line\n0 😀", "line\n1 😀"]
    assert status["posts"] == 50 and status["clients"] == 1 and status["dropped"] == 0
    assert store.get("replay")["row"] == 50
