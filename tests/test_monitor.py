"""volforecast monitor (volforecast.monitoring, commands/monitor): what it scores, records and
says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from volforecast.calibration import SHIPPED_METHOD
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
    assert record.risk.method == SHIPPED_METHOD.name


def test_risk_check_is_none_when_the_set_was_trained_before_calibration():
    assert risk_check({"feature_cols": []}, None, pd.DataFrame(), np.array([])) is None  # type: ignore[arg-type]
