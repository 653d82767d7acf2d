"""The replay source: recorded posts played at a steady rate, optionally again and again.

Ids: a row's own id (a Sentiment140 tweet id, a JSONL ``id``), else ``<file sha256[:12]>-<row>`` so a restart
re-creates the same ids; pass ``n > 0`` of a looping replay appends ``-p<n>``. Keywords: when given, a post plays
only if a keyword matches its text (whole words, any case) or equals its own keyword/query, and the record's
``keyword`` is the keyword that matched; without keywords every post plays, keeping its own keyword/query.

Position (``state.json`` section ``replay``): ``{"file", "fingerprint", "parts", "pass", "row"}``: the next row to
play of that pass of that file (by content hash). A restart on the same file continues there; another file (or
another Sentiment140 part) starts from the beginning. A replay that reached its end stays there: use
``from_start`` to play it again.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from ml.download import file_digest
from ml.errors import DataError
from spark_apps.ingest.readers import read_rows
from spark_apps.ingest.records import Item, KeywordMatcher, make_record, now_iso
from spark_apps.ingest.runner import Emit

log = logging.getLogger(__name__)

_LOGGED_BAD = 20
_MAX_LAG = 1.0  # seconds behind schedule after which pacing restarts from now instead of bursting


class Pacer:
    """Release events at ``rate`` per second on a steady schedule (0: no waiting). Waiting ends early on ``stop``."""

    def __init__(self, rate: float, stop: threading.Event):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.stop = stop
        self._next: float | None = None

    def wait(self) -> bool:
        """Wait for the next slot; ``False`` if ``stop`` was set meanwhile."""
        if self.interval == 0:
            return not self.stop.is_set()
        now = time.monotonic()
        if self._next is None or now - self._next > _MAX_LAG:
            self._next = now
        delay = self._next - now
        if delay > 0 and self.stop.wait(delay):
            return False
        self._next += self.interval
        return not self.stop.is_set()


class ReplaySource:
    """Play ``path`` (see :mod:`spark_apps.ingest.readers` for the formats).

    Args:
        path: The recorded posts.
        rate: Posts per second (0: as fast as possible).
        loop: Start again at the end, each pass with new ids.
        keywords: Keep only posts matching one of these (empty: all).
        s140_parts: Which files of a Sentiment140 zip: ``test``, ``train`` or ``both`` (test first).
        from_start: Ignore the saved position.
    """

    name = "replay"
    state_key = "replay"

    def __init__(self, path: Path, *, rate: float = 50.0, loop: bool = False, keywords: list[str] | None = None,
                 s140_parts: str = "both", from_start: bool = False):
        self.path = Path(path)
        self.rate = rate
        self.loop = loop
        self.matcher = KeywordMatcher(keywords or [])
        self.s140_parts = s140_parts
        self.from_start = from_start
        if not self.path.is_file():
            raise DataError(f"no such replay file: {self.path}")
        self.fingerprint = file_digest(self.path)[:12]

    def _start(self, state: dict[str, Any] | None) -> tuple[int, int]:
        if state is None or self.from_start:
            return 0, 0
        same = (state.get("fingerprint"), state.get("parts")) == (self.fingerprint, self.s140_parts)
        if not same:
            log.warning("the saved replay position is for %s (%s); %s is another file: starting from its beginning",
                        state.get("file"), state.get("fingerprint"), self.path.name)
            return 0, 0
        return int(state.get("pass", 0)), int(state.get("row", 0))

    def run(self, emit: Emit, stop: threading.Event, state: dict[str, Any] | None) -> None:
        pass_no, start_row = self._start(state)
        if start_row:
            log.info("replay of %s resumes at pass %d, row %d", self.path.name, pass_no, start_row)
        pacer = Pacer(self.rate, stop)
        bad = 0
        while not stop.is_set():
            played = 0
            for index, row, problem in read_rows(self.path, self.s140_parts):
                if index < start_row:
                    continue
                position = {"file": str(self.path), "fingerprint": self.fingerprint, "parts": self.s140_parts,
                            "pass": pass_no, "row": index + 1}
                if row is None:
                    bad += 1
                    log.log(logging.WARNING if bad <= _LOGGED_BAD else logging.DEBUG, "%s: row %d skipped: %s%s",
                            self.path.name, index, problem, " (further bad rows are logged at debug level)"
                            if bad == _LOGGED_BAD else "")
                    if not emit(Item(None, position, "bad")):
                        return
                    continue
                record = self._record(row, index, pass_no)
                if record is None:
                    if not emit(Item(None, position, "filtered")):
                        return
                    continue
                if not pacer.wait():
                    return
                record["ingest_ts"] = now_iso()  # when it is played, not when it was read
                if not emit(Item(record, position)):
                    return
                played += 1
            if not self.loop:
                log.info("replay of %s reached its end (pass %d)", self.path.name, pass_no)
                return
            if played == 0 and start_row == 0:
                log.warning("a whole pass over %s played no post: not looping", self.path.name)
                return
            pass_no, start_row = pass_no + 1, 0

    def _record(self, row: dict[str, Any], index: int, pass_no: int) -> dict[str, Any] | None:
        keyword = row.get("keyword")
        if self.matcher:
            keyword = self.matcher.match(row["text"], keyword)
            if keyword is None:
                return None
        post_id = row.get("id") or f"{self.fingerprint}-{index}"
        if pass_no:
            post_id = f"{post_id}-p{pass_no}"
        return make_record(id=post_id, text=row["text"], source="replay", created_at=row.get("created_at"),
                           keyword=keyword, lang=row.get("lang"), author_id=row.get("author_id"))
