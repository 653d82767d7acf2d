"""One typed settings object for the whole platform, in sections (:mod:`ml.settings.sections`).

Values come, in order of precedence, from keyword arguments, environment variables (each setting has exactly one,
usually ``SENTIMENT_<KEY>``), an optional TOML file named by ``SENTIMENT_CONFIG`` (flat keys or ``[section]``
tables), then the defaults. Invalid values fail at once with the variable's and the field's names. Reading
settings has no side effects: folders are created by the steps that write into them. ``python -m ml config``
prints every setting, its value, where the value came from, and its help.

Layout of the artifacts root (``SENTIMENT_HOME``)::

    data/raw/         downloaded archives (+ .sha256 sidecars)
    data/processed/<dataset>/  train/validation/test parquet + manifest.json (dataset: default, neutral, ...)
    models/<run>/     one directory per trained model (predictor.json + weights)
    reports/<run>/    leaderboard.{json,md,png}, confusion matrices, run.json
    stream/<name>/    landing, output, checkpoint, dead letters and status of a stream
    cache/, work/     caches (compiled kernels, teacher probabilities) and checkpoints of running fits
    run/              pid files and logs of what `make up` started
    bentoml/          the BentoML model store (BENTOML_HOME), unless set otherwise
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretStr, ValidationError

from ml.errors import ConfigError
from ml.settings.sections import (
    DEFAULT_DATASET,
    NEUTRAL_DATASET,
    OFFICIAL_URL,
    SECTIONS,
    ClusterSettings,
    DashboardSettings,
    DataSettings,
    ModelSettings,
    PathsSettings,
    PlatformSettings,
    ReportSettings,
    ServiceSettings,
    StreamSettings,
    TrainingSettings,
)

OFFICIAL_MD5 = "1647eb110dd2492512e27b9a70d5d1bc"
CONFIG_VARIABLE = "SENTIMENT_CONFIG"


@dataclass(frozen=True)
class Spec:
    """One setting: where it lives, its flat key, its environment variable, its help."""

    section: str
    field: str
    key: str
    env: str
    help: str
    default: Any
    secret: bool


def _specs() -> list[Spec]:
    specs = []
    for section, cls in SECTIONS.items():
        for name, info in cls.model_fields.items():
            extra = info.json_schema_extra or {}
            key = extra.get("key") or name
            secret = "SecretStr" in str(info.annotation)
            specs.append(Spec(section, name, key, extra.get("env") or f"SENTIMENT_{key.upper()}",
                              info.description or "", info.default, secret))
    keys = [s.key for s in specs]
    duplicated = {k for k in keys if keys.count(k) > 1}
    assert not duplicated, f"settings keys must be unique across sections: {duplicated}"
    return specs


SPECS: tuple[Spec, ...] = tuple(_specs())
_BY_KEY = {spec.key: spec for spec in SPECS}
_BY_LOC = {(spec.section, spec.field): spec for spec in SPECS}


class Settings(BaseModel):
    """The platform's settings: ``settings.data.seed``, ``settings.service.port``, ... plus the artifacts layout."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    paths: PathsSettings = PathsSettings()
    data: DataSettings = DataSettings()
    model: ModelSettings = ModelSettings()
    training: TrainingSettings = TrainingSettings()
    service: ServiceSettings = ServiceSettings()
    platform: PlatformSettings = PlatformSettings()
    cluster: ClusterSettings = ClusterSettings()
    stream: StreamSettings = StreamSettings()
    report: ReportSettings = ReportSettings()
    dashboard: DashboardSettings = DashboardSettings()
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    # ------------------------------------------------------------------ where values came from
    def source(self, key: str) -> str:
        """Where the value of ``key`` came from: ``default``, ``env NAME``, ``file PATH`` or ``argument``."""
        if key not in _BY_KEY:
            raise KeyError(key)
        return self._sources.get(key, "default")

    def is_set(self, key: str) -> bool:
        """Whether ``key`` was given (argument, environment or file) rather than left at its default."""
        return self.source(key) != "default"

    def override(self, **overrides: Any) -> Settings:
        """These settings with ``overrides`` (flat keys) on top, validated again."""
        return get_settings(**{**self.given(), **overrides})

    def given(self) -> dict[str, Any]:
        """The values that were given (not defaults), by flat key: enough to rebuild these settings elsewhere."""
        out = {}
        for key in self._sources:
            spec = _BY_KEY[key]
            value = getattr(getattr(self, spec.section), spec.field)
            out[key] = value.get_secret_value() if isinstance(value, SecretStr) else value
        return out

    def describe(self) -> list[dict[str, Any]]:
        """Every setting: key, section, variable, value (secrets masked), source and help."""
        rows = []
        for spec in SPECS:
            value = getattr(getattr(self, spec.section), spec.field)
            if isinstance(value, SecretStr):
                value = "********"
            rows.append({"key": spec.key, "section": spec.section, "env": spec.env,
                         "value": str(value) if isinstance(value, Path) else value,
                         "source": self.source(spec.key), "help": spec.help})
        return rows

    # ------------------------------------------------------------------ the artifacts layout (derived)
    @property
    def home(self) -> Path:
        return self.paths.home

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def processed_dir(self) -> Path:
        """The prepared splits of the dataset ``data.dataset``."""
        return self.data_dir / "processed" / self.data.dataset

    @property
    def models_root(self) -> Path:
        return self.home / "models"

    @property
    def models_dir(self) -> Path:
        """Models of the current run."""
        return self.models_root / self.training.run_id

    @property
    def reports_root(self) -> Path:
        return self.home / "reports"

    @property
    def reports_dir(self) -> Path:
        """Reports of the current run."""
        return self.reports_root / self.training.run_id

    @property
    def stream_root(self) -> Path:
        return self.home / "stream"

    def stream_dir(self, name: str | None = None) -> Path:
        """The folder of a stream (default: ``stream.name``): landing/, output/, checkpoint/, deadletter/,
        status.json."""
        return self.stream_root / (name or self.stream.name)

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def work_dir(self) -> Path:
        """Checkpoints of running fits, by run and family."""
        return self.home / "work"

    @property
    def run_dir(self) -> Path:
        """Pid files and logs of the processes `make up` started."""
        return self.home / "run"

    @property
    def bentoml_home(self) -> Path:
        return self.paths.bentoml_home or self.home / "bentoml"

    @property
    def neutral_band(self) -> tuple[float, float]:
        return self.model.neutral_band


