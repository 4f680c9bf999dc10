"""Many underlyings: per-symbol model sets, universe runs on Dask, failing symbols."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from volforecast.cli import main
from volforecast.commands.evaluate import run_evaluate_universe
from volforecast.config import build_settings
from volforecast.engine import Engine
from volforecast.errors import ConfigError, IntegrityError
from volforecast.schemas import EvaluationSummary, TrainingRecord
from volforecast.store import MODEL_A_FILE, TRAINING_HISTORY, ModelsDirectory, symbol_root
from volforecast.universe import run_universe

from .conftest import cli_args, synthetic_market, write_market

SYMBOLS = ["SPY", "QQQ", "GLD"]


def _write_universe(directory: Path) -> Path:
    """SPY, QQQ and GLD (three different synthetic paths) and one VIX."""
    spy, vix = synthetic_market()
    write_market(directory, spy, vix)
    for seed, symbol in ((11, "qqq"), (12, "gld")):
        other, _ = synthetic_market(seed=seed)
        other.to_csv(directory / f"{symbol}_daily.csv", index=False)
    return directory


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    """An in-process Dask cluster with two single-threaded workers."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def universe(tmp_path_factory: pytest.TempPathFactory, client: object) -> Path:
    """Three symbols trained as a universe on the two-worker cluster."""
    root = tmp_path_factory.mktemp("universe")
    _write_universe(root / "data")
    settings = build_settings(
        data_source="csv", data_dir=root / "data", models_dir=root / "models",
        start="2000-01-01", symbols=",".join(SYMBOLS), lock_timeout=30,
    )  # fmt: skip
    result = run_universe("train", settings, SYMBOLS, Engine(client), lambda _m: None)  # type: ignore[arg-type]
    assert not result.failed, result.summary
    return root


def test_universe_train_keeps_spy_at_the_spec_paths_and_other_symbols_under_symbols(universe):
    models = universe / "models"
    assert (models / MODEL_A_FILE).is_file()
    for symbol in ("QQQ", "GLD"):
        assert (models / "symbols" / symbol / MODEL_A_FILE).is_file()
    assert not (models / "symbols" / "SPY").exists()


def test_universe_train_writes_a_verifiable_set_per_symbol_that_names_its_symbol(universe):
    for symbol in SYMBOLS:
        directory = ModelsDirectory(symbol_root(universe / "models", symbol), symbol=symbol)
        current = directory.load_current()
        assert current.dual.symbol == current.validation.symbol == symbol
        assert current.model_a["symbol"] == symbol
        [line] = (directory.root / TRAINING_HISTORY).read_text().splitlines()
        assert TrainingRecord.model_validate_json(line).symbol == symbol


def test_universe_train_fits_each_symbol_on_its_own_data(universe):
    rmse = {
        s: ModelsDirectory(symbol_root(universe / "models", s), symbol=s)
        .load_current()
        .validation.validation_rmse
        for s in SYMBOLS
    }
    assert len(set(rmse.values())) == 3


def test_load_current_refuses_a_set_of_another_symbol_when_copied_into_its_directory(
    universe, tmp_path
):
    import shutil

    fake = tmp_path / "models"
    shutil.copytree(universe / "models" / "symbols" / "QQQ", fake, symlinks=True)
    with pytest.raises(IntegrityError, match="is for QQQ, not SPY"):
        ModelsDirectory(fake, symbol="SPY").load_current()


def test_universe_monitor_and_predict_read_every_symbols_set(universe, client, tmp_path):
    import shutil

    root = tmp_path / "u"
    shutil.copytree(universe, root, symlinks=True)
    settings = build_settings(
        data_source="csv", data_dir=root / "data", models_dir=root / "models",
        start="2000-01-01", lock_timeout=30,
    )  # fmt: skip
    monitored = run_universe("monitor", settings, SYMBOLS, Engine(client), lambda _m: None)  # type: ignore[arg-type]
    predicted = run_universe("predict", settings, SYMBOLS, Engine(), lambda _m: None)
    assert [r.status for r in monitored.summary.symbols] == ["ok"] * 3
    assert [r.result["symbol"] for r in predicted.summary.symbols] == SYMBOLS  # type: ignore[index]
    for symbol in ("QQQ", "GLD"):
        assert (root / "models" / "symbols" / symbol / "monitoring_history.jsonl").is_file()


