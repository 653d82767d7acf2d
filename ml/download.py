"""Fetch the Sentiment140 archive safely.

``download`` accepts ``http(s)://`` URLs, ``file://`` URLs and plain local paths. It streams to
``<name>.part`` with a progress bar, resumes a partial HTTP download with a ``Range`` request, retries with
exponential backoff, verifies the archive (checksum, zip integrity, expected members) and only then renames it
into place, with a ``.sha256`` sidecar. A corrupt or interrupted download never leaves a file that a later step
would trust, and re-running with a valid file present does nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path

from ml.errors import DataError
from ml.settings import OFFICIAL_MD5, OFFICIAL_URL

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TRAIN_MEMBER = "training.1600000.processed.noemoticon.csv"
TEST_MEMBER = "testdata.manual.2009.06.14.csv"
#: The record, in the download folder, of the archive the last successful ``download`` verified.
LATEST = "latest.json"


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def local_source(url: str) -> Path | None:
    """The local file behind a ``file://`` URL or a plain path, else ``None`` for a remote URL."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme and len(parsed.scheme) > 1:
        raise DataError(f"unsupported URL scheme {parsed.scheme!r} in {url}; use http(s)://, file:// or a path")
    return Path(url).expanduser()


def archive_name(url: str) -> str:
    name = Path(urllib.parse.urlparse(url).path).name
    return name or "sentiment140.zip"


def verify_archive(path: Path) -> None:
    """Raise :class:`DataError` unless ``path`` is a complete zip holding a Sentiment140 training file."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [Path(n).name for n in zf.namelist()]
            bad = zf.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise DataError(f"{path.name}: not a complete zip archive ({exc}); it may be truncated") from None
    if bad is not None:
        raise DataError(f"{path.name}: member {bad} fails its CRC check; the archive is corrupt")
    if not any(n == TRAIN_MEMBER or (n.startswith("training") and n.endswith(".csv")) for n in names):
        raise DataError(f"{path.name}: no Sentiment140 training csv inside (found {names})")


def fetch_http(url: str, part: Path, retries: int, progress: bool) -> None:
    from tqdm import tqdm

    attempt = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"User-Agent": "tweet-sentiment-platform/0.1"})
        if have:
            request.add_header("Range", f"bytes={have}-")
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                if have and resp.status != 206:  # server ignored Range: start over
                    have = 0
                total = resp.headers.get("Content-Length")
                total = int(total) + have if total is not None else None
                with (
                    open(part, "ab" if have else "wb") as out,
                    tqdm(total=total, initial=have, unit="B", unit_scale=True, disable=not progress,
                         desc=part.name.removesuffix(".part")) as bar,
                ):
                    for block in iter(lambda: resp.read(CHUNK), b""):
                        out.write(block)
                        bar.update(len(block))
            if total is not None and part.stat().st_size != total:
                raise DataError(f"{url}: got {part.stat().st_size} of {total} bytes")
            return
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # range past the end: the .part is complete or stale
                return
            if 400 <= exc.code < 500 and exc.code != 429:
                raise DataError(f"{url}: HTTP {exc.code} {exc.reason}") from None
            error: Exception = exc
        except (urllib.error.URLError, TimeoutError, ConnectionError, DataError, OSError) as exc:
            error = exc
        attempt += 1
        if attempt > retries:
            raise DataError(f"{url}: download failed after {retries} retries: {error}")
        delay = min(2 ** (attempt - 1), 30)
        log.warning("download attempt %d failed (%s); retrying in %ds", attempt, error, delay)
        time.sleep(delay)


def _copy_local(src: Path, part: Path, progress: bool) -> None:
    from tqdm import tqdm

    if not src.is_file():
        raise DataError(f"no such file: {src}")
    with (
        open(src, "rb") as fin,
        open(part, "wb") as fout,
        tqdm(total=src.stat().st_size, unit="B", unit_scale=True, disable=not progress, desc=src.name) as bar,
    ):
        for block in iter(lambda: fin.read(CHUNK), b""):
            fout.write(block)
            bar.update(len(block))


def _check(path: Path, md5: str | None, sha256: str | None) -> str:
    """Verify checksums and archive; return the file's sha256."""
    digest = file_digest(path, "sha256")
    if sha256 and digest != sha256.lower():
        raise DataError(f"{path.name}: sha256 {digest} does not match the expected {sha256}")
    if md5:
        got = file_digest(path, "md5")
        if got != md5.lower():
            raise DataError(f"{path.name}: md5 {got} does not match the expected {md5}")
    verify_archive(path)
    return digest


def download(
    url: str,
    dest_dir: Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    retries: int = 5,
    progress: bool = True,
) -> Path:
    """Download and verify the archive at ``url`` into ``dest_dir``; return its final path.

    Args:
        url: ``http(s)://`` or ``file://`` URL, or a local path.
        dest_dir: Folder for the archive (``<home>/data/raw``).
        sha256: Expected sha256 (optional).
        md5: Expected md5; defaults to the official archive's md5 when ``url`` is the official URL.
        retries: Retries after a failed HTTP attempt, with exponential backoff.
        progress: Show a progress bar.

    Raises:
        DataError: The source is missing or unreachable, or the file fails verification. The partial file is
            removed after a failed verification so the next run starts clean.
    """
    if md5 is None and url == OFFICIAL_URL:
        md5 = OFFICIAL_MD5
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / archive_name(url)
    sidecar = target.with_name(target.name + ".sha256")

    if target.exists() and sidecar.exists():
        try:
            digest = _check(target, md5, sha256)
        except DataError as exc:
            log.warning("existing %s is invalid (%s); downloading again", target.name, exc)
        else:
            if digest == sidecar.read_text().split()[0]:
                log.info("%s already present and valid; nothing to do", target)
                _record_latest(dest_dir, target, digest, url)
                return target

    part = target.with_name(target.name + ".part")
    source = local_source(url)
    if source is None:
        fetch_http(url, part, retries, progress)
    else:
        _copy_local(source, part, progress)
    try:
        digest = _check(part, md5, sha256)
    except DataError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, target)
    tmp_sidecar = sidecar.with_name(sidecar.name + ".tmp")
    tmp_sidecar.write_text(f"{digest}  {target.name}\n")
    os.replace(tmp_sidecar, sidecar)
    _record_latest(dest_dir, target, digest, url)
    log.info("downloaded %s (sha256 %s)", target, digest)
    return target


def _record_latest(dest_dir: Path, target: Path, digest: str, url: str) -> None:
    """Note ``target`` as the archive ``data prepare`` reads by default (written atomically)."""
    record = dest_dir / LATEST
    tmp = record.with_name(f".{LATEST}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"name": target.name, "sha256": digest, "url": url}, indent=2))
    os.replace(tmp, record)


def latest_archive(dest_dir: Path) -> Path | None:
    """The archive the last successful :func:`download` into ``dest_dir`` verified, if it is still there."""
    try:
        record = json.loads((dest_dir / LATEST).read_text())
        path = dest_dir / Path(record["name"]).name
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path if path.is_file() else None


__all__ = ["download", "verify_archive", "file_digest", "archive_name", "latest_archive", "fetch_http", "local_source",
           "TRAIN_MEMBER", "TEST_MEMBER"]
