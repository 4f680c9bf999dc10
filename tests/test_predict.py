"""volforecast predict (volforecast.forecasting, commands/predict): the forecast users consume, as
the spec's snippet computes it, with the model monitoring recommends."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from volforecast.blending import stored_calibration
from volforecast.cli import main
from volforecast.config import build_settings
from volforecast.data import load_market_data
from volforecast.features import build_dataset
from volforecast.schemas import Forecast, MonitoringRecord
from volforecast.store import MONITORING_HISTORY, ModelsDirectory

from .conftest import cli_args


def _predict(project: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> Forecast:
    capsys.readouterr()
    assert main(cli_args(project, "predict", *extra)) == 0
    return Forecast.model_validate_json(capsys.readouterr().out)


def _snippet_forecast(project: Path, pickle_name: str, as_of: str | None = None) -> float:
    settings = build_settings(data_source="csv", data_dir=project / "data", start="2000-01-01",
                              as_of=as_of)  # fmt: skip
    X = build_dataset(load_market_data(settings).frame, 5).iloc[[-1]]
    # --- the spec's usage snippet ---
    with open(f"models/{pickle_name}", "rb") as f:
        model_artifact = pickle.load(f)
    X = X[model_artifact["feature_cols"]]
    X_meta = np.column_stack(
        [model_artifact["xgb_model"].predict(X), model_artifact["lgbm_model"].predict(X)]
    )
    predictions = model_artifact["meta_model"].predict(X_meta)
    # ---
    return float(predictions[0])


def _add_monitoring_record(project: Path, recommendation: str, run_id: str | None = None) -> None:
    """The only monitoring line: one monitor wrote, with the recommendation under test."""
    assert main(cli_args(project, "monitor", "--as-of", "2018-03-01")) == 0
    models = ModelsDirectory(project / "models")
    last = models.read_history(MONITORING_HISTORY, MonitoringRecord)[-1]
    (project / "models" / MONITORING_HISTORY).unlink()  # test setup, not something we ship
    update = {"recommendation": recommendation}
    if run_id is not None:
        update["models_run_id"] = run_id
    models.append_history(MONITORING_HISTORY, last.model_copy(update=update))


def test_predict_json_equals_spec_snippet_on_model_a_when_no_monitoring_run(project, capsys):
    forecast = _predict(project, capsys)
    dual = json.loads((project / "models" / "dual_model_baseline.json").read_text())
    last_day = "2018-06-14"  # the synthetic data's last row
    assert forecast.model == "A" and forecast.model_file == "model_90pct.pkl"
    assert "no monitoring run" in forecast.model_choice
    assert forecast.forecast_daily == pytest.approx(_snippet_forecast(project, "model_90pct.pkl"))
    assert forecast.forecast_annualized_pct == pytest.approx(
        forecast.forecast_daily * 100 * np.sqrt(252)
    )
    assert forecast.run_id == dual["run_id"]
    assert str(forecast.training_date_end) == dual["model_a"]["training_date_end"]
    assert str(forecast.features_date) == last_day and str(forecast.as_of) == last_day
    assert forecast.horizon == 5


def test_predict_uses_model_b_when_the_latest_monitoring_run_recommends_it(project, capsys):
    _add_monitoring_record(project, "USE MODEL B (ALL-30)")
    forecast = _predict(project, capsys)
    assert forecast.model == "B" and forecast.model_file == "model_100pct.pkl"
    assert "recommends USE MODEL B" in forecast.model_choice
    assert forecast.forecast_daily == pytest.approx(_snippet_forecast(project, "model_100pct.pkl"))


def test_predict_ignores_monitoring_runs_of_an_older_model_set(project, capsys):
    _add_monitoring_record(project, "USE MODEL B (ALL-30)", run_id="20200101T000000Z-000000")
    assert _predict(project, capsys).model == "A"


def test_predict_model_flag_overrides_the_recommendation(project, capsys):
    forecast = _predict(project, capsys, "--model", "b")
    assert forecast.model == "B" and forecast.model_choice == "--model b"


def test_predict_forecasts_from_the_as_of_day_when_replaying(project, capsys):
    forecast = _predict(project, capsys, "--as-of", "2018-03-01")
    assert str(forecast.features_date) == "2018-03-01"
    assert forecast.forecast_daily == pytest.approx(
        _snippet_forecast(project, "model_90pct.pkl", as_of="2018-03-01")
    )


def test_predict_table_format_shows_annualized_percent(project, capsys):
    capsys.readouterr()
    assert main(cli_args(project, "predict", "--format", "table")) == 0
    out = capsys.readouterr().out
    assert "% annualized" in out and "Model A (model_90pct.pkl)" in out


def test_predict_exits_6_when_a_pickle_byte_is_changed(project, capsys):
    path = (project / "models" / "model_90pct.pkl").resolve()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert main(cli_args(project, "predict")) == 6
    assert "SHA-256" in capsys.readouterr().err


def test_predict_exits_4_when_nothing_was_trained(tmp_path, make_settings, capsys, market_dir):
    args = ["predict", "--source", "csv", "--data-dir", str(market_dir), "--models-dir",
            str(tmp_path / "empty")]  # fmt: skip
    assert main(args) == 4
    assert "volforecast train" in capsys.readouterr().err


def test_predict_exits_2_when_as_of_falls_inside_the_sets_training_data(project, capsys):
    assert main(cli_args(project, "predict", "--as-of", "2017-06-01")) == 2
    assert "before the end of the data the live set" in capsys.readouterr().err


def test_predict_ignores_monitoring_runs_dated_after_as_of_when_replaying(project, capsys):
    _add_monitoring_record(project, "USE MODEL B (ALL-30)")  # dated 2018-03-01 (see helper)
    assert _predict(project, capsys, "--as-of", "2018-02-20").model == "A"
    assert _predict(project, capsys, "--as-of", "2018-03-01").model == "B"


def test_predict_exits_2_when_implied_vol_differs_from_the_one_the_set_was_fitted_with(
    project, capsys
):
    (project / "data" / "vxn_daily.csv").write_bytes(
        (project / "data" / "vix_daily.csv").read_bytes()
    )
    assert main(cli_args(project, "predict", "--implied-vol", "SPY=VXN")) == 2
    assert "fitted with VIX" in capsys.readouterr().err


def test_predict_exits_2_when_horizon_given_differs_from_the_sets(project, capsys):
    assert main(cli_args(project, "predict", "--horizon", "22")) == 2
    assert "forecasts 5-day volatility, not --horizon 22" in capsys.readouterr().err
    assert _predict(project, capsys, "--horizon", "5").horizon == 5


def test_predict_json_gives_quantiles_interval_var_and_es_when_the_set_is_calibrated(
    project, capsys
):
    forecast = _predict(project, capsys)
    assert forecast.quantiles is not None and forecast.var and forecast.es
    assert list(forecast.quantiles) == ["0.05", "0.25", "0.5", "0.75", "0.95"]
    assert list(forecast.quantiles.values()) == sorted(forecast.quantiles.values())
    assert forecast.interval_90 == [forecast.quantiles["0.05"], forecast.quantiles["0.95"]]
    assert set(forecast.var) == set(forecast.es) == {"0.95", "0.99"}
    assert 0 < forecast.var["0.95"] < forecast.var["0.99"] < forecast.es["0.99"]
    assert forecast.var_1d and forecast.var_1d["0.99"] < forecast.var["0.99"]  # 1 day < 5 days
    assert forecast.risk_method is not None and "conformal" in forecast.risk_method


def test_predict_table_shows_the_90_percent_range_and_var_when_calibrated(project, capsys):
    capsys.readouterr()
    assert main(cli_args(project, "predict", "--format", "table")) == 0
    out = capsys.readouterr().out
    assert re.search(r"90% range +\d+\.\d\d%\.\.\d+\.\d\d% annualized", out)
    assert re.search(r"VaR +5-day 95% \d+\.\d\d%, 99% \d+\.\d\d%", out)


def test_stored_calibration_is_none_when_the_pickle_predates_it():
    assert stored_calibration({"feature_cols": ["spy_rv_1d"]}) is None