def test_universe_reports_a_failing_symbol_and_completes_the_others(universe, client, tmp_path):
    import shutil

    root = tmp_path / "u"
    shutil.copytree(universe / "data", root / "data")
    settings = build_settings(
        data_source="csv", data_dir=root / "data", models_dir=root / "models",
        start="2000-01-01", lock_timeout=30,
    )  # fmt: skip
    result = run_universe("train", settings, ["QQQ", "XLE", "GLD"], Engine(client), lambda _m: None)  # type: ignore[arg-type]
    status = {r.symbol: (r.status, r.exit_code) for r in result.summary.symbols}
    assert status == {"QQQ": ("ok", 0), "XLE": ("failed", 3), "GLD": ("ok", 0)}
    assert "xle_daily.csv" in (result.failed[0].error or "")
    assert (root / "models" / "symbols" / "GLD" / MODEL_A_FILE).is_file()


def test_cli_universe_exits_11_and_prints_json_summary_when_one_symbol_fails(
    universe, tmp_path, capsys, monkeypatch
):
    import shutil

    for key in [k for k in __import__("os").environ if k.startswith("VOLF_")]:
        monkeypatch.delenv(key)
    shutil.copytree(universe, tmp_path / "p", symlinks=True)
    code = main(cli_args(tmp_path / "p", "predict", "--symbols", "spy,xle,gld"))
    assert code == 11
    summary = json.loads(capsys.readouterr().out)
    assert [(r["symbol"], r["exit_code"]) for r in summary["symbols"]] == [
        ("SPY", 0), ("XLE", 4), ("GLD", 0)
    ]  # fmt: skip


@pytest.mark.slow
def test_universe_evaluate_is_identical_on_two_dask_workers_and_in_process(
    universe, client, tmp_path
):
    dates = pd.read_csv(universe / "data" / "spy_daily.csv")["date"]
    settings = build_settings(
        data_source="csv", data_dir=universe / "data", start="2000-01-01",
        eval_start=dates.iloc[800], refit_every=100,
    )  # fmt: skip
    runs = {}
    for name, engine in (("local", Engine()), ("dask", Engine(client))):  # type: ignore[arg-type]
        out = tmp_path / name
        summary, _ = run_evaluate_universe(
            settings.model_copy(update={"output_dir": out}), ["SPY", "GLD"], [1, 5],
            lambda _m: None, engine=engine,
        )  # fmt: skip
        assert [r.status for r in summary.results] == ["ok"] * 4
        runs[name] = out
    for symbol in ("SPY", "GLD"):
        for h in (1, 5):
            rel = Path(symbol) / f"h{h}" / "forecasts.csv"
            assert (runs["local"] / rel).read_bytes() == (runs["dask"] / rel).read_bytes()
    summary = EvaluationSummary.model_validate_json((runs["dask"] / "summary.json").read_text())
    assert [(r.symbol, r.horizon) for r in summary.results] == [
        ("SPY", 1), ("SPY", 5), ("GLD", 1), ("GLD", 5)
    ]  # fmt: skip
    assert summary.results[0].ratio_to_har_rv["har_rv"] == {"rmse": 1.0, "qlike": 1.0}
    assert "| GLD | 5 |" in (runs["dask"] / "summary.md").read_text()


