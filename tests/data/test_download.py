"""Download: local paths, file:// and a real loopback HTTP server with Range resume and retries."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from ml.download import download, file_digest
from ml.errors import DataError


def test_file_url_and_sidecar(s140_zip, tmp_path):
    out = download(s140_zip.as_uri(), tmp_path / "raw", progress=False)
    assert out.name == "trainingandtestdata.zip"
    assert out.read_bytes() == s140_zip.read_bytes()
    assert (tmp_path / "raw" / "trainingandtestdata.zip.sha256").read_text().split()[0] == file_digest(out)
    assert not list((tmp_path / "raw").glob("*.part"))


def test_local_path_and_rerun_is_noop(s140_zip, tmp_path):
    out = download(str(s140_zip), tmp_path / "raw", progress=False)
    mtime = out.stat().st_mtime_ns
    again = download(str(s140_zip), tmp_path / "raw", progress=False)
    assert again == out and out.stat().st_mtime_ns == mtime


def test_sha256_checked(s140_zip, tmp_path):
    good = hashlib.sha256(s140_zip.read_bytes()).hexdigest()
    download(str(s140_zip), tmp_path / "ok", sha256=good, progress=False)
    with pytest.raises(DataError, match="sha256 .* does not match"):
        download(str(s140_zip), tmp_path / "bad", sha256="0" * 64, progress=False)
    assert list((tmp_path / "bad").iterdir()) == [], "a failed verification leaves nothing behind"


def test_md5_checked(s140_zip, tmp_path):
    with pytest.raises(DataError, match="md5"):
        download(str(s140_zip), tmp_path / "raw", md5="1647eb110dd2492512e27b9a70d5d1bc", progress=False)
    assert list((tmp_path / "raw").iterdir()) == []


def test_truncated_zip_rejected(s140_zip, tmp_path):
    cut = tmp_path / "trainingandtestdata.zip"
    cut.write_bytes(s140_zip.read_bytes()[: s140_zip.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated|not a complete zip"):
        download(str(cut), tmp_path / "raw", progress=False)
    assert list((tmp_path / "raw").iterdir()) == []


def test_zip_without_training_csv(tmp_path):
    import zipfile

    z = tmp_path / "other.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.txt", "nothing here")
    with pytest.raises(DataError, match="no Sentiment140 training csv"):
        download(str(z), tmp_path / "raw", progress=False)


def test_missing_source_and_bad_scheme(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        download(str(tmp_path / "nope.zip"), tmp_path / "raw", progress=False)
    with pytest.raises(DataError, match="unsupported URL scheme"):
        download("ftp://example.org/x.zip", tmp_path / "raw", progress=False)


def test_corrupt_existing_file_is_replaced(s140_zip, tmp_path):
    raw = tmp_path / "raw"
    out = download(str(s140_zip), raw, progress=False)
    out.write_bytes(b"garbage")
    again = download(str(s140_zip), raw, progress=False)
    assert again.read_bytes() == s140_zip.read_bytes()


class _FlakyRangeServer(http.server.BaseHTTPRequestHandler):
    """Serves one file; the first GET sends half the body then drops the connection."""

    payload = b""
    requests: list[str | None] = []

    def do_GET(self):  # noqa: N802
        rng = self.headers.get("Range")
        type(self).requests.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        body = self.payload[start:]
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(self.payload) - 1}/{len(self.payload)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if len(type(self).requests) == 1:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)  # simulate a dropped connection mid-download
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_server(s140_zip):
    handler = type("H", (_FlakyRangeServer,), {"payload": s140_zip.read_bytes(), "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/trainingandtestdata.zip", handler
    server.shutdown()
    server.server_close()


def test_http_resume_after_dropped_connection(flaky_server, s140_zip, tmp_path):
    url, handler = flaky_server
    out = download(url, tmp_path / "raw", retries=3, progress=False)
    assert out.read_bytes() == s140_zip.read_bytes()
    assert handler.requests[0] is None
    assert handler.requests[1] is not None and handler.requests[1].startswith("bytes="), "second try resumes"
    assert int(handler.requests[1].split("=")[1].rstrip("-")) > 0


def test_http_gives_up_after_retries(tmp_path):
    # Nothing listens on this port (bound then closed): connection refused every time.
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(DataError, match="after 1 retries"):
        download(f"http://127.0.0.1:{port}/x.zip", tmp_path / "raw", retries=1, progress=False)
    assert not Path(tmp_path / "raw" / "x.zip").exists()