def _route(values: dict[str, dict[str, Any]], sources: dict[str, str], key: str, value: Any, source: str) -> None:
    spec = _BY_KEY.get(key)
    if spec is None:
        raise ConfigError(f"{source}: unknown setting {key!r} (`python -m ml config` lists them)")
    values.setdefault(spec.section, {})[spec.field] = value
    sources[spec.key] = source


def _read_file(path: str, values: dict, sources: dict) -> None:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{CONFIG_VARIABLE}: no such file: {path}")
    try:
        content = tomllib.loads(file.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{CONFIG_VARIABLE}: {path} is not valid TOML: {exc}") from None
    for name, value in content.items():
        if name in SECTIONS and isinstance(value, dict):
            for field, item in value.items():
                spec = _BY_LOC.get((name, field))
                _route(values, sources, spec.key if spec else f"{name}.{field}", item, f"file {path}")
        else:
            _route(values, sources, name, value, f"file {path}")


def get_settings(**overrides: Any) -> Settings:
    """Read and validate the settings; ``overrides`` are flat keys (``seed=7``, ``service_port=3001``).

    Raises:
        ConfigError: one message naming every invalid setting by its variable and field.
    """
    values: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    config_file = os.environ.get(CONFIG_VARIABLE)
    if config_file:
        _read_file(config_file, values, sources)
    for spec in SPECS:
        raw = os.environ.get(spec.env)
        if raw is not None and raw != "":
            _route(values, sources, spec.key, raw, f"env {spec.env}")
    for key, value in overrides.items():
        if value is not None:
            _route(values, sources, key, value, "argument")
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {_describe_errors(exc, values)}") from None
    _check_pairs(settings, sources)
    settings._sources.update(sources)
    return settings


def _check_pairs(settings: Settings, sources: dict[str, str]) -> None:
    if ("neutral_low" in sources) != ("neutral_high" in sources):
        raise ConfigError("invalid settings: set both SENTIMENT_NEUTRAL_LOW and SENTIMENT_NEUTRAL_HIGH (neutral_low "
                          "and neutral_high), or neither")


def _describe_errors(exc: ValidationError, values: dict[str, dict[str, Any]]) -> str:
    problems = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        section = loc[0] if loc else ""
        if len(loc) >= 2 and (section, loc[1]) in _BY_LOC:
            spec = _BY_LOC[(section, loc[1])]
            where = f"{spec.env} ({spec.key})"
        else:  # a rule across a section's fields (the band order): name the fields given
            where = section or "settings"
        message = err["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


__all__ = [
    "DEFAULT_DATASET", "NEUTRAL_DATASET", "OFFICIAL_MD5", "OFFICIAL_URL", "SPECS", "ClusterSettings",
    "DashboardSettings", "DataSettings", "ModelSettings", "PathsSettings", "PlatformSettings", "ReportSettings",
    "ServiceSettings", "Settings", "Spec", "StreamSettings", "TrainingSettings", "get_settings",
]