@pytest.mark.slow
def test_universe_evaluate_reports_a_missing_symbol_and_completes_the_others(universe, tmp_path):
    dates = pd.read_csv(universe / "data" / "spy_daily.csv")["date"]
    settings = build_settings(
        data_source="csv", data_dir=universe / "data", start="2000-01-01",
        eval_start=dates.iloc[700], refit_every=200, output_dir=tmp_path / "o",
    )  # fmt: skip
    summary, _ = run_evaluate_universe(settings, ["XLE", "SPY"], [5], lambda _m: None)
    assert [(r.symbol, r.status, r.exit_code) for r in summary.results] == [
        ("XLE", "failed", 3), ("SPY", "ok", 0)
    ]  # fmt: skip
    assert (tmp_path / "o" / "SPY" / "h5" / "evaluation.json").is_file()
    assert "failed (exit 3)" in (tmp_path / "o" / "summary.md").read_text()


def test_settings_universe_reads_a_file_with_comments_and_drops_duplicates(tmp_path):
    path = tmp_path / "universe.txt"
    path.write_text("# index ETFs\nspy\nQQQ  # Nasdaq\n\nspy\ngld\n")
    assert build_settings(universe_file=path).universe() == ["SPY", "QQQ", "GLD"]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"symbols": "SPY,QQ Q"}, "--symbols"),
        ({"horizons": "5,99"}, "--horizons"),
        ({"implied_vol": "QQQ"}, "--implied-vol"),
        ({"dask_scheduler": "dask:8786"}, "--scheduler"),
    ],
)
def test_settings_reject_a_malformed_universe_option_naming_its_flag(overrides, named):
    with pytest.raises(ConfigError, match=named):
        build_settings(**overrides)


def test_csv_source_reads_the_configured_implied_volatility_file(tmp_path):
    from volforecast.data import load_market_data

    spy, vix = synthetic_market()
    write_market(tmp_path, spy, vix)
    vxn = vix.assign(close=vix["close"] * 1.5)
    vxn.to_csv(tmp_path / "vxn_daily.csv", index=False)
    spy.to_csv(tmp_path / "qqq_daily.csv", index=False)
    plain = load_market_data(build_settings(data_source="csv", data_dir=tmp_path, symbol="QQQ"))
    mapped = load_market_data(
        build_settings(data_source="csv", data_dir=tmp_path, symbol="QQQ", implied_vol="qqq=^vxn")
    )
    ratio = mapped.frame["vix_close"] / plain.frame["vix_close"]
    assert ratio.round(12).unique().tolist() == [1.5]


def test_metrics_of_a_universe_carry_one_series_per_symbol(universe):
    from prometheus_client import generate_latest

    from volforecast.telemetry import registry_of, train_metrics

    records = {
        s: ModelsDirectory(symbol_root(universe / "models", s), symbol=s).load_current().record
        for s in SYMBOLS
    }
    text = generate_latest(
        registry_of({s: train_metrics(r, 1.0, 0.0) for s, r in records.items()})
    ).decode()
    for symbol in SYMBOLS:
        assert f'volforecast_train_validation_rmse{{symbol="{symbol}"}}' in text


def _square(x: int) -> int:
    if x == 3:
        raise ValueError("three is not allowed")
    return x * x


def test_engine_logs_one_line_per_finished_piece_and_keeps_going_after_a_failure():
    from volforecast.engine import Piece

    lines: list[str] = []
    pieces = [Piece(f"square {x}", _square, (x,)) for x in range(1, 5)]
    outcomes = Engine().run(pieces, "squares", lines.append)
    assert [o.value for o in outcomes] == [1, 4, None, 16]
    assert str(outcomes[2].error) == "three is not allowed"
    assert lines == [
        "squares 1/4: square 1 done",
        "squares 2/4: square 2 done",
        "squares 3/4: square 3 FAILED: three is not allowed",
        "squares 4/4: square 4 done",
        lines[-1],
    ]
    assert lines[-1].startswith("squares: 3 of 4 pieces done, 1 failed in ")


def test_engine_on_dask_returns_outcomes_in_piece_order(client):
    from volforecast.engine import Piece

    pieces = [Piece(f"square {x}", _square, (x,)) for x in (5, 3, 2)]
    outcomes = Engine(client).run(pieces, "squares", lambda _m: None)  # type: ignore[arg-type]
    assert [(o.label, o.value) for o in outcomes] == [
        ("square 5", 25), ("square 3", None), ("square 2", 4)
    ]  # fmt: skip
    assert isinstance(outcomes[1].error, ValueError)


