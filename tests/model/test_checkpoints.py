"""The one checkpoint mechanism of the neural families: fingerprint, atomic ``last``, resume, discard."""

from __future__ import annotations

import hashlib
import json

import pytest

from ml.models.checkpoints import discard, fingerprint, resumable_state, write_last


def test_fingerprint_hashes_the_data_then_the_settings_as_sorted_json():
    expected = hashlib.sha256(b"ab" + b"cd" + json.dumps({"a": 1, "b": [2]}, sort_keys=True).encode()).hexdigest()
    assert fingerprint([b"ab", b"cd"], {"b": [2], "a": 1}) == expected   # the digests the fits wrote before
    assert fingerprint([b"ab", b"ce"], {"b": [2], "a": 1}) != expected


def test_last_is_written_whole_resumed_by_its_run_and_discarded_for_another(tmp_path):
    work = tmp_path / "work"
    with write_last(work, {"fingerprint": "run-1", "step": 3}) as tmp:
        (tmp / "model.bin").write_bytes(b"weights")
    assert sorted(p.name for p in (work / "last").iterdir()) == ["model.bin", "state.json"]
    assert resumable_state(work, "run-1") == {"fingerprint": "run-1", "step": 3}

    with pytest.raises(RuntimeError), write_last(work, {"fingerprint": "run-1", "step": 4}) as tmp:
        (tmp / "model.bin").write_bytes(b"half")
        raise RuntimeError("killed while writing")
    assert resumable_state(work, "run-1")["step"] == 3                      # the old checkpoint stands
    assert [p.name for p in work.iterdir()] == ["last"]                     # no temporary leftovers

    (work / "best").mkdir()
    (work / "best.weights.h5").write_bytes(b"x")
    assert resumable_state(work, "run-2", discard_with=("best", "best.weights.h5")) is None
    assert list(work.iterdir()) == []                                       # another run's: all of it goes
    assert resumable_state(work, "run-2") is None
    discard(work, ("nothing-here",))                                        # absent paths are fine
