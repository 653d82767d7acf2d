"""Checkpoints of a running fit, shared by the neural families (GRU/LSTM and transformers).

A fit keeps them in a work directory: ``last/`` (written atomically, with a ``state.json`` naming the run by its
:func:`fingerprint`) plus whatever best weights the family keeps. A retried fit of the same run resumes from
``last``; a checkpoint of another run is discarded so it can never be resumed by mistake. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ml.predictor import atomic_dir

log = logging.getLogger(__name__)

LAST = "last"
STATE_FILE = "state.json"


def work_dir_option(settings, family: str, options: dict[str, Any]) -> Path:
    """Where a family keeps the checkpoints of a running fit: ``options["work_dir"]``, else the folder
    ``work``, run id, family under the platform's home (stable across retries of a run, so a retry can resume)."""
    return Path(options.get("work_dir") or Path(settings.home) / "work" / settings.training.run_id / family)


def ensure_work_dir(work_dir: Path | None, family: str) -> Path:
    """``work_dir``, created; a new temporary directory when it is ``None`` (a fit outside any run)."""
    path = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix=f"{family}-work-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def fingerprint(data: Iterable[bytes], settings: Any) -> str:
    """Identifies a training run: the bytes of its data, then its settings as sorted JSON."""
    h = hashlib.sha256()
    for chunk in data:
        h.update(chunk)
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()


@contextmanager
def write_last(work: Path, state: dict[str, Any]) -> Iterator[Path]:
    """Yield a temporary directory for the family's checkpoint files; on success it becomes ``work/last``,
    with ``state`` (which names the run by ``state["fingerprint"]``) as its ``state.json``."""
    with atomic_dir(work / LAST) as tmp:
        yield tmp
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))


def resumable_state(work: Path, fingerprint: str, discard_with: Sequence[str] = ()) -> dict[str, Any] | None:
    """The ``state.json`` of the checkpoint ``work/last`` when it belongs to the run ``fingerprint``.

    ``None`` when there is none. A checkpoint of another run (other data or settings) is removed, with the
    ``discard_with`` paths under ``work`` that belong to it (best weights).
    """
    state_file = work / LAST / STATE_FILE
    if not state_file.is_file():
        return None
    state = json.loads(state_file.read_text())
    if state.get("fingerprint") == fingerprint:
        return state
    log.warning("ignoring the checkpoint in %s: it belongs to another run (data or settings differ)", work)
    discard(work, discard_with)
    return None


def discard(work: Path, others: Sequence[str] = ()) -> None:
    """Remove the checkpoint ``work/last`` and the ``others`` paths under ``work`` (files or folders)."""
    for path in (work / name for name in (LAST, *others)):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
