"""End-to-end runs of the ``volforecast`` command on synthetic data and on the offline sample."""

from __future__ import annotations

import datetime as dt
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from volforecast.blending import SHIPPED_NAME
from volforecast.cli import main
from volforecast.data import load_market_data
from volforecast.errors import EXIT_RETRAIN_ADVISED
from volforecast.features import build_dataset
from volforecast.schemas import (
    DualModelBaseline,
    MonitoringRecord,
    TrainingRecord,
    ValidationBaseline,
)

from .conftest import cli_args, snapshot

SET_NAMES = (
    "model_90pct.pkl",
    "model_100pct.pkl",
    "latest_ensemble.pkl",
    "validation_baseline.json",
    "dual_model_baseline.json",
)


def test_train_writes_six_files_and_one_history_line(project: Path):
    models = project / "models"
    for name in (*SET_NAMES, "training_history.jsonl"):
        assert (models / name).is_file(), name
    lines = (models / "training_history.jsonl").read_text().splitlines()
    assert len(lines) == 1
    record = TrainingRecord.model_validate_json(lines[0])
    validation = ValidationBaseline.model_validate_json(
        (models / "validation_baseline.json").read_text()
    )
    dual = DualModelBaseline.model_validate_json((models / "dual_model_baseline.json").read_text())
    assert record.run_id == validation.run_id == dual.run_id
    assert (models / "latest_ensemble.pkl").read_bytes() == (
        models / "model_90pct.pkl"
    ).read_bytes()


def test_train_baselines_report_split_counts_and_purge(project: Path):
    dual = json.loads((project / "models" / "dual_model_baseline.json").read_text())
    a, b = dual["model_a"], dual["model_b"]
    # 800 days (to 2018-01-25) - 66 warm-up rows - 5 unlabeled = 729 labeled rows
    n = 729
    assert a["validation_samples"] == n - int(n * 0.9) == 73
    assert a["training_samples"] == int(n * 0.9) - 5 == 651
    assert b["test_samples"] == 30
    assert b["training_samples"] == n - 30 - 5 == 694
    assert a["training_date_end"] < a["validation_date_start"]
    assert b["training_date_end"] < b["test_date_start"]
    assert dual["purge_rows"] == 5


