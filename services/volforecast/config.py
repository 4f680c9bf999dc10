"""Settings shared by every command: one pydantic-settings class with the ``VOLF_`` prefix.

Built once at the entry point (command-line flags override environment variables, which override
the defaults) and passed down; nothing here reads the environment at import time.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from volforecast.errors import ConfigError


class DataSource(StrEnum):
    YAHOO = "yahoo"
    CSV = "csv"
    SAMPLE = "sample"


class Settings(BaseSettings):
    """All configuration; field descriptions are the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="VOLF_",
        extra="forbid",
        validate_default=True,
        # Compose passes unset variables as empty strings: they mean "use the default".
        env_ignore_empty=True,
    )

    data_source: DataSource = Field(
        DataSource.YAHOO,
        description="Where market data comes from: yahoo (download), csv (read files), "
        "sample (offline data shipped with the arch package).",
    )
    data_dir: Path = Field(
        Path("data"), description="Download cache (yahoo) or input folder (csv)."
    )
    models_dir: Path = Field(
        Path("models"), description="Where models, baselines and histories live."
    )
    symbol: str = Field(
        "SPY",
        pattern=r"^[A-Z][A-Z0-9.\-]{0,9}$",
        description="Ticker whose volatility is forecast (csv: <symbol>_daily.csv); VIX stays "
        "the implied-volatility input.",
    )
    start: dt.date = Field(dt.date(2010, 1, 1), description="First date of history to use.")
    as_of: dt.date | None = Field(
        None, description="Use only rows dated on or before this day (replay); default: all."
    )
    horizon: int = Field(5, ge=1, le=66, description="Forecast horizon in trading days.")
    seed: int = Field(42, description="Random seed of the base learners.")
    lock_timeout: float = Field(
        600.0, ge=0, description="Seconds to wait for another run's lock on the models directory."
    )
    archive_keep: int = Field(
        4, ge=0, description="Previous training sets kept under models/archive/."
    )
    fail_on_retrain: bool = Field(
        False, description="monitor exits 10 when retraining is advised (for cron alerts)."
    )
    eval_start: dt.date = Field(
        dt.date(2013, 1, 1), description="evaluate: first day forecast out of sample."
    )
    refit_every: int = Field(
        63, ge=1, description="evaluate: trading days between refits of every model."
    )
    output_dir: Path | None = Field(
        None,
        description="evaluate/report: where files go; default <models_dir>/evaluation "
        "(evaluate) or <models_dir>/reports (report).",
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")

    @field_validator("symbol", mode="before")
    @classmethod
    def _upper_symbol(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return upper


def build_settings(**overrides: Any) -> Settings:
    """Settings from the environment with ``overrides`` (command-line values) on top.

    Raises ConfigError naming the offending option and what it accepts.
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            flag = "--" + name.replace("_", "-")
            env = "VOLF_" + name.upper()
            problems.append(f"{flag} / {env}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from exc
