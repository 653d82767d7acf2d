"""The folders and files of one stream, ``<home>/stream/<name>/``, each overridable from the command line."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ml.settings import Settings

#: Landing files the job reads (the ingest bridge renames them into place; hidden temp names are ignored).
LANDING_GLOB = "part-*.jsonl"


@dataclass(frozen=True)
class StreamPaths:
    """Where a stream keeps its files.

    Attributes:
        root: ``<home>/stream/<name>/``.
        landing: JSONL files written by the ingest bridge (``part-*.jsonl``).
        output: the scored posts (parquet, partitioned; ``_spark_metadata`` lists the committed files).
        checkpoint: Spark checkpoints: ``main/`` (the scoring query; ``socket/`` with the socket source) and
            ``deadletter/``.
        deadletter: malformed lines with the reason (JSON lines, partitioned by date).
        status: ``status.json``, rewritten atomically after every micro-batch.
        lock: ``driver.lock``, held (flock) by the running driver.
        stop_file: ``stop``: when it appears, the driver stops after the running micro-batch.
    """

    root: Path
    landing: Path
    output: Path
    checkpoint: Path
    deadletter: Path
    status: Path
    lock: Path
    stop_file: Path
    #: The main query's checkpoint under ``checkpoint/``: ``main`` (file source) or ``socket`` (socket source).
    main: str = "main"

    @classmethod
    def under(cls, root: Path) -> StreamPaths:
        root = Path(root)
        return cls(root=root, landing=root / "landing", output=root / "output", checkpoint=root / "checkpoint",
                   deadletter=root / "deadletter", status=root / "status.json", lock=root / "driver.lock",
                   stop_file=root / "stop")

    @classmethod
    def for_stream(cls, settings: Settings, name: str | None = None, **overrides: Path | None) -> StreamPaths:
        """The default layout of stream ``name`` (default ``stream.name``), with ``overrides`` (None: default)."""
        paths = cls.under(settings.stream_dir(name))
        given = {key: Path(value).expanduser().resolve() for key, value in overrides.items() if value is not None}
        return replace(paths, **given) if given else paths

    @property
    def main_checkpoint(self) -> Path:
        return self.checkpoint / self.main

    @property
    def deadletter_checkpoint(self) -> Path:
        return self.checkpoint / "deadletter"

    def create(self) -> None:
        """Create the folders the job writes into (not the checkpoint: Spark does, and its absence means new)."""
        for folder in (self.root, self.landing, self.output.parent, self.deadletter.parent, self.checkpoint,
                       self.status.parent, self.lock.parent):
            folder.mkdir(parents=True, exist_ok=True)
