"""``python -m spark_apps.ingest`` as a process: help, clean stop on SIGTERM, and a crash that loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from fixtures import make_s140_zip
from ingest_helpers import landed_files, read_landing, wait_until

ROOT = Path(__file__).resolve().parents[2]


def start(args: list[str], home: Path) -> subprocess.Popen:
    env = {**os.environ, "SENTIMENT_HOME": str(home), "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"}
    env.pop("SENTIMENT_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "spark_apps.ingest", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_help_documents_every_option(tmp_path):
    proc = start(["--help"], tmp_path)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    import typer.main

    from spark_apps.ingest.cli import app

    command = typer.main.get_command(app)
    for param in command.params:
        assert param.help, f"--{param.name} has no help"
        assert param.opts[0] in out
    for option in ("--source", "--keywords", "--max-posts", "--sink", "--port", "--x-conn-id", "--x-api-url",
                   "--rotate-seconds", "--rate", "--loop"):
        assert option in out


def test_sigterm_stops_cleanly_and_a_restart_continues(tmp_path):
    zip_path = make_s140_zip(tmp_path / "trainingandtestdata.zip", n_train=300, n_test=20)
    home = tmp_path / "home"
    landing = home / "stream/feed/landing"
    proc = start(["--file", str(zip_path), "--rate", "100", "--rotate-seconds", "0.2", "--name", "feed"], home)
    try:
        wait_until(lambda: landed_files(landing), timeout=30, what="a first landing file")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    status = json.loads(out)
    assert status["stop_reason"] == "stopped" and status["running"] is False
    assert not [p for p in landing.iterdir() if p.name.startswith(".")], "the current file was renamed into place"
    assert len(read_landing(landing)) == status["posts"] == status["state"]["row"]
    state = json.loads((home / "stream/feed/ingest/state.json").read_text())
    assert state["replay"]["row"] == status["posts"]
    proc = start(["--file", str(zip_path), "--rate", "0", "--name", "feed", "-q"], home)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    ids = [r["id"] for r in read_landing(landing)]
    assert ids == [str(14_000 + i) for i in range(20)] + [str(1_000_000 + i) for i in range(300)]


def test_a_crash_loses_nothing_and_duplicates_nothing(tmp_path):
    zip_path = make_s140_zip(tmp_path / "trainingandtestdata.zip", n_train=300, n_test=20)
    home = tmp_path / "home"
    landing = home / "stream/tweets/landing"
    proc = start(["--file", str(zip_path), "--rate", "200", "--rotate-seconds", "0.1"], home)
    try:
        wait_until(lambda: len(landed_files(landing)) >= 2, timeout=30, what="two landing files")
    finally:
        proc.kill()  # SIGKILL: no shutdown at all
        proc.communicate(timeout=30)
    before = read_landing(landing)
    assert 0 < len(before) < 320
    proc = start(["--file", str(zip_path), "--rate", "0", "-q"], home)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    ids = [r["id"] for r in read_landing(landing)]
    assert ids == [str(14_000 + i) for i in range(20)] + [str(1_000_000 + i) for i in range(300)]


def test_bad_option_is_one_line(tmp_path):
    proc = start(["--source", "bluesky", "--keywords", ""], tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and err.strip().splitlines()[-1].startswith("error: the bluesky source needs keywords")


_CRASH_AFTER_RENAME = """
import os, sys
from spark_apps.ingest.state import StateStore
saves = {"n": 0}
real_save = StateStore.save
def save(self, section, value):
    saves["n"] += 1
    if saves["n"] == 3:  # the third landed file is renamed into place; die before its position is saved
        os._exit(9)
    real_save(self, section, value)
StateStore.save = save
from spark_apps.ingest.cli import cli
sys.argv = ["ingest", *sys.argv[1:]]
cli()
"""


def test_a_crash_between_the_rename_and_the_save_repeats_nothing(tmp_path):
    zip_path = make_s140_zip(tmp_path / "trainingandtestdata.zip", n_train=200, n_test=10)
    home = tmp_path / "home"
    landing = home / "stream/tweets/landing"
    env = {**os.environ, "SENTIMENT_HOME": str(home), "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"}
    env.pop("SENTIMENT_CONFIG", None)
    crashed = subprocess.run([sys.executable, "-c", _CRASH_AFTER_RENAME, "--file", str(zip_path), "--rate", "0",
                              "--rotate-bytes", "2000", "-q"], env=env, capture_output=True, text=True, timeout=60)
    assert crashed.returncode == 9, crashed.stderr
    state = json.loads((home / "stream/tweets/ingest/state.json").read_text())
    assert state["pending"]["file"] in {p.name for p in landed_files(landing)}, "the crash fell after the rename"
    assert len(landed_files(landing)) == 3
    proc = start(["--file", str(zip_path), "--rate", "0", "-q"], home)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    ids = [r["id"] for r in read_landing(landing)]
    assert ids == [str(14_000 + i) for i in range(10)] + [str(1_000_000 + i) for i in range(200)]
    assert "pending" not in json.loads((home / "stream/tweets/ingest/state.json").read_text())
