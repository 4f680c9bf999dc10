"""volforecast evaluate (commands/evaluate): the walk-forward benchmark's files, numbers and
errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from volforecast.cli import main
from volforecast.config import build_settings
from volforecast.data import load_market_data
from volforecast.ensemble import predict_artifact
from volforecast.features import FEATURE_COLUMNS, build_dataset, labeled
from volforecast.schemas import EvaluationReport
from volforecast.store import ModelsDirectory
from volforecast.walkforward import ENSEMBLE, REALIZED

from .conftest import cli_args, synthetic_market, write_market, write_pool

PNG = b"\x89PNG\r\n\x1a\n"


METRIC_KEYS = {"rmse", "mae", "mse_var", "qlike", "mz_r2"}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    root = tmp_path_factory.mktemp("evaluate")
    spy, vix = synthetic_market(n_days=900, seed=7)
    write_market(root / "data", spy, vix)
    extra = ["--eval-start", spy["date"].iloc[650], "--refit-every", "100"]
    code = main(cli_args(root, "evaluate", *extra, "--output", str(root / "out")))
    return root, code


@pytest.mark.slow
def test_evaluate_writes_json_table_forecasts_and_pngs_when_run_on_csv(evaluated):
    root, code = evaluated
    assert code == 0
    out = root / "out"
    raw = json.loads((out / "evaluation.json").read_text())
    expected_models = {
        ENSEMBLE, "random_walk", "ewma", "har_rv", "har_parkinson", "log_har_vix", "har_core",
        "garch_t", "gjr_garch_t",
    }  # fmt: skip
    assert set(raw["metrics"]) == expected_models
    assert all(set(m) == METRIC_KEYS for m in raw["metrics"].values())
    report = EvaluationReport.model_validate(raw)
    forecasts = pd.read_csv(out / "forecasts.csv", index_col="date", parse_dates=True)
    assert len(forecasts) == report.n_forecasts
    realized = forecasts[REALIZED]
    err = realized - forecasts[ENSEMBLE]
    assert report.metrics[ENSEMBLE].rmse == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-6)
    table = (out / "evaluation.md").read_text()
    assert "| ensemble |" in table and "Diebold" in table
    for png in ("forecasts.png", "cumulative_loss_difference.png"):
        assert (out / png).read_bytes().startswith(PNG)


@pytest.mark.slow
def test_evaluate_gives_identical_numbers_when_run_twice(evaluated, tmp_path):
    root, _ = evaluated
    first = json.loads((root / "out" / "evaluation.json").read_text())
    spy = pd.read_csv(root / "data" / "spy_daily.csv")
    args = cli_args(root, "evaluate", "--eval-start", spy["date"].iloc[650], "--refit-every",
                    "100", "--output", str(tmp_path / "again"))  # fmt: skip
    assert main(args) == 0
    second = json.loads((tmp_path / "again" / "evaluation.json").read_text())
    assert first["metrics"] == second["metrics"]
    assert first["diebold_mariano"] == second["diebold_mariano"]


@pytest.mark.slow
def test_evaluated_ensemble_is_the_one_train_writes_when_blocks_match_model_a(evaluated, tmp_path):
    """One block from Model A's validation start reproduces Model A's validation forecasts."""
    root, _ = evaluated
    models = tmp_path / "models"
    assert main([*cli_args(root, "train"), "--models-dir", str(models)]) == 0
    current = ModelsDirectory(models).load_current()
    val_start = str(current.validation.date_range.val_start)
    out = tmp_path / "e"
    assert main(cli_args(root, "evaluate", "--eval-start", val_start, "--refit-every", "100000",
                         "--output", str(out))) == 0  # fmt: skip
    forecasts = pd.read_csv(out / "forecasts.csv", index_col="date", parse_dates=True)
    settings = build_settings(data_source="csv", data_dir=root / "data", start="2000-01-01")
    data = labeled(build_dataset(load_market_data(settings).frame, 5))
    X = data.loc[forecasts.index, list(FEATURE_COLUMNS)]
    np.testing.assert_allclose(
        forecasts[ENSEMBLE].to_numpy(), predict_artifact(current.model_a, X), rtol=1e-6
    )


def test_evaluate_exits_3_naming_the_fix_when_eval_start_leaves_too_little_history(
    evaluated, tmp_path, capsys
):
    root, _ = evaluated
    spy = pd.read_csv(root / "data" / "spy_daily.csv")
    args = cli_args(root, "evaluate", "--eval-start", spy["date"].iloc[100], "--output",
                    str(tmp_path / "x"))  # fmt: skip
    assert main(args) == 3
    assert "--eval-start" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_evaluate_reports_metrics_per_calendar_year_that_match_the_forecasts(evaluated):
    root, _ = evaluated
    report = EvaluationReport.model_validate_json((root / "out" / "evaluation.json").read_text())
    forecasts = pd.read_csv(root / "out" / "forecasts.csv", index_col="date", parse_dates=True)
    years = forecasts.index.year
    assert list(report.by_year) == [str(y) for y in sorted(set(years))]
    last = str(years.max())
    rows = forecasts.loc[years == years.max()]
    expected = np.sqrt(np.mean((rows[REALIZED] - rows[ENSEMBLE]) ** 2))
    assert report.by_year[last][ENSEMBLE]["rmse"] == pytest.approx(expected, rel=1e-6)
    assert report.rows_by_year[last] == len(rows)
    assert "By calendar year" in (root / "out" / "evaluation.md").read_text()


DISTRIBUTION_MODELS = {ENSEMBLE, "garch_t", "gjr_garch_t", "fhs", "hs_250"}


@pytest.mark.slow
def test_evaluate_scores_the_distributions_of_the_ensemble_and_four_baselines(evaluated):
    root, _ = evaluated
    raw = json.loads((root / "out" / "evaluation.json").read_text())
    assert set(raw["distribution"]) == DISTRIBUTION_MODELS
    for scores in raw["distribution"].values():
        assert set(scores["coverage"]) == {"0.5", "0.9"}
        assert set(scores["var"]) == set(scores["es"]) == {"0.95", "0.99"}
        assert set(scores["var"]["0.99"]) == {"exceedances", "days", "kupiec_p",
            "christoffersen_p", "conditional_coverage_p", "green_share"}  # fmt: skip
        assert scores["days"] == raw["n_forecasts"]
    # No distribution column leaks into the point forecasts or their metrics.
    forecasts = pd.read_csv(root / "out" / "forecasts.csv", nrows=1)
    assert not [c for c in forecasts.columns if "@" in c]
    assert "Forecast distributions" in (root / "out" / "evaluation.md").read_text()
    assert "NaN" not in (root / "out" / "evaluation.json").read_text()


@pytest.mark.slow
def test_evaluate_adds_the_pooled_core_and_ensemble_when_given_a_pool_universe(tmp_path):
    spy, vix = synthetic_market(n_days=900, seed=7)
    write_market(tmp_path / "data", spy, vix)
    pool = write_pool(tmp_path / "pool")
    out = tmp_path / "out"
    args = cli_args(tmp_path, "evaluate", "--eval-start", spy["date"].iloc[650], "--refit-every",
                    "100", "--pool-universe", str(pool), "--output", str(out))  # fmt: skip
    assert main(args) == 0
    report = EvaluationReport.model_validate_json((out / "evaluation.json").read_text())
    assert "har_core_pooled" in report.metrics and "har_core" in report.metrics
    assert report.metrics["har_core_pooled"].rmse != report.metrics["har_core"].rmse
    # The ensemble as train --pool-universe fits it, beside (not among) the baselines.
    assert report.metrics["ensemble_pooled"].rmse != report.metrics["ensemble"].rmse
    assert "ensemble_pooled" not in report.best_baseline.values()
    assert "ensemble_pooled" not in {t.against for t in report.diebold_mariano}


def test_load_pool_reads_the_pools_whole_history_whatever_the_benchmarks_start(tmp_path):
    from volforecast.pooling import load_pool

    pool = write_pool(tmp_path / "pool", names=("aaa",))
    settings = build_settings(data_source="csv", data_dir=tmp_path, start="2017-06-01",
                              pool_universe=pool)  # fmt: skip
    data = load_pool(settings, None, dt.date(2026, 1, 1), lambda _m: None)
    first = pd.Timestamp(data.dates["AAA"][0])
    assert first < pd.Timestamp("2015-06-01")  # the synthetic file starts 2015-01-02
