"""The one cleaner: each documented rule and the edge cases."""

import pytest

from ml.text import clean, tokenize


@pytest.mark.parametrize(
    ("raw", "tokens"),
    [
        ("fish &amp; chips", ["fish", "chips"]),
        ("&quot;quoted&quot; &lt;3", ["quoted"]),
        ("café naïve", ["cafe", "naive"]),
        ("see http://t.co/x1 now", ["see", "now"]),
        ("see https://example.com/a?b=1&c=2 now", ["see", "now"]),
        ("go to www.example.org today", ["go", "to", "today"]),
        ("@bob thanks @alice_99!", ["thanks"]),
        ("#happy day #SoGood", ["happy", "day", "sogood"]),
        ("it's 2day!!", ["it", "s", "day"]),
        ("RT @user: Great news", ["rt", "great", "news"]),
        ("I LOVE it", ["i", "love", "it"]),
        ("tabs\tand\nnewlines", ["tabs", "and", "newlines"]),
        ("hello😀world", ["hello", "world"]),
        ("mail me at a@b.com", ["mail", "me", "at", "a", "com"]),
    ],
)
def test_rules(raw, tokens):
    assert tokenize(raw) == tokens


@pytest.mark.parametrize("raw", ["", None, "   ", "http://t.co/abc", "@someone", "😀😀🎉", "привет мир", "1234 !!!", "&amp;"])
def test_empty_results(raw):
    assert tokenize(raw) == []
    assert clean(raw) == ""


def test_non_latin_mixed_keeps_latin_words():
    assert tokenize("東京 is great") == ["is", "great"]


def test_very_long_input_is_linear_and_complete():
    text = ("good @x http://y.z #tag " * 20_000).strip()
    tokens = tokenize(text)
    assert tokens[:2] == ["good", "tag"] and len(tokens) == 40_000


def test_clean_joins_tokens():
    assert clean("  Hello,   WORLD!! ") == "hello world"


def test_idempotent():
    raw = "RT @a: LOVE #Spark &amp; cafés http://x.co :)"
    assert tokenize(clean(raw)) == tokenize(raw)
