"""Exceptions with messages meant for users: the CLI prints them as one line and exits non-zero."""


class MLError(Exception):
    """Base class for every error the platform reports to a user."""


class ConfigError(MLError):
    """A setting is missing or invalid."""


class DataError(MLError):
    """Input data is missing, truncated, corrupt or malformed."""


class ModelError(MLError):
    """A model cannot be trained, found or loaded."""