def test_train_again_appends_a_second_history_line_and_archives_the_first_set(project: Path):
    assert main(cli_args(project, "train", "--as-of", "2018-01-02")) == 0
    lines = (project / "models" / "training_history.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert len(list((project / "models" / "archive").iterdir())) == 1


def test_train_gives_identical_models_and_metrics_when_repeated(project: Path, tmp_path: Path):
    other = tmp_path / "again"
    assert (
        main(cli_args(project, "train", "--as-of", "2018-01-26", "--models-dir", str(other))) == 0
    )
    assert (
        main(cli_args(project, "train", "--as-of", "2018-01-26", "--models-dir", str(other / "2")))
        == 0
    )
    first = json.loads((other / "dual_model_baseline.json").read_text())
    second = json.loads((other / "2" / "dual_model_baseline.json").read_text())
    for key in ("model_a", "model_b"):
        for field in ("validation_rmse", "test_rmse", "sha256", "training_samples"):
            if field in first[key]:
                assert first[key][field] == second[key][field] or field == "sha256"
    a1 = pickle.loads((other / "model_90pct.pkl").read_bytes())
    a2 = pickle.loads((other / "2" / "model_90pct.pkl").read_bytes())
    X = np.random.default_rng(0).normal(0.01, 0.005, size=(50, 20))
    for key in ("xgb_model", "lgbm_model"):
        np.testing.assert_array_equal(a1[key].predict(X), a2[key].predict(X))
    np.testing.assert_array_equal(a1["meta_model"].coef_, a2["meta_model"].coef_)


def test_spec_usage_snippet_predicts_target_units_from_written_pickle(project: Path):
    frame = load_market_data(
        __import__("volforecast.config", fromlist=["build_settings"]).build_settings(
            data_source="csv", data_dir=project / "data", start=dt.date(2000, 1, 1)
        )
    ).frame
    X = build_dataset(frame, 5)
    # --- the spec's snippet, unchanged ---
    with open("models/model_90pct.pkl", "rb") as f:
        model_artifact = pickle.load(f)

    X = X[model_artifact["feature_cols"]]
    X_meta = np.column_stack(
        [model_artifact["xgb_model"].predict(X), model_artifact["lgbm_model"].predict(X)]
    )
    predictions = model_artifact["meta_model"].predict(X_meta)
    # ---
    assert predictions.shape == (len(X),)
    assert 0.002 < np.median(predictions) < 0.05
    # The out-of-fold mix the meta-learner learned, the core alone included (0 under "ridge").
    weights = model_artifact["mix_weights"]
    assert set(weights) == {"core", "xgb", "lgbm"} and sum(weights.values()) == pytest.approx(1)


def test_both_pickles_carry_their_calibration_as_plain_numbers_beside_the_spec_keys(project):
    for name in ("model_90pct.pkl", "model_100pct.pkl"):
        with open(f"models/{name}", "rb") as f:
            artifact = pickle.load(f)
        assert {"xgb_model", "lgbm_model", "meta_model", "feature_cols"} <= set(artifact)
        cal = artifact["calibration"]
        assert cal["method"] == SHIPPED_NAME and cal["horizon"] == 5
        blend = cal["blend"]
        assert blend["model"] == "gjr_garch_t" and blend["weight"] == 0.5
        assert set(blend["params"]) == {"omega", "alpha[1]", "gamma[1]", "beta[1]", "nu"}
        assert list(cal["log_residual_quantiles"]) == ["0.05", "0.25", "0.5", "0.75", "0.95"]
        assert json.loads(json.dumps(cal)) == cal  # nothing but numbers, strings and null
        # Calibrated on the training rows only: fewer rows than the model trained on.
        assert cal["rows"] < artifact["training_samples"]


def test_spec_training_history_snippets_run_on_written_file(project: Path, capsys):
    assert main(cli_args(project, "train", "--as-of", "2018-02-01")) == 0
    import pandas as pd

    # --- the spec's snippets, unchanged ---
    with open("models/training_history.jsonl") as f:
        history = [json.loads(line) for line in f]
    df = pd.DataFrame(history)
    model_a_rmse = [r["model_a"]["validation_rmse"] for r in history]
    print(f"Model A RMSE trend: {model_a_rmse}")
    best_run = min(history, key=lambda x: x["model_a"]["validation_rmse"])
    print(f"Best Model A RMSE: {best_run['model_a']['validation_rmse']}")
    with open("models/training_history.jsonl") as f:
        runs = [json.loads(line) for line in f]
    print(f"First run RMSE: {runs[0]['model_a']['validation_rmse']:.6f}")
    print(f"Latest run RMSE: {runs[-1]['model_a']['validation_rmse']:.6f}")
    print(
        f"Change: {((runs[-1]['model_a']['validation_rmse'] / runs[0]['model_a']['validation_rmse']) - 1) * 100:.2f}%"
    )
    # ---
    assert len(df) == 2
    assert "Change: " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--horizon", "0"], "--horizon / VOLF_HORIZON"),
        (["--as-of", "yesterday"], "--as-of / VOLF_AS_OF"),
    ],
)
def test_train_exits_2_when_configuration_is_invalid(project: Path, capsys, args, message):
    assert main(cli_args(project, "train", *args)) == 2
    assert message in capsys.readouterr().err


