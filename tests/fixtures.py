"""Build small data fixtures in the real Sentiment140 format (tests never need ../shared)."""

from __future__ import annotations

import csv
import io
import random
import zipfile
from pathlib import Path

POSITIVE = [
    "I love this so much", "what a great day", "so happy right now", "this is awesome", "best movie ever",
    "thank you so much", "feeling good today", "had a wonderful time", "love my friends", "amazing news",
    "beautiful sunshine today", "excited for the weekend", "my favorite song", "such a fun night", "yay finally",
]
NEGATIVE = [
    "I hate this so much", "what a terrible day", "so sad right now", "this is awful", "worst movie ever",
    "feeling sick today", "had a horrible time", "miss my friends", "bad news again", "ugh so tired",
    "stuck in traffic again", "my phone broke", "so bored and lonely", "this sucks", "crying all night",
]
NEUTRAL = ["going to the store", "the meeting is at noon", "reading the news", "it is tuesday", "bus at eight"]
DECOR = ["", " http://t.co/abc", " @friend", " #mood", " !!", " &amp; more", " lol"]


def tweet(rng: random.Random, pool: list[str]) -> str:
    return rng.choice(pool) + rng.choice(DECOR) + rng.choice(DECOR)


def tag(seed: int, i: int) -> str:
    """A made-up word of letters only, one per ``(seed, i)``: it survives cleaning, so a tweet that carries it
    has a cleaned text of its own (prepare deduplicates on the text and splits by cleaned text)."""
    n, word = seed * 1_000_003 + i, ""
    while True:
        n, r = divmod(n, 26)
        word += "abcdefghijklmnopqrstuvwxyz"[r]
        if not n:
            return "zq" + word


def unique_tweet(rng: random.Random, pool: list[str], seed: int, i: int) -> str:
    """:func:`tweet` plus its :func:`tag`: fixture rows never repeat a cleaned text."""
    return f"{tweet(rng, pool)} {tag(seed, i)}"


def s140_rows(n: int, seed: int = 0, labels: tuple[str, ...] = ("0", "4")) -> list[list[str]]:
    """``n`` rows of six fields, sorted by polarity like the real file (negatives first); every text is unique
    after cleaning, and unique to ``seed`` (the test file of :func:`make_s140_zip` shares none with training)."""
    rng = random.Random(seed)
    pools = {"0": NEGATIVE, "2": NEUTRAL, "4": POSITIVE}
    rows = []
    for i in range(n):
        polarity = labels[i * len(labels) // n]
        rows.append([polarity, str(1_000_000 + i), "Mon Apr 06 22:19:45 PDT 2009", "NO_QUERY",
                     f"user{i % 97}", unique_tweet(rng, pools[polarity], seed, i)])
    return rows


def to_csv_bytes(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("latin-1")


def make_head_tail(root: Path, per_class: int, seed: int = 4) -> Path:
    """``root/sentiment140/head_tail_100k.csv.gz`` shaped like ../shared/data's (``polarity,text``, a header,
    UTF-8): ``per_class`` negatives, then as many positives."""
    import gzip

    rng = random.Random(seed)
    path = root / "sentiment140" / "head_tail_100k.csv.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["polarity", "text"])
        writer.writerows([[label, unique_tweet(rng, NEGATIVE if label == "0" else POSITIVE, seed, i)]
                          for i, label in enumerate(label for label in ("0", "4") for _ in range(per_class))])
    return path


def make_neutral_tsv(path: Path, n: int = 240, seed: int = 7) -> Path:
    """A SemEval-like three-class file (``id<TAB>label<TAB>text``, no header; 15% negative, 35% neutral) whose
    cleaned texts are unique."""
    pools = {"positive": POSITIVE, "neutral": NEUTRAL, "negative": NEGATIVE}
    labels = [("negative" if i % 20 < 3 else "neutral" if i % 20 < 10 else "positive") for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{i}\t{label}\t{pools[label][i % len(pools[label])]} {tag(seed, i)}\n"
                            for i, label in enumerate(labels)), encoding="utf-8")
    return path


def make_s140_zip(path: Path, n_train: int = 400, n_test: int = 60, seed: int = 0,
                  train_bytes: bytes | None = None, with_test: bool = True) -> Path:
    """A zip shaped like the official ``trainingandtestdata.zip``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("training.1600000.processed.noemoticon.csv",
                    train_bytes if train_bytes is not None else to_csv_bytes(s140_rows(n_train, seed)))
        if with_test:
            test = s140_rows(n_test, seed + 1, labels=("0", "2", "4"))
            for i, row in enumerate(test):
                row[1] = str(14_000 + i)
            zf.writestr("testdata.manual.2009.06.14.csv", to_csv_bytes(test))
    return path


def train_failing_to_save(family: str, settings, **options) -> None:
    """``ml.training.train`` whose fit completes but whose save fails as on a full disk (asserts the OSError)."""
    import pytest

    from ml.predictor import Predictor
    from ml.training import train

    def disk_full(self, path, extra_meta=None):
        raise OSError(28, "No space left on device")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Predictor, "save", disk_full)
        with pytest.raises(OSError, match="No space"):
            train(family, settings, **options)