class _CancelledFuture:
    """What a future is after its scheduler connection is lost: cancelled."""

    status = "cancelled"

    def __init__(self, key: str) -> None:
        self.key = key

    def done(self) -> bool:
        return True

    def result(self) -> None:
        from distributed.client import FutureCancelledError

        raise FutureCancelledError(self.key, reason="scheduler-connection-lost")


class _LostClient:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def submit(self, _func: object, *_args: object, key: str, pure: bool) -> _CancelledFuture:
        self.keys.append(key)
        return _CancelledFuture(key)


def test_engine_gives_dask_one_key_prefix_per_kind_of_piece_not_per_piece(monkeypatch):
    """Dask sums each worker's load over key prefixes on every transition: a prefix per
    piece made that quadratic in the number of pieces."""
    import distributed
    from dask.utils import key_split

    from volforecast.engine import Piece
    from volforecast.errors import ClusterError

    monkeypatch.setattr(distributed, "as_completed", lambda futures: iter(futures))
    client = _LostClient()
    pieces = [Piece(f"SPY h=5 refit {k}/3 {m}", _square, (k,), m) for k in (1, 2, 3)
              for m in ("ensemble", "har_rv")]  # fmt: skip
    with pytest.raises(ClusterError):
        Engine(client).run(pieces, "evaluate", lambda _m: None)  # type: ignore[arg-type]
    assert [key_split(k) for k in client.keys] == ["ensemble", "har_rv"] * 3
    assert len(set(client.keys)) == 6


def test_engine_raises_cluster_error_naming_the_fix_when_the_scheduler_connection_is_lost(
    monkeypatch,
):
    import distributed

    from volforecast.engine import Piece
    from volforecast.errors import ClusterError

    monkeypatch.setattr(distributed, "as_completed", lambda futures: iter(futures))
    pieces = [Piece(f"square {x}", _square, (x,)) for x in (1, 2)]
    with pytest.raises(ClusterError, match="lost the connection to the Dask cluster after 0 of 2"):
        Engine(_LostClient()).run(pieces, "squares", lambda _m: None)  # type: ignore[arg-type]


@pytest.mark.slow
def test_cli_exits_9_naming_the_fix_when_the_dask_scheduler_is_unreachable(
    tmp_path, capsys, monkeypatch
):
    import socket

    from volforecast import engine

    monkeypatch.setattr(engine, "CONNECT_TIMEOUT_SECONDS", 2)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _write_universe(tmp_path / "data")
    code = main(cli_args(tmp_path, "train", "--symbols", "spy,qqq",
                         "--scheduler", f"tcp://127.0.0.1:{port}"))  # fmt: skip
    assert code == 9
    assert "VOLF_DASK_SCHEDULER" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()


def test_summary_markdown_shows_the_holm_adjusted_p_value_it_announces():
    from volforecast.commands.evaluate import summary_markdown
    from volforecast.schemas import DMTest, EvaluationSummary, EvaluationSummaryRow

    tests = [
        DMTest(against="har_rv", loss=loss, statistic=-2.0, p_value=0.04, lags=8,
               mean_loss_difference=-1.0, p_value_holm=0.31)
        for loss in ("squared_error", "qlike")
    ]  # fmt: skip
    ratios = {"ensemble": {"rmse": 0.9, "qlike": 0.8}, "har_rv": {"rmse": 1.0, "qlike": 1.0}}
    row = EvaluationSummaryRow(
        symbol="SPY", horizon=5, status="ok", exit_code=0,
        best_baseline={"rmse": "har_rv", "qlike": "har_rv"}, ratio_to_har_rv=ratios,
        ratio_to_best_baseline=ratios, diebold_mariano=tests,
    )  # fmt: skip
    summary = EvaluationSummary(
        created_at="2026-11-27T00:00:00+00:00", symbols=["SPY"], horizons=[5], results=[row],
        duration_seconds=1.0, volforecast_version="0",
    )  # fmt: skip
    line = next(x for x in summary_markdown(summary).splitlines() if x.startswith("| SPY | 5 |"))
    assert "| 0.31 | 0.31 |" in line and "0.04" not in line