def test_train_on_sample_source_succeeds_offline(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.delenv("VOLF_DATA_SOURCE", raising=False)
    assert main(["train", "--source", "sample", "--models-dir", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "A (90%) valid." in out and "B (all-30) test" in out
    dual = json.loads((tmp_path / "m" / "dual_model_baseline.json").read_text())
    assert dual["model_b"]["test_date_end"] == "2018-12-21"


# --------------------------------------------------------------------------- monitor


def test_monitor_appends_one_valid_line_per_run_and_test_window_grows(project: Path):
    dual = json.loads((project / "models" / "dual_model_baseline.json").read_text())
    assert (
        main(cli_args(project, "monitor", "--as-of", "2018-01-25")) == 0
    )  # the training day itself
    assert main(cli_args(project, "monitor", "--as-of", "2018-03-01")) == 0
    lines = (project / "models" / "monitoring_history.jsonl").read_text().splitlines()
    first, second = (MonitoringRecord.model_validate_json(line) for line in lines)
    assert first.test_window.n_samples == 30
    assert str(first.test_window.date_start) == dual["model_b"]["test_date_start"]
    assert second.test_window.n_samples > 30
    assert first.drift.baseline_rmse == dual["model_a"]["validation_rmse"]
    assert first.models_run_id == dual["run_id"]


def test_spec_monitoring_snippets_run_on_written_file(project: Path, capsys, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for day in ("2018-02-01", "2018-02-15", "2018-03-01"):
        assert main(cli_args(project, "monitor", "--as-of", day)) == 0
    import matplotlib.pyplot as plt
    import pandas as pd

    # --- the spec's snippets, unchanged ---
    with open("models/monitoring_history.jsonl") as f:
        history = [json.loads(line) for line in f]
    dates = [r["monitoring_date"] for r in history]
    drift = [r["drift"]["model_a_drift_pct"] for r in history]
    plt.plot(dates, drift)
    plt.title("Model A Drift Over Time")
    plt.ylabel("Drift %")
    plt.show()
    model_b_wins = [r["comparison"]["model_b_win_rate"] for r in history]
    print(f"Model B average win rate: {sum(model_b_wins) / len(model_b_wins):.1f}%")

    with open("models/training_history.jsonl") as f:
        training = pd.DataFrame([json.loads(line) for line in f])
    with open("models/monitoring_history.jsonl") as f:
        monitoring = pd.DataFrame([json.loads(line) for line in f])
    print("=== TRAINING TRENDS ===")
    print(f"Total training runs: {len(training)}")
    if len(training) > 1:
        first_rmse = training.iloc[0]["model_a"]["validation_rmse"]
        last_rmse = training.iloc[-1]["model_a"]["validation_rmse"]
        change = ((last_rmse / first_rmse) - 1) * 100
        print(f"RMSE change: {change:+.2f}%")
    print("\n=== MONITORING TRENDS ===")
    print(f"Total monitoring runs: {len(monitoring)}")
    if len(monitoring) > 0:
        avg_drift = monitoring["drift"].apply(lambda x: x["model_a_drift_pct"]).mean()
        print(f"Average drift: {avg_drift:.2f}%")
    # ---
    plt.close("all")
    out = capsys.readouterr().out
    assert "Total monitoring runs: 3" in out and "Average drift:" in out


def test_monitor_exits_4_without_appending_when_nothing_trained(
    project: Path, tmp_path: Path, capsys
):
    empty = tmp_path / "empty"
    assert main(cli_args(project, "monitor", "--models-dir", str(empty))) == 4
    assert f"run `volforecast train --models-dir {empty}` first" in capsys.readouterr().err
    assert not (empty / "monitoring_history.jsonl").exists()


def test_monitor_exits_5_without_appending_when_no_new_rows(project: Path, capsys):
    before = snapshot(project / "models")
    assert main(cli_args(project, "monitor", "--as-of", "2017-06-01")) == 5
    assert "no labeled rows after" in capsys.readouterr().err
    assert snapshot(project / "models") == before


def test_monitor_exits_6_without_appending_when_baseline_is_corrupt(project: Path, capsys):
    (project / "models" / "validation_baseline.json").write_text('{"validation_rmse": 0.1')
    before = snapshot(project / "models")
    assert main(cli_args(project, "monitor")) == 6
    assert "validation_baseline.json does not match the SHA-256" in capsys.readouterr().err
    assert snapshot(project / "models") == before


def test_monitor_exits_6_when_a_pickle_byte_is_changed(project: Path, capsys):
    path = project / "models" / "model_100pct.pkl"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    before = snapshot(project / "models")
    assert main(cli_args(project, "monitor")) == 6
    assert "does not match the SHA-256" in capsys.readouterr().err
    assert snapshot(project / "models") == before


def test_monitor_exits_6_when_a_pickle_is_missing_from_the_set(project: Path, capsys):
    (project / "models" / "current" / "model_100pct.pkl").unlink()
    assert main(cli_args(project, "monitor")) == 6
    assert "lacks model_100pct.pkl: it is incomplete" in capsys.readouterr().err


def test_monitor_exits_4_when_no_set_is_current(project: Path, capsys):
    (project / "models" / "current").unlink()
    assert main(cli_args(project, "monitor")) == 4
    assert "no model set in" in capsys.readouterr().err


def test_monitor_restores_a_spec_link_deleted_by_hand(project: Path):
    (project / "models" / "model_100pct.pkl").unlink()
    assert main(cli_args(project, "monitor")) == 0
    assert (project / "models" / "model_100pct.pkl").readlink() == Path("current/model_100pct.pkl")


def test_monitor_exits_10_with_fail_on_retrain_when_drift_is_high(project: Path):
    spy_path = project / "data" / "spy_daily.csv"
    lines = spy_path.read_text().splitlines()
    # Quadruple every return after the training day: Model A's error must rise far above baseline.
    import pandas as pd

    spy = pd.read_csv(spy_path)
    r = np.log(spy["close"]).diff().fillna(0).to_numpy().copy()
    r[800:] *= 4
    close = spy["close"].iloc[0] * np.exp(np.cumsum(r))
    scale = close / spy["close"]
    for col in ("open", "high", "low", "close", "adj_close"):
        spy[col] = spy[col] * scale
    spy.to_csv(spy_path, index=False)
    assert len(lines) == len(spy) + 1
    assert main(cli_args(project, "monitor", "--fail-on-retrain")) == EXIT_RETRAIN_ADVISED
    record = json.loads(
        (project / "models" / "monitoring_history.jsonl").read_text().splitlines()[-1]
    )
    assert record["retraining"]["action"] == "retrain_now"
    assert main(cli_args(project, "monitor")) == 0  # without the flag: exit 0 whatever the drift


def test_train_records_the_panel_each_model_pooled_with_when_given_a_pool_universe(project):
    from volforecast.pooling import PanelShrinkage

    from .conftest import write_pool

    pool = write_pool(project / "pool")
    args = cli_args(project, "train", "--as-of", "2018-02-01", "--pool-universe", str(pool))
    assert main(args) == 0
    record = json.loads(Path("models/training_history.jsonl").read_text().splitlines()[-1])
    for key, name in (("model_a", "model_90pct.pkl"), ("model_b", "model_100pct.pkl")):
        info = record["pooling"][key]
        assert info["series"] == ["AAA", "BBB"] and info["universe"] == str(pool)
        assert info["panel_through"] <= record[key]["training_date_end"]
        with open(f"models/{name}", "rb") as f:
            artifact = pickle.load(f)
        assert artifact["pooling"] == info
        for learner in (artifact["xgb_model"], artifact["lgbm_model"]):
            assert isinstance(learner.core_prior, PanelShrinkage)
            assert learner.core_prior.panel.rows == info["panel_rows"]
        # The spec's snippet still forecasts from the pooled set.
        rows = build_dataset(
            load_market_data(build_settings_for(project)).frame, record["horizon"]
        ).dropna()
        X = rows[artifact["feature_cols"]].tail(3)
        X_meta = np.column_stack(
            [artifact["xgb_model"].predict(X), artifact["lgbm_model"].predict(X)]
        )
        assert np.all(artifact["meta_model"].predict(X_meta) > 0)


def test_train_pools_nothing_and_records_no_pooling_when_not_given_a_pool_universe(project):
    assert main(cli_args(project, "train", "--as-of", "2018-02-01")) == 0
    record = json.loads(Path("models/training_history.jsonl").read_text().splitlines()[-1])
    assert record["pooling"] is None
    with open("models/model_90pct.pkl", "rb") as f:
        artifact = pickle.load(f)
    assert "pooling" not in artifact and artifact["xgb_model"].core_prior is None


def build_settings_for(root: Path):
    from volforecast.config import build_settings

    return build_settings(data_source="csv", data_dir=root / "data", start="2000-01-01")


COMMANDS = ("train", "monitor", "predict", "report", "evaluate", "replay", "select", "promote")


@pytest.mark.parametrize("command", [*COMMANDS, "rollback"])
def test_help_prints_every_flag_and_exits_zero_when_asked(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: volforecast {command}")
