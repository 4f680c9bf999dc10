"""volforecast monitor (volforecast.monitoring, commands/monitor): what it scores, records and
says."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from volforecast.blending import SHIPPED_NAME
from volforecast.cli import main
from volforecast.monitoring import risk_check
from volforecast.schemas import MonitoringRecord
from volforecast.store import (
    MONITORING_HISTORY,
    ModelsDirectory,
)

from .conftest import cli_args


def test_monitor_skips_feature_drift_and_says_so_when_start_is_after_training(
    project: Path, capsys
):
    assert main(cli_args(project, "monitor", "--start", "2017-09-01")) == 0
    err = capsys.readouterr().err
    assert "feature drift not computed: only 0 of Model A's training rows" in err
    line = (project / "models" / MONITORING_HISTORY).read_text().splitlines()[-1]
    assert json.loads(line)["feature_drift"]["skipped"].startswith("only 0 of")


def test_monitor_prints_the_rule_behind_its_recommendation(project: Path, capsys):
    assert main(cli_args(project, "monitor")) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("Recommendation"))
    assert re.match(r"Recommendation: USE MODEL [AB] \([^)]*\): Model B won \d+% of windows", line)


def test_monitor_records_model_as_interval_coverage_and_var_exceedances_on_the_new_rows(
    project: Path,
):
    assert main(cli_args(project, "monitor")) == 0
    models = ModelsDirectory(project / "models")
    record = models.read_history(MONITORING_HISTORY, MonitoringRecord)[-1]
    assert record.risk is not None
    assert set(record.risk.coverage) == {"0.5", "0.9"}
    assert set(record.risk.var) == {"0.95", "0.99"}
    # Every new row is labeled, so its next day is known: every row is a VaR day.
    assert record.risk.rows == record.test_window.n_samples == record.risk.var["0.99"].days
    assert record.risk.method == SHIPPED_NAME


def test_risk_check_is_none_when_the_set_was_trained_before_calibration():
    assert risk_check({"feature_cols": []}, None, pd.DataFrame(), np.array([])) is None  # type: ignore[arg-type]


def test_monitor_spec_fields_are_the_previous_releases_for_the_same_inputs(project: Path):
    """drift, comparison, recommendation and the A/B windows as release 621f2f2 wrote them
    for this synthetic project (its history lines, run with that release's code): our
    retraining advice changed, the spec's fields did not."""
    for day in ("2018-03-01", "2018-06-08"):
        assert main(cli_args(project, "monitor", "--as-of", day)) == 0
    lines = ModelsDirectory(project / "models").read_history(MONITORING_HISTORY, MonitoringRecord)
    first, second = lines[-2], lines[-1]
    assert first.comparison.model_a_rmse == 0.0031794101135101216
    assert first.comparison.model_b_rmse == 0.003189611576591969
    assert second.comparison.model_a_rmse == 0.0032112795002223263
    assert second.comparison.model_b_rmse == 0.0032718823460583983
    assert second.drift.baseline_rmse == 0.0036390906330523412
    for line, rows in ((first, 55), (second, 126)):
        assert line.drift.model_a_drift_pct == 0.0 and line.drift.level == "ok"
        assert line.comparison.model_b_win_rate == 75.0
        assert line.recommendation == "USE MODEL B (ALL-30)"
        assert [(w.name, w.winner) for w in line.windows] == [
            (f"All new data ({rows} samples)", "Model A"), ("Last 20 samples", "Model B"),
            ("Last 10 samples", "Model B"), ("Last 5 samples", "Model B"),
        ]  # fmt: skip
        assert line.test_window.n_samples == rows


def _freeze_bar(project: Path, row: int) -> str:
    """The price file's ``row`` repeats the bar before it (a frozen feed); returns its date."""
    path = project / "data" / "spy_daily.csv"
    prices = pd.read_csv(path)
    cols = ["open", "high", "low", "close", "adj_close"]
    prices.loc[row, cols] = prices.loc[row - 1, cols].to_numpy()
    prices.to_csv(path, index=False)
    return str(prices["date"].iloc[row])


def test_monitor_exits_13_naming_the_frozen_bar_before_scoring_anything(project: Path, capsys):
    day = _freeze_bar(project, 850)
    capsys.readouterr()
    assert main(cli_args(project, "monitor")) == 13
    err = capsys.readouterr().err
    assert f"{day}: the price bar repeats the previous one" in err and "Nothing was scored" in err
    assert not (project / "models" / MONITORING_HISTORY).exists()


def test_monitor_scores_again_when_the_bar_is_accepted_as_real(project: Path):
    day = _freeze_bar(project, 850)
    assert main(cli_args(project, "monitor", "--accept-data-through", day)) == 0


def test_monitor_checks_only_the_bars_after_its_last_run(project: Path, capsys):
    assert main(cli_args(project, "monitor", "--as-of", "2018-03-01")) == 0
    record = ModelsDirectory(project / "models").read_history(MONITORING_HISTORY, MonitoringRecord)[
        -1
    ]
    assert record.data_end == dt.date(2018, 3, 1)
    prices = pd.read_csv(project / "data" / "spy_daily.csv")
    before = int(np.flatnonzero(prices["date"] <= "2018-03-01")[-1])
    _freeze_bar(project, before - 3)  # a bar that run already passed
    assert main(cli_args(project, "monitor")) == 0
