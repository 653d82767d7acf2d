"""The one tweet cleaner. Training, the BentoML service and the Spark job all call :func:`tokenize`.

The rules, applied in this order (each with an example):

1. HTML entities are unescaped: ``"fish &amp; chips"`` -> ``"fish & chips"`` (Sentiment140 keeps them escaped).
2. Accents are folded to their base letter: ``"café"`` -> ``"cafe"``.
3. URLs are removed: ``"see http://t.co/x1 now"`` -> ``"see now"`` (``http://``, ``https://`` and ``www.``).
4. @mentions are removed: ``"@bob thanks"`` -> ``"thanks"``.
5. Hashtags keep their words: ``"#happy day"`` -> ``"happy day"``.
6. Every non-letter becomes a space: ``"it's 2day!!"`` -> ``"it s day"``; emoji and digits vanish, and so does
   text in non-Latin scripts (``"привет"`` -> ``""``), as in the write-up's ``[^a-zA-Z]`` rule.
7. Lowercase, then split on whitespace: ``"RT Great"`` -> ``["rt", "great"]`` (``RT`` is an ordinary word).

The result may be empty (a tweet that is only a URL, a mention or emoji); every model handles that.
"""

from __future__ import annotations

import html
import re
import unicodedata

_URL = re.compile(r"(?:https?://|www\.)\S*", re.IGNORECASE)
_MENTION = re.compile(r"@\w+")
_NON_LETTER = re.compile(r"[^A-Za-z]+")


def tokenize(text: str | None) -> list[str]:
    """Clean one tweet and return its tokens.

    Args:
        text: Raw tweet text (``None`` is treated as empty).

    Returns:
        Lowercase ASCII words; ``[]`` when nothing is left.

    Example:
        >>> tokenize("@jo I LOVE #Spark &amp; cafés! http://x.co/1 :)")
        ['i', 'love', 'spark', 'cafes']
    """
    if not text:
        return []
    text = html.unescape(text)
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    # Hashtags need no rule of their own: '#' is a non-letter, so "#happy" keeps "happy".
    return _NON_LETTER.sub(" ", text).lower().split()


def clean(text: str | None) -> str:
    """The cleaned tweet as one space-joined string (what sequence models and transformers read)."""
    return " ".join(tokenize(text))

