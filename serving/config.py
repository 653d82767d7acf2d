"""Settings of the BentoML service, read once from ``SENTIMENT_*`` environment variables.

They are read when :mod:`serving.service` is imported, because BentoML fixes the batching parameters and the bind
address when the service class is declared. Invalid values fail at start with the variable's name.

==========================  ===========================  ==========================================================
variable                    default                      meaning
==========================  ===========================  ==========================================================
SENTIMENT_MODEL_TAG         ``tweet-sentiment:latest``   model store tag the service loads
SENTIMENT_API_KEY           unset                        when set, API calls need ``Authorization: Bearer <key>``
SENTIMENT_MAX_TEXTS         1024                         most texts in one ``/classify`` request (else 413)
SENTIMENT_MAX_CHARS         1000                         most characters in one text (else 422)
SENTIMENT_MAX_BODY_BYTES    derived from the two above   most bytes in one request body (else 413)
SENTIMENT_MAX_BATCH_SIZE    256                          adaptive batching: most texts per model call
SENTIMENT_MAX_LATENCY_MS    10000                        adaptive batching: longest a text may queue (else 503)
SENTIMENT_HOST              ``127.0.0.1``                bind address (``bentoml serve --host`` overrides it)
SENTIMENT_PORT              3000                         port (``bentoml serve --port`` overrides it)
SENTIMENT_WORKERS           1                            worker processes (each loads the model)
SENTIMENT_TIMEOUT_S         60                           request timeout in seconds
SENTIMENT_NEUTRAL_LOW/HIGH  the packaged model's band    Neutral band on P(positive) for binary models
==========================  ===========================  ==========================================================
"""

from __future__ import annotations

from ipaddress import ip_address

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ml.errors import ConfigError

MODEL_NAME = "tweet-sentiment"
#: Worst case of JSON bytes per text character (``\\uXXXX`` escapes), used to derive the body limit.
_BYTES_PER_CHAR = 6


class ServingSettings(BaseSettings):
    """Limits, batching and access settings of the service. Each field is ``SENTIMENT_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="SENTIMENT_", extra="ignore", frozen=True)

    model_tag: str = Field(default=f"{MODEL_NAME}:latest", description="Model store tag to serve.")
    api_key: SecretStr | None = Field(
        default=None, description="When set, API calls need `Authorization: Bearer <key>` (else 401)."
    )
    max_texts: int = Field(default=1024, ge=1, le=100_000, description="Most texts per /classify request.")
    max_chars: int = Field(default=1000, ge=1, le=1_000_000, description="Most characters per text.")
    max_body_bytes: int | None = Field(
        default=None, ge=64, description="Most bytes per request body (default: derived from the two limits)."
    )
    max_batch_size: int = Field(default=256, ge=1, le=100_000, description="Most texts per model call.")
    max_latency_ms: int = Field(default=10_000, ge=1, description="Longest a text may wait in the batch queue.")
    host: str = Field(default="127.0.0.1", description="Bind address.")
    port: int = Field(default=3000, ge=1, le=65535, description="Port.")
    workers: int = Field(default=1, ge=1, le=64, description="Worker processes.")
    timeout_s: float = Field(default=60.0, gt=0, description="Request timeout in seconds.")
    neutral_low: float | None = Field(default=None, ge=0.0, le=1.0, description="Override of the band's low edge.")
    neutral_high: float | None = Field(default=None, ge=0.0, le=1.0, description="Override of the band's high edge.")

    @field_validator("host")
    @classmethod
    def _ip(cls, value: str) -> str:
        ip_address(value)  # BentoML wants an IP address, not a host name
        return value

    @field_validator("api_key")
    @classmethod
    def _no_blank_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None  # SENTIMENT_API_KEY="" means no key
        return value

    @model_validator(mode="after")
    def _band(self) -> ServingSettings:
        if (self.neutral_low is None) != (self.neutral_high is None):
            raise ValueError("set both SENTIMENT_NEUTRAL_LOW and SENTIMENT_NEUTRAL_HIGH, or neither")
        if self.neutral_low is not None and self.neutral_low > self.neutral_high:
            raise ValueError("neutral_low must not exceed neutral_high")
        return self

    @property
    def body_limit(self) -> int:
        """Most bytes accepted in one request body."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        return self.max_texts * (self.max_chars * _BYTES_PER_CHAR + 8) + 4096

    @property
    def band_override(self) -> tuple[float, float] | None:
        if self.neutral_low is None:
            return None
        return (self.neutral_low, self.neutral_high)


def serving_settings(**overrides) -> ServingSettings:
    """Read and validate the service settings; errors name the variables."""
    try:
        return ServingSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'SENTIMENT_' + '.'.join(map(str, err['loc'])).upper() if err['loc'] else 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid serving settings: {problems}") from None
