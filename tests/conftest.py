"""Shared fixtures: seeded synthetic markets, CSV writers and a stub downloader (no network)."""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from volforecast.config import Settings, build_settings
from volforecast.runtime import prefer_passive_waiting

# Before any test imports xgboost or lightgbm, as the CLI does: a busy CI host must not turn
# the suite's model fits into spinning thread teams.
prefer_passive_waiting()
# Day 800 of the synthetic data: the day the `trained` (and so `project`) fixture trains to.
TRAINED_ON = "2018-01-25"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def synthetic_market(
    n_days: int = 900, seed: int = 7, start: str = "2015-01-02"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """GARCH(1,1) daily SPY-like prices and a VIX that tracks the conditional volatility.

    Returns raw (spy, vix) tables in the CSV format: a ``date`` column and prices.
    """
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=n_days)
    omega, alpha, beta = 2e-6, 0.09, 0.89
    var = omega / (1 - alpha - beta)
    rets = np.empty(n_days)
    sigmas = np.empty(n_days)
    for t in range(n_days):
        sigmas[t] = np.sqrt(var)
        rets[t] = sigmas[t] * rng.standard_t(6) / np.sqrt(1.5)
        var = omega + alpha * rets[t] ** 2 + beta * var
    close = 200.0 * np.exp(np.cumsum(rets))
    prev = np.concatenate([[200.0], close[:-1]])
    open_ = prev * np.exp(rng.normal(0, 0.2, n_days) * sigmas)
    spread = np.abs(rng.normal(0, 1, n_days)) * sigmas * 0.8 + 1e-4
    high = np.maximum(open_, close) * np.exp(spread)
    low = np.minimum(open_, close) * np.exp(-spread)
    spy = pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "adj_close": close,
            "volume": 1_000_000,
        }
    )
    vix_close = sigmas * np.sqrt(252) * 100 * np.exp(rng.normal(0.1, 0.05, n_days))
    vix = pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "open": vix_close,
            "high": vix_close * 1.02,
            "low": vix_close * 0.98,
            "close": vix_close,
        }
    )
    return spy, vix


def write_market(directory: Path, spy: pd.DataFrame, vix: pd.DataFrame) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    spy.to_csv(directory / "spy_daily.csv", index=False)
    vix.to_csv(directory / "vix_daily.csv", index=False)
    return directory


def write_pool(directory: Path, names: tuple[str, ...] = ("aaa", "bbb"), seed: int = 20) -> Path:
    """A ``--pool-universe`` of synthetic stocks (900 days each, seeds from ``seed``) in
    ``directory``: their ``<name>_daily.csv`` files, VIX and ``symbols.txt``, whose path it
    returns."""
    for k, name in enumerate(names):
        other, other_vix = synthetic_market(n_days=900, seed=seed + k)
        write_market(directory, other, other_vix)
        (directory / "spy_daily.csv").rename(directory / f"{name}_daily.csv")
    tickers = [n.upper() for n in names]
    (directory / "symbols.txt").write_text("\n".join(tickers) + "  # synthetic stocks\n")
    return directory / "symbols.txt"


@pytest.fixture
def market_dir(tmp_path: Path) -> Path:
    spy, vix = synthetic_market()
    return write_market(tmp_path / "data", spy, vix)


@pytest.fixture
def make_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    for key in list(os.environ):
        if key.startswith("VOLF_"):
            monkeypatch.delenv(key)

    def make(**overrides: object) -> Settings:
        base: dict[str, object] = {
            "data_source": "csv",
            "data_dir": tmp_path / "data",
            "models_dir": tmp_path / "models",
            "start": dt.date(2000, 1, 1),
            "lock_timeout": 5,
        }
        base.update(overrides)
        return build_settings(**base)

    return make


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (links as their targets) with its bytes."""
    if not directory.exists():
        return {}
    out = {}
    for path in sorted(directory.rglob("*")):
        rel = str(path.relative_to(directory))
        if path.is_symlink():
            out[rel] = b"->" + str(path.readlink()).encode()
        elif path.is_file():
            out[rel] = path.read_bytes()
    return out


class StubDownloader:
    """Serves frames from memory in place of Yahoo; records each call."""

    def __init__(self, tables: dict[str, pd.DataFrame]) -> None:
        self.tables = tables
        self.calls: list[tuple[str, dt.date, dt.date | None]] = []

    def __call__(self, ticker: str, start: dt.date, end: dt.date | None) -> pd.DataFrame:
        self.calls.append((ticker, start, end))
        table = self.tables[ticker]
        return table.loc[pd.to_datetime(table["date"]) >= pd.Timestamp(start)].reset_index(
            drop=True
        )


def shared_data_available() -> bool:
    return (SHARED_DATA / "spy_daily.csv").is_file() and (SHARED_DATA / "vix_daily.csv").is_file()


needs_shared_data = pytest.mark.skipif(
    not shared_data_available(), reason="../shared/data (real SPY/VIX) is not beside the checkout"
)


def cli_args(root: Path, command: str, *extra: str) -> list[str]:
    """``volforecast`` arguments for the csv data and models of a test project folder."""
    return [command, "--source", "csv", "--data-dir", str(root / "data"),
            "--models-dir", str(root / "models"), "--start", "2000-01-01", *extra]  # fmt: skip


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with synthetic data (900 days) and models trained as of day 800."""
    root = tmp_path_factory.mktemp("trained")
    spy, vix = synthetic_market()
    write_market(root / "data", spy, vix)
    as_of = spy["date"].iloc[799]
    from volforecast.cli import main

    code = main(cli_args(root, "train", "--as-of", as_of))
    assert code == 0
    return root


@pytest.fixture
def project(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("VOLF_"):
            monkeypatch.delenv(key)
    dest = tmp_path / "p"
    shutil.copytree(trained, dest, symlinks=True)
    monkeypatch.chdir(dest)
    return dest


def _hold_lock(root: str, ready: object, release: object) -> None:
    from volforecast.store import ModelsDirectory

    with ModelsDirectory(Path(root)).lock(30, "holder"):
        ready.set()  # type: ignore[attr-defined]
        release.wait(30)  # type: ignore[attr-defined]


@contextlib.contextmanager
def lock_held_by_another_process(models_dir: Path) -> Iterator[None]:
    """Another process holds the models-directory lock while the block runs."""
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(models_dir), ready, release))
    holder.start()
    try:
        assert ready.wait(30), "the lock holder did not start"
        yield
    finally:
        release.set()
        holder.join(30)


def run_in_processes(
    target: Callable[..., None], args: list[tuple[object, ...]]
) -> list[int | None]:
    """``target(*a)`` for each ``a`` in its own spawned process, all at once; their exit codes
    (None: still running after a generous wait, which the caller's assertion reports)."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=a) for a in args]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    return [p.exitcode for p in procs]


def rehash_manifest(models: Path) -> None:
    """What an attacker who can write the volume does after editing a set file (and what a
    test does to reach the checks behind the hashes): make the manifest agree again."""
    import json

    from volforecast.store import MANIFEST_FILE, sha256

    set_dir = models / "current"
    manifest = json.loads((set_dir / MANIFEST_FILE).read_text())
    for name in manifest["files"]:
        manifest["files"][name] = sha256((set_dir / name).read_bytes())
    (set_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