@pytest.mark.slow
def test_cli_universe_prints_one_plain_line_and_no_traceback_when_a_symbol_fails_on_dask(
    universe, tmp_path
):
    import shutil
    import subprocess
    import sys

    shutil.copytree(universe, tmp_path / "p", symlinks=True)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("VOLF_")}
    args = cli_args(tmp_path / "p", "monitor", "--symbols", "spy,xle", "--workers", "1")
    run = subprocess.run(
        [sys.executable, "-m", "volforecast.cli", *args], capture_output=True, text=True, env=env
    )
    assert run.returncode == 11
    assert "Compute Failed" not in run.stderr and "Traceback" not in run.stderr
    assert len([line for line in run.stderr.splitlines() if "monitor XLE failed" in line]) == 1


def test_local_workers_are_capped_by_cpus_and_pieces_with_a_note_when_more_are_asked():
    from volforecast.engine import local_workers
    from volforecast.runtime import available_cpus

    notes: list[str] = []
    assert local_workers(16, 1, notes.append) == 1
    assert local_workers(1000, None, notes.append) == available_cpus()
    assert local_workers(0, 50, notes.append) == available_cpus()
    assert notes[0].startswith("--workers 16 capped at 1") and len(notes) == 2


def test_engine_names_the_finished_pieces_when_a_stop_signal_ends_the_run():
    import signal

    from volforecast.engine import Piece
    from volforecast.runtime import Stopped

    def stop() -> None:
        raise Stopped(signal.SIGTERM)

    pieces = [Piece("train QQQ", lambda: 1, ()), Piece("train GLD", stop, ())]
    with pytest.raises(Stopped) as caught:
        Engine().run(pieces, "train", lambda _m: None)
    assert caught.value.finished == ["train QQQ"]


def test_cli_says_which_symbols_were_published_when_a_universe_train_is_stopped(
    project, monkeypatch, capsys
):
    import signal

    from volforecast import universe
    from volforecast.runtime import Stopped

    def stopped_after_qqq(*_args: object, **_kwargs: object) -> None:
        stop = Stopped(signal.SIGTERM)
        stop.finished = ["train QQQ"]
        raise stop

    monkeypatch.setattr(universe, "run_universe", stopped_after_qqq)
    monkeypatch.setattr(
        universe, "open_engine", lambda *_a, **_k: __import__("contextlib").nullcontext(Engine())
    )
    assert main(cli_args(project, "train", "--symbols", "qqq,gld")) == 143
    err = capsys.readouterr().err
    assert "after 1 piece(s) had finished: train QQQ" in err
    assert "left it as it was" not in err


@pytest.mark.slow
def test_evaluate_on_dask_stops_on_sigterm_with_one_line_and_no_traceback(tmp_path):
    import signal
    import subprocess
    import sys

    data = _write_universe(tmp_path / "data")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("VOLF_")}
    args = ["evaluate", "--source", "csv", "--data-dir", str(data), "--models-dir",
            str(tmp_path / "m"), "--start", "2000-01-01", "--symbols", "spy,qqq,gld",
            "--eval-start", "2017-06-01", "--refit-every", "5", "--workers", "2",
            "--output", str(tmp_path / "e")]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "volforecast.cli", *args], env=env, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if " evaluate 3/" in line:  # pieces are finishing: the run is in full swing
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.communicate(timeout=600)[1]
    err = "".join(seen) + rest
    assert proc.returncode == 143
    assert "stopped by SIGTERM" in err
    assert "Traceback" not in err, err[err.index("Traceback") - 300 :][:1500]
