"""Settings shared by every command: one pydantic-settings class with the ``VOLF_`` prefix.

Built once at the entry point (command-line flags override environment variables, which override
the defaults) and passed down; nothing here reads the environment at import time.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from volforecast.errors import ConfigError

TICKER = r"^[A-Z][A-Z0-9.\-]{0,9}$"
# The underlying whose set lives at the top of the models directory, under the spec's names.
PRIMARY_SYMBOL = "SPY"
# The implied-volatility input of every symbol without its own entry in VOLF_IMPLIED_VOL.
DEFAULT_IMPLIED_VOL = "VIX"


class DataSource(StrEnum):
    YAHOO = "yahoo"
    CSV = "csv"
    SAMPLE = "sample"


# A shorter HMAC key is guessable; 16 bytes is the floor RFC 2104 suggests for SHA-256 (L/2).
MIN_KEY_BYTES = 16

# Every command-line flag that sets a Settings field: flag -> (field, extra argparse options).
# Error messages name a field by its first flag here.
SETTING_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "--source": ("data_source", {"choices": [s.value for s in DataSource]}),
    "--data-dir": ("data_dir", {}),
    "--models-dir": ("models_dir", {}),
    "--start": ("start", {"metavar": "YYYY-MM-DD"}),
    "--as-of": ("as_of", {"metavar": "YYYY-MM-DD"}),
    "--end": ("as_of", {"metavar": "YYYY-MM-DD"}),
    "--horizon": ("horizon", {"type": int}),
    "--seed": ("seed", {"type": int}),
    "--threads": ("threads", {"type": int, "metavar": "N"}),
    "--lock-timeout": ("lock_timeout", {"type": float, "metavar": "SECONDS"}),
    "--log-level": ("log_level", {}),
    "--archive-keep": ("archive_keep", {"type": int}),
    "--fail-on-retrain": ("fail_on_retrain", {"action": "store_true"}),
    "--max-data-age": ("max_data_age", {"type": int, "metavar": "DAYS"}),
    "--bad-rows": ("bad_rows", {"choices": ["repair", "fail"]}),
    "--allow-stale-data": ("allow_stale_data", {"action": "store_true"}),
    "--accept-data-through": ("accept_data_through", {"metavar": "YYYY-MM-DD"}),
    "--max-set-age": ("max_set_age", {"type": int, "metavar": "DAYS"}),
    "--eval-start": ("eval_start", {"metavar": "YYYY-MM-DD"}),
    "--refit-every": ("refit_every", {"type": int, "metavar": "DAYS"}),
    "--output": ("output_dir", {"metavar": "DIR"}),
    "--symbol": ("symbol", {"metavar": "TICKER"}),
    "--symbols": ("symbols", {"metavar": "A,B,C"}),
    "--universe-file": ("universe_file", {"metavar": "FILE"}),
    "--pool-universe": ("pool_universe", {"metavar": "FILE"}),
    "--pool-data-dir": ("pool_data_dir", {"metavar": "DIR"}),
    "--horizons": ("horizons", {"metavar": "H1,H2"}),
    "--quantiles": ("quantile_levels", {"metavar": "Q1,Q2"}),
    "--implied-vol": ("implied_vol", {"metavar": "SYM=IV,..."}),
    "--workers": ("workers", {"type": int, "metavar": "N"}),
    "--scheduler": ("dask_scheduler", {"metavar": "tcp://HOST:8786"}),
    "--replay-start": ("replay_start", {"metavar": "YYYY-MM-DD"}),
    "--train-every": ("train_every", {"type": int, "metavar": "DAYS"}),
    "--no-retrain-on-advice": ("retrain_on_advice", {"action": "store_const", "const": False}),
    "--inject": ("inject", {"metavar": "KIND@DAY,..|every:N"}),
    "--inject-other": ("inject_other", {"metavar": "SYMBOL"}),
    "--metrics-file": ("metrics_file", {"metavar": "FILE"}),
    "--candidate": ("candidate", {"metavar": "NAME"}),
    "--dev-start": ("dev_start", {"metavar": "YYYY-MM-DD"}),
    "--dev-eval-start": ("dev_eval_start", {"metavar": "YYYY-MM-DD"}),
}


def option_names(field: str) -> str:
    """How a user sets ``field``: its flag (when it has one) and its environment variable."""
    flag = next((f for f, (name, _) in SETTING_FLAGS.items() if name == field), None)
    env = "VOLF_" + field.upper()
    return f"{flag} / {env}" if flag else env


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
        PRIMARY_SYMBOL,
        pattern=r"^[A-Z][A-Z0-9.\-]{0,9}$",
        description="Ticker whose volatility is forecast (csv: <symbol>_daily.csv). SPY's set "
        "is at the top of the models directory, any other's under symbols/<SYMBOL>/.",
    )
    symbols: Annotated[list[str] | None, NoDecode] = Field(
        None,
        description="A universe: comma-separated tickers; train, monitor, predict and evaluate "
        "run once per symbol (on Dask) and print one summary. Overrides --symbol.",
    )
    universe_file: Path | None = Field(
        None,
        description="A universe from a file: one ticker per line, # starts a comment "
        "(instead of --symbols).",
    )
    pool_universe: Path | None = Field(
        None,
        description="Partial pooling with the series of this universe file (csv: their files "
        "in --pool-data-dir). train: every model's HAR core is shrunk towards the panel of "
        "these series (the model's own left out) before the trees correct it; evaluate: adds "
        "har_core_pooled and ensemble_pooled beside the own-series models.",
    )
    pool_data_dir: Path | None = Field(
        None,
        description="train, evaluate (csv): the folder of the pool's <symbol>_daily.csv files "
        "(default: the pool file's folder).",
    )
    horizons: Annotated[list[int] | None, NoDecode] = Field(
        None,
        description="evaluate: comma-separated horizons, one benchmark each (instead of "
        "--horizon).",
    )
    quantile_levels: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [0.05, 0.25, 0.5, 0.75, 0.95],
        description="train, evaluate: levels of the realized-volatility quantiles a set "
        "predicts (comma-separated, strictly between 0 and 1; 0.05 and 0.95 always included, "
        "they bound the 90% interval).",
    )
    implied_vol: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Implied-volatility input per symbol, e.g. QQQ=VXN,GLD=GVZ (csv: "
        "<iv>_daily.csv, yahoo: ^<IV>); symbols not listed use VIX.",
    )
    workers: int = Field(
        0,
        ge=0,
        le=1024,
        description="Dask workers of the embedded local cluster (one thread each) for universe "
        "runs and evaluate; 0: the CPUs this process may use.",
    )
    dask_scheduler: str | None = Field(
        None,
        pattern=r"^(tcp|tls|ucx|inproc)://\S+$",
        description="Address of an existing Dask scheduler (e.g. tcp://dask-scheduler:8786): "
        "run the same work there instead of on a local cluster.",
    )
    start: dt.date = Field(dt.date(2010, 1, 1), description="First date of history to use.")
    as_of: dt.date | None = Field(
        None, description="Use only rows dated on or before this day (replay); default: all."
    )
    horizon: int = Field(5, ge=1, le=66, description="Forecast horizon in trading days.")
    # LightGBM takes a signed 32-bit seed.
    seed: int = Field(42, ge=0, le=2**31 - 1, description="Random seed of the base learners.")
    # One thread by default: a fit on daily history (a few thousand rows, shallow trees) is too
    # small for an OpenMP team to pay off — on 2 CPUs, --threads 0 made train 1.33x slower idle
    # and 1.29x beside busy processes, with identical models (bench/bench.py --threads 1,0).
    threads: int = Field(
        1,
        ge=0,
        le=1024,
        description="Threads per model fit; 0: the CPUs this process may use (affinity and "
        "cgroup quota).",
    )
    signing_key: SecretStr | None = Field(
        None,
        description="Secret for HMAC-SHA256 signed model sets: train signs, every reader "
        "refuses an unsigned or wrongly signed set. Default: unsigned.",
    )
    signing_key_file: Path | None = Field(
        None, description="File holding the signing key (instead of VOLF_SIGNING_KEY)."
    )
    lock_timeout: float = Field(
        600.0, ge=0, description="Seconds to wait for another run's lock on the models directory."
    )
    archive_keep: int = Field(
        4, ge=0, description="Previous training sets kept under models/archive/."
    )
    fail_on_retrain: bool = Field(
        False, description="monitor exits 10 when retraining is advised (for cron alerts)."
    )
    max_data_age: int = Field(
        3,
        ge=0,
        description="monitor/predict: when the download fails, run on the cache if its last "
        "row is at most this many weekdays old (exit 12), else exit 3.",
    )
    accept_data_through: dt.date | None = Field(
        None,
        description="monitor: the bars up to this day are confirmed real (a stock's real "
        "crash), so the feed check (exit 13) skips them.",
    )
    max_set_age: int = Field(
        10,
        ge=1,
        le=260,
        description="monitor: advise retraining when the live set's data ends more than this "
        "many trading days before the newest bar (the weekly schedule keeps it under 5).",
    )
    bad_rows: Literal["repair", "fail"] = Field(
        "repair",
        description="a bad intraday tick (an open, high or low more than 3 times away from "
        "the closes around it): repair it from the closes, with a warning naming the row, or "
        "fail (exit 3).",
    )
    allow_stale_data: bool = Field(
        False,
        description="train: when the download fails, train on the cache anyway (by default "
        "train refuses stale data).",
    )
    eval_start: dt.date = Field(
        dt.date(2013, 1, 1), description="evaluate: first day forecast out of sample."
    )
    refit_every: int = Field(
        63, ge=1, description="evaluate: trading days between refits of every model."
    )
    output_dir: Path | None = Field(
        None,
        description="evaluate/report/replay: where files go; default <models_dir>/evaluation "
        "(evaluate), <models_dir>/reports (report) or <models_dir>/replay (replay).",
    )
    candidate: str | None = Field(
        None,
        description="train/evaluate: the ensemble's settings by name (one of `volforecast "
        "select`'s candidates); default: the packaged selection's choice for the horizon.",
    )
    dev_start: dt.date = Field(
        dt.date(1995, 1, 1),
        description="select: first date of history of the development period.",
    )
    dev_eval_start: dt.date = Field(
        dt.date(2003, 1, 1),
        description="select: first day scored in the development period (which ends the day "
        "before --eval-start).",
    )
    replay_start: dt.date = Field(
        dt.date(2013, 1, 1), description="replay: first day of the replayed production loop."
    )
    train_every: int = Field(
        5, ge=1, le=260, description="replay: trading days between scheduled trainings (5: weekly)."
    )
    inject: str | None = Field(
        None,
        description="replay: faults to inject after the clean replay, KIND@YYYY-MM-DD,... or "
        "every:N (N days per kind, spread over the replay); kinds in "
        "services/monitor/README.md.",
    )
    inject_other: str = Field(
        "TLT",
        pattern=r"^[A-Z][A-Z0-9.\-]{0,9}$",
        description="replay: the series a wrong_set injection's set is trained on.",
    )
    retrain_on_advice: bool = Field(
        True,
        description="replay: the monitor-following policy also trains when the monitor says "
        "'retrain now' (--no-retrain-on-advice: never).",
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    metrics_file: Path | None = Field(
        None,
        description="train/monitor: after a successful run, write its metrics to this file "
        "(Prometheus text format, for node_exporter's textfile collector); one file per "
        "command.",
    )
    pushgateway_url: str | None = Field(
        None,
        description="train/monitor: after a successful run, push its metrics to this "
        "Prometheus Pushgateway (e.g. http://pushgateway:9091).",
    )

    def check_as_of(self, today: dt.date) -> None:
        """A replay day must not be in the future: data cannot exist yet, and history lines
        would carry a date that has not happened. One day of slack for time zones ahead of UTC."""
        if self.as_of is not None and self.as_of > today + dt.timedelta(days=1):
            raise ConfigError(
                f"{option_names('as_of')} {self.as_of} is after today ({today}, UTC): a replay "
                "cannot look into the future. Fix: give a past day, or leave it unset to use "
                "all data."
            )

    def signing_secret(self) -> bytes | None:
        """The signing key's bytes, from the key or the key file; None when sets are unsigned."""
        if self.signing_key is not None and self.signing_key_file is not None:
            raise ConfigError(
                "both VOLF_SIGNING_KEY and VOLF_SIGNING_KEY_FILE are set. Fix: set only one."
            )
        if self.signing_key is not None:
            secret = self.signing_key.get_secret_value().encode()
        elif self.signing_key_file is not None:
            try:
                secret = self.signing_key_file.read_bytes().strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read the signing key file {self.signing_key_file} "
                    f"({exc.strerror or exc}). Fix: check VOLF_SIGNING_KEY_FILE."
                ) from exc
        else:
            return None
        if len(secret) < MIN_KEY_BYTES:
            raise ConfigError(
                f"the signing key has {len(secret)} bytes; at least {MIN_KEY_BYTES} are needed. "
                "Fix: use a random key, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`."
            )
        return secret

    def universe(self) -> list[str] | None:
        """The symbols of a universe run (from --symbols or --universe-file), or None for a
        single-symbol run."""
        if self.symbols is not None and self.universe_file is not None:
            raise ConfigError(
                "both --symbols / VOLF_SYMBOLS and --universe-file / VOLF_UNIVERSE_FILE are "
                "set. Fix: give the universe one way."
            )
        if self.universe_file is None:
            return self.symbols
        return read_ticker_file(self.universe_file, "--universe-file / VOLF_UNIVERSE_FILE")

    def pool_symbols(self) -> list[str] | None:
        """The symbols of --pool-universe (their csv files sit beside it), or None."""
        if self.pool_universe is None:
            return None
        return read_ticker_file(self.pool_universe, "--pool-universe / VOLF_POOL_UNIVERSE")

    def for_symbol(self, symbol: str, **changes: Any) -> Settings:
        """These settings for one symbol of a universe (and any other ``changes``)."""
        return self.model_copy(update={"symbol": symbol, "symbols": None, "universe_file": None,
                                       **changes})  # fmt: skip

    def implied_vol_for(self, symbol: str) -> str:
        return self.implied_vol.get(symbol, DEFAULT_IMPLIED_VOL)

    @field_validator("symbol", mode="before")
    @classmethod
    def _upper_symbol(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("symbols", mode="before")
    @classmethod
    def _symbol_list(cls, value: Any) -> Any:
        return _tickers(value) if isinstance(value, str) else value

    @field_validator("horizons", mode="before")
    @classmethod
    def _horizon_list(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        items = [v.strip() for v in value.split(",") if v.strip()]
        if not items:
            raise ValueError("give at least one horizon, e.g. 1,5,22")
        bad = [v for v in items if not v.isdigit()]
        if bad:
            raise ValueError(f"not a whole number of trading days: {', '.join(bad)} (e.g. 1,5,22)")
        # As integers, so that "5" and "05" are one horizon, evaluated once.
        return list(dict.fromkeys(int(v) for v in items))

    @field_validator("horizons")
    @classmethod
    def _horizons_in_range(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(not 1 <= h <= 66 for h in value):
            raise ValueError("every horizon must be between 1 and 66 trading days")
        return value

    @field_validator("quantile_levels", mode="before")
    @classmethod
    def _quantile_list(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        items = [v.strip() for v in value.split(",") if v.strip()]
        try:
            return [float(v) for v in items]
        except ValueError:
            raise ValueError(
                f"not a list of numbers: {value!r} (e.g. 0.05,0.25,0.5,0.75,0.95)"
            ) from None

    @field_validator("quantile_levels")
    @classmethod
    def _quantiles_in_range(cls, value: list[float]) -> list[float]:
        bad = [v for v in value if not 0.0 < v < 1.0]
        if bad:
            raise ValueError(f"quantile levels must be strictly between 0 and 1, got {bad}")
        return sorted({round(v, 6) for v in [*value, 0.05, 0.95]})

    @field_validator("implied_vol", mode="before")
    @classmethod
    def _implied_vol_map(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        mapping: dict[str, str] = {}
        for item in (v.strip() for v in value.split(",")):
            if not item:
                continue
            symbol, sep, iv = (part.strip() for part in item.partition("="))
            if not sep or not symbol or not iv.lstrip("^"):
                raise ValueError(f"{item!r} is not SYMBOL=INDEX (e.g. QQQ=VXN)")
            [sym] = _tickers(symbol)
            [vol] = _tickers(iv.lstrip("^"))
            if sym in mapping and mapping[sym] != vol:
                raise ValueError(
                    f"{sym} is given twice ({sym}={mapping[sym]}, {sym}={vol}): keep one"
                )
            mapping[sym] = vol
        return mapping

    @field_validator("pushgateway_url")
    @classmethod
    def _pushgateway_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return pushgateway_address(value.strip())

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return upper


def pushgateway_address(url: str) -> str:
    """``url`` if prometheus-client can push to it, else ValueError saying why.

    The client prepends ``http://`` to an address without a scheme (``pushgateway:9091``); the
    same is accepted here, so that a bad address is a configuration error before any work
    instead of a failure after the run has written its results.
    """
    from urllib.parse import urlsplit

    full = url if "://" in url else f"http://{url}"
    try:
        parts = urlsplit(full)
        host, _port = parts.hostname, parts.port  # .port raises for a port that is no number
    except ValueError as exc:
        raise ValueError(f"not a URL ({exc}); e.g. http://pushgateway:9091") from exc
    if parts.scheme not in ("http", "https"):
        raise ValueError(
            f"scheme {parts.scheme!r} is not http or https; e.g. http://pushgateway:9091"
        )
    if not host or any(c.isspace() for c in full):
        raise ValueError("not a URL (no host, or a space in it); e.g. http://pushgateway:9091")
    return url


def _tickers(text: str) -> list[str]:
    """Comma-separated tickers, upper-cased, duplicates dropped (first wins)."""
    import re

    items = [t.strip().upper() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError("give at least one ticker, e.g. SPY,QQQ")
    bad = [t for t in items if not re.fullmatch(TICKER, t)]
    if bad:
        raise ValueError(f"not a ticker: {', '.join(bad)} (letters, digits, '.', '-'; at most 10)")
    return list(dict.fromkeys(items))


def read_ticker_file(path: Path, flag: str) -> list[str]:
    """The tickers of a universe file: one per line, ``#`` starts a comment."""
    try:
        # utf-8-sig: a byte-order mark (Windows editors write one) is not part of a ticker.
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"the universe file {path} is not UTF-8 text ({exc.reason} at byte "
            f"{exc.start}). Fix: save it as UTF-8 (one ticker per line)."
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot read the universe file {path} ({exc.strerror or exc}). Fix: check {flag}."
        ) from exc
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    try:
        return _tickers(",".join(line for line in lines if line.strip()))
    except ValueError as exc:
        raise ConfigError(f"universe file {path}: {exc}") from exc


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
            # The option, not pydantic's path into it ("horizons.0" is item 0 of --horizons).
            name = str(err["loc"][0]) if err["loc"] else "settings"
            item = f" (item {err['loc'][1]})" if len(err["loc"]) > 1 else ""
            shown = "(hidden)" if "signing_key" in name else repr(err.get("input"))
            problems.append(f"{option_names(name)}{item}: {err['msg']} (got {shown})")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from exc
