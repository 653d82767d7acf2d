"""Errors of the ingest, reported by the CLI as one line (they are :class:`ml.errors.MLError`)."""

from __future__ import annotations

from ml.errors import MLError


class IngestError(MLError):
    """The ingest cannot go on: a bad option, a refused credential, an unreadable input."""


class SourceForbidden(IngestError):
    """The source refuses this account (e.g. an X API tier without the filtered stream)."""
