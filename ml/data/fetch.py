"""Labelled data named by a URL or a path (the neutral-labelled training source, external evaluation sets): a local
file to read. Remote files are downloaded once into ``data/raw/sources/<hash>/`` (resumed, retried, renamed into
place when complete); a TweetEval text file brings its labels and mapping from the same URL folder."""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.parse
from pathlib import Path

from ml.data.tweeteval import TEXT_SUFFIX, sibling_names
from ml.download import fetch_http, local_source
from ml.errors import DataError

log = logging.getLogger(__name__)


def fetch_source(ref: str | os.PathLike[str], raw_dir: Path, *, retries: int = 5, progress: bool = False) -> Path:
    """A local path for the labelled source ``ref``: a path or ``file://`` URL as it is (it must exist), an
    ``http(s)://`` URL downloaded into ``raw_dir/sources/`` (nothing is fetched again once complete).

    Raises:
        DataError: a missing local file, an unsupported scheme, or a download that fails after its retries.
    """
    ref = str(ref)
    local = local_source(ref)
    if local is not None:
        if not local.exists():
            raise DataError(f"no such file: {local}")
        return local
    name = Path(urllib.parse.urlparse(ref).path).name
    if not name:
        raise DataError(f"{ref}: the URL names no file")
    folder = raw_dir / "sources" / hashlib.sha256(ref.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    names = [name, *(sibling_names(name) if name.endswith(TEXT_SUFFIX) else [])]
    base = ref[: len(ref) - len(name)] if ref.endswith(name) else ref.rsplit("/", 1)[0] + "/"
    for item in names:
        target = folder / item
        if target.is_file():
            continue
        part = target.with_name(target.name + ".part")
        fetch_http(base + item if item != name else ref, part, retries, progress)
        os.replace(part, target)
        log.info("fetched %s into %s", item, folder)
    return folder / name
