"""The landing record: one post as one JSON line, the contract between the ingest and the Spark job.

Fields (every record has all eight)::

    id          string   unique per post (the Spark job drops repeated ids)
    text        string   the post, lone surrogates replaced by U+FFFD (see :func:`scrub`)
    created_at  string   when the post was written, ISO-8601 UTC ``2024-01-15T10:35:00.000Z``; null if unknown
    keyword     string   the matched keyword, X rule tag or Sentiment140 query; null if none
    lang        string   language code as the source gives it; null if unknown
    author_id   string   the author (X user id, Bluesky DID, Sentiment140 user name); null if unknown
    source      string   "replay", "x" or "bluesky"
    ingest_ts   string   when the ingest took the post, ISO-8601 UTC with milliseconds

A line is UTF-8 JSON (``ensure_ascii=False``) ending in ``\\n``; JSON escapes newlines and other control
characters inside strings, and :func:`to_line` also escapes U+0085, U+2028 and U+2029, so no reader that splits
on any Unicode line break can cut a post in two.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

FIELDS = ("id", "text", "created_at", "keyword", "lang", "author_id", "source", "ingest_ts")
SOURCES = ("replay", "x", "bluesky")
_SURROGATE = re.compile("[\ud800-\udfff]")
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_LINE_BREAK = re.compile("[\x85\u2028\u2029]")


def scrub(text: str) -> str:
    """``text`` as valid Unicode: a surrogate pair stored as two code points becomes its character, and every
    lone surrogate (valid in a Python string and as a JSON ``\\ud83d`` escape, invalid in UTF-8) becomes U+FFFD.

    >>> scrub("a\\ud83d\\ude00b\\ud83dc")
    'a😀b\\ufffdc'
    """
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def iso_utc(moment: datetime) -> str:
    """``moment`` in UTC as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_iso() -> str:
    """Now, as :func:`iso_utc` writes it."""
    return iso_utc(datetime.now(UTC))


def parse_time(value: Any) -> str | None:
    """An ISO-8601 timestamp (``Z`` or an offset; no offset means UTC) as :func:`iso_utc`; ``None`` if unparsable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return iso_utc(datetime.fromisoformat(value.strip()))
    except ValueError:
        return None


def _optional(value: Any) -> str | None:
    if value is None:
        return None
    value = scrub(str(value)).strip()
    return value or None


def make_record(*, id: str, text: str, source: str, created_at: str | None = None, keyword: str | None = None,
                lang: str | None = None, author_id: str | None = None, ingest_ts: str | None = None) -> dict[str, Any]:
    """A landing record with every field, the strings scrubbed (see :func:`scrub`)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    return {
        "id": scrub(str(id)),
        "text": scrub(text),
        "created_at": created_at,
        "keyword": _optional(keyword),
        "lang": _optional(lang),
        "author_id": _optional(author_id),
        "source": source,
        "ingest_ts": ingest_ts or now_iso(),
    }


def to_line(record: dict[str, Any]) -> bytes:
    """One record as one UTF-8 JSON line ending in ``\\n`` (no raw line break inside)."""
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    if _LINE_BREAK.search(line):  # only possible inside strings: the escapes are valid JSON there
        line = _LINE_BREAK.sub(lambda m: _LINE_BREAKS[m.group()], line)
    return (line + "\n").encode("utf-8")


def parse_keywords(value: str | Iterable[str] | None) -> list[str]:
    """``"a, b,,A"`` (or a list) as ``["a", "b"]``: trimmed, empty ones and case-insensitive repeats dropped."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    seen, out = set(), []
    for item in items:
        word = item.strip()
        if word and word.casefold() not in seen:
            seen.add(word.casefold())
            out.append(word)
    return out


class KeywordMatcher:
    """Case-insensitive keyword matching on whole words: ``cat`` matches "Cat!" and "#cat", not "category".

    A keyword of several words matches them as a phrase. :meth:`match` returns the first keyword (in the order
    given) found in any of the texts, or ``None``.
    """

    def __init__(self, keywords: Sequence[str]):
        self.keywords = list(keywords)
        self._patterns = [(k, re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, k.split())) + r"(?!\w)", re.I))
                          for k in self.keywords]
        self._exact = {k.casefold(): k for k in self.keywords}

    def __bool__(self) -> bool:
        return bool(self.keywords)

    def match(self, text: str, *labels: str | None) -> str | None:
        """The keyword matching ``text``, or equal (ignoring case) to one of ``labels`` (a query, a rule tag)."""
        for label in labels:
            if label and label.casefold() in self._exact:
                return self._exact[label.casefold()]
        for keyword, pattern in self._patterns:
            if pattern.search(text):
                return keyword
        return None


@dataclass(frozen=True)
class Item:
    """What a source hands the runner: a record to land (or ``None`` for a post it skipped) and the source's
    position after it (``None`` if the source has no position), saved once the record is durable.

    ``skipped`` names why no record came: ``filtered`` (no keyword matched), ``bad`` (an unreadable row or
    event), ``error`` (a connection or HTTP error, described in ``note``), or ``""`` for an event that is simply
    not a post (a delete, an identity event).
    """

    record: dict[str, Any] | None
    state: dict[str, Any] | None = None
    skipped: str = ""
    note: str = ""
